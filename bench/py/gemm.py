"""PyTorch peer of bench/gemm.ts: matmul n x n and conv2d forward / forward +
backward, timed in the interpreter (bench/py/peer.py protocol).

usage: gemm.py --threads 2 --n 4096 --conv 8,64,128,128
"""
import argparse

import torch
import torch.nn.functional as F

from peer import serve, time_repeated


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--conv", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    n = a.n
    N, C, H, W = (int(v) for v in a.conv.split(","))
    A = torch.randn(n, n)
    B = torch.randn(n, n)
    x = torch.randn(N, C, H, W, requires_grad=True)
    w = torch.randn(C, C, 3, 3, requires_grad=True)
    g = torch.randn(N, C, H, W)

    def mm():
        A.mm(B)

    def conv_fwd():
        with torch.no_grad():
            F.conv2d(x, w, None, 1, 1)

    def conv_fwdbwd():
        x.grad = None
        w.grad = None
        F.conv2d(x, w, None, 1, 1).backward(g)

    fns = {"matmul": mm, "conv_fwd": conv_fwd, "conv_fwdbwd": conv_fwdbwd}
    serve(
        {"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()},
        {"time": lambda m: {"ms": time_repeated(fns[m["what"]], m["n"])}},
    )


if __name__ == "__main__":
    main()
