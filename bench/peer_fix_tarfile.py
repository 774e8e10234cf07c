#!/usr/bin/env python3
"""Rewrite an OCI layout so that no layer entry is owned above 65535, in plain Python.

The benchmark's "short script" peer for `idfit fix`: copy the layout (hard
links, so the source stays as it was and runs can repeat), find the layers
that have an entry with uid or gid above 65535, stream each through tarfile
with those ids set to 0, recompress with pigz, and write a new config (its
rootfs.diff_ids change), manifest and index.json. Blobs no longer referenced
are dropped from the copy.

Rewritten layers come out as tar+gzip whatever they were before, as a script
using pigz would leave them. zstd input is read through `zstd -dc`, since
Python 3.11's tarfile cannot read it.

Usage: peer_fix_tarfile.py SOURCE_LAYOUT TARGET_LAYOUT
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from contextlib import contextmanager
from pathlib import Path

LIMIT = 65535
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class HashingWriter:
    """Passes writes on while hashing them: the new layer's diff_id."""

    def __init__(self, inner):
        self.inner = inner
        self.sha256 = hashlib.sha256()

    def write(self, data):
        self.sha256.update(data)
        return self.inner.write(data)


@contextmanager
def open_layer(path):
    """A streaming tarfile over a layer blob, whatever its compression."""
    with open(path, "rb") as file:
        magic = file.read(4)
    if magic != ZSTD_MAGIC:
        with tarfile.open(path, "r|*") as archive:
            yield archive
        return
    with subprocess.Popen(["zstd", "-dcq", str(path)], stdout=subprocess.PIPE) as process:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            yield archive
        # Read what the caller left (padding, or the rest when it stopped early)
        # so zstd does not fail on a closed pipe.
        while process.stdout.read(1 << 20):
            pass
    if process.returncode != 0:
        sys.exit(f"zstd failed on {path}")


def needs_fix(path):
    with open_layer(path) as archive:
        return any(member.uid > LIMIT or member.gid > LIMIT for member in archive)


def rewrite_layer(source, blobs):
    """Write the fixed layer as a new gzip blob; return (descriptor, diff_id)."""
    staging = blobs / "staging"
    with open(staging, "wb") as output:
        pigz = subprocess.Popen(["pigz", "-6", "-n", "-c"], stdin=subprocess.PIPE, stdout=output)
        writer = HashingWriter(pigz.stdin)
        with (
            open_layer(source) as archive,
            tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as fixed,
        ):
            for member in archive:
                if member.uid > LIMIT:
                    member.uid, member.uname = 0, ""
                if member.gid > LIMIT:
                    member.gid, member.gname = 0, ""
                # PAX records override the header fields (POSIX pax, "uid").
                for key in ("uid", "gid", "uname", "gname"):
                    member.pax_headers.pop(key, None)
                data = archive.extractfile(member) if member.isfile() else None
                fixed.addfile(member, data)
        pigz.stdin.close()
        if pigz.wait() != 0:
            sys.exit("pigz failed")

    with open(staging, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    size = staging.stat().st_size
    staging.rename(blobs / digest)
    descriptor = {"mediaType": GZIP_LAYER, "digest": f"sha256:{digest}", "size": size}
    return descriptor, f"sha256:{writer.sha256.hexdigest()}"


def blob_path(blobs, digest):
    return blobs / digest.removeprefix("sha256:")


def add_json_blob(blobs, value, media_type):
    data = json.dumps(value, separators=(",", ":")).encode()
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def copy_layout(source, target):
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, copy_function=os.link)


def fix_manifest(blobs, descriptor):
    manifest = json.loads(blob_path(blobs, descriptor["digest"]).read_bytes())
    config = json.loads(blob_path(blobs, manifest["config"]["digest"]).read_bytes())

    changed = False
    for position, layer in enumerate(manifest["layers"]):
        path = blob_path(blobs, layer["digest"])
        if not needs_fix(path):
            continue
        new_layer, diff_id = rewrite_layer(path, blobs)
        manifest["layers"][position] = {**layer, **new_layer}
        config["rootfs"]["diff_ids"][position] = diff_id
        changed = True
    if not changed:
        return descriptor

    manifest["config"] = {
        **manifest["config"],
        **add_json_blob(blobs, config, manifest["config"]["mediaType"]),
    }
    media_type = manifest.get("mediaType", descriptor["mediaType"])
    new_descriptor = add_json_blob(blobs, manifest, media_type)
    return {**descriptor, **new_descriptor}


def drop_unreferenced(blobs, index):
    keep = set()
    for descriptor in index["manifests"]:
        manifest = json.loads(blob_path(blobs, descriptor["digest"]).read_bytes())
        keep.add(descriptor["digest"])
        keep.add(manifest["config"]["digest"])
        keep.update(layer["digest"] for layer in manifest["layers"])
    for path in blobs.iterdir():
        if f"sha256:{path.name}" not in keep:
            path.unlink()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    copy_layout(source, target)
    blobs = target / "blobs" / "sha256"

    index = json.loads((target / "index.json").read_text())
    index["manifests"] = [fix_manifest(blobs, descriptor) for descriptor in index["manifests"]]
    # index.json is a hard link to the source's: replace it, never write through it.
    (target / "index.json").unlink()
    (target / "index.json").write_text(json.dumps(index, separators=(",", ":")))
    drop_unreferenced(blobs, index)


if __name__ == "__main__":
    main()
