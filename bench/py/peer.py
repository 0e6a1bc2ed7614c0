"""Line protocol of a Python benchmark peer (bench/lib/peer.ts drives it).

The peer prints one JSON line when it is ready, then answers each JSON line on
stdin with one JSON line on stdout, until {"cmd": "quit"} or end of input.
Keeping the process alive lets the TypeScript side alternate rounds
(medseg, pytorch, medseg, ...) without paying Python start-up each round.
"""
import json
import sys
import time


def serve(ready, handlers):
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg.get("cmd")
        if cmd == "quit":
            return
        try:
            out = handlers[cmd](msg)
        except Exception as e:  # reported to the TypeScript side, not swallowed
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


def time_repeated(fn, reps):
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out
