#!/usr/bin/env python3
"""List layer entries whose uid or gid is above 65535, the way a user would in Python.

This is the benchmark's "short script" peer: the standard tarfile module over
each layer blob, tar+gzip and plain tar opened with mode 'r:*'. Python 3.11's
tarfile cannot read zstd, so zstd blobs (recognised by their magic number) are
streamed through `zstd -dc`, as such a script would have to.

Usage: peer_tarfile.py LAYER...
"""

import subprocess
import sys
import tarfile

LIMIT = 65535
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def report(archive, layer, out):
    for member in archive:
        if member.uid > LIMIT or member.gid > LIMIT:
            out.write(f"{layer}\t{member.uid}:{member.gid}\t{member.name}\n")


def scan(layer, out):
    with open(layer, "rb") as file:
        magic = file.read(4)

    if magic != ZSTD_MAGIC:
        with tarfile.open(layer, "r:*") as archive:
            report(archive, layer, out)
        return

    with subprocess.Popen(["zstd", "-dcq", layer], stdout=subprocess.PIPE) as process:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            report(archive, layer, out)
        # tarfile stops at the end-of-archive blocks; read the record padding
        # after them so zstd does not fail on a closed pipe.
        while process.stdout.read(1 << 20):
            pass
    if process.returncode != 0:
        sys.exit(f"zstd failed on {layer} with exit code {process.returncode}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    for layer in sys.argv[1:]:
        scan(layer, sys.stdout)


if __name__ == "__main__":
    main()
