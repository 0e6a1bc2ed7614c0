/**
 * Test helper: zip archives written by Python's zipfile (the standard
 * library's own writer, not ours), including the hostile kinds an upload
 * must refuse: names that leave their folder, a bomb of zeros, and an
 * archive whose directory understates an entry's size.
 */
import { spawnSync } from 'node:child_process';

export interface ZipEntrySpec {
  /** The name stored in the archive, as given (no clean-up). */
  name: string;
  /** Content: a file to copy, bytes, or this many zero bytes. */
  file?: string;
  bytes?: Uint8Array;
  zeros?: number;
}

const SCRIPT = `
import base64, json, sys, zipfile
spec = json.load(sys.stdin)
with zipfile.ZipFile(spec["out"], "w", compression=zipfile.ZIP_DEFLATED) as z:
    for e in spec["entries"]:
        if "file" in e:
            data = open(e["file"], "rb").read()
        elif "zeros" in e:
            data = bytes(e["zeros"])
        else:
            data = base64.b64decode(e.get("b64", ""))
        z.writestr(zipfile.ZipInfo(e["name"], date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=zipfile.ZIP_DEFLATED)
if spec.get("understate"):
    # The directory (local and central headers) claims each entry inflates to 10 bytes.
    buf = bytearray(open(spec["out"], "rb").read())
    for sig, off in ((b"PK\\x03\\x04", 22), (b"PK\\x01\\x02", 24)):
        i = buf.find(sig)
        while i >= 0:
            buf[i + off:i + off + 4] = (10).to_bytes(4, "little")
            i = buf.find(sig, i + 4)
    open(spec["out"], "wb").write(bytes(buf))
`;

/** Writes a zip archive at `out` with the given entries (deflated); `understate` makes the directory lie about the sizes. */
export function writeZip(out: string, entries: ZipEntrySpec[], o: { understate?: boolean } = {}): void {
  const spec = {
    out,
    understate: o.understate ?? false,
    entries: entries.map((e) => ({
      name: e.name,
      ...(e.file !== undefined ? { file: e.file } : {}),
      ...(e.zeros !== undefined ? { zeros: e.zeros } : {}),
      ...(e.bytes !== undefined ? { b64: Buffer.from(e.bytes).toString('base64') } : {}),
    })),
  };
  const r = spawnSync('/usr/bin/python3', ['-c', SCRIPT], { input: JSON.stringify(spec), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 zipfile failed: ${r.stderr}`);
}
