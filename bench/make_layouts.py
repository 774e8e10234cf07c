#!/usr/bin/env python3
"""Package layer tars as the three image forms the benchmark reads.

  docker-archive.tar  the layout `docker save` wrote before docker 25:
                      manifest.json, repositories, <config>.json and
                      <id>/layer.tar, layers uncompressed
  oci-gzip/           an OCI image layout, layers tar+gzip (pigz -6)
  oci-zstd/           an OCI image layout, layers tar+zstd (zstd -3)

The OCI layouts follow image-spec v1.1 (image-layout.md, manifest.md,
config.md): an `oci-layout` file, index.json naming the manifest with the
`org.opencontainers.image.ref.name` annotation, and content-addressed blobs.
The config's rootfs.diff_ids are digests of the uncompressed layers, the
manifest's layer digests those of the compressed blobs.

Usage:
  make_layouts.py OUT_DIR TAG --layer LAYER.tar "created_by" [--layer ...]
"""

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

CREATED = "2024-01-01T00:00:00Z"
MTIME = 1704067200

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
COMPRESSORS = {
    "oci-gzip": ("application/vnd.oci.image.layer.v1.tar+gzip", ["pigz", "-6", "-n", "-c"]),
    "oci-zstd": ("application/vnd.oci.image.layer.v1.tar+zstd", ["zstd", "-3", "-q", "-c"]),
}


def dump_json(value):
    return json.dumps(value, sort_keys=True).encode()


def file_sha256(path):
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def image_config(diff_ids, history):
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "User": "1000:1000",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["node", "server.js"],
            "WorkingDir": "/usr/src/app",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }


def history(created_by):
    return [{"created": CREATED, "created_by": step} for step in created_by]


class Blobs:
    """The blobs/sha256 directory of one OCI layout."""

    def __init__(self, layout):
        self.dir = layout / "blobs" / "sha256"
        self.dir.mkdir(parents=True)

    def add_bytes(self, media_type, data):
        digest = hashlib.sha256(data).hexdigest()
        (self.dir / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def add_compressed(self, media_type, command, source):
        staging = self.dir / "staging"
        with open(source, "rb") as input, open(staging, "wb") as output:
            subprocess.run(command, stdin=input, stdout=output, check=True)
        digest = file_sha256(staging)
        size = staging.stat().st_size
        staging.rename(self.dir / digest)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": size}


def write_oci_layout(layout, tag, layers, diff_ids, created_by, compression):
    media_type, command = COMPRESSORS[compression]
    blobs = Blobs(layout)
    descriptors = [blobs.add_compressed(media_type, command, layer) for layer in layers]
    config = blobs.add_bytes(CONFIG, dump_json(image_config(diff_ids, history(created_by))))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config,
        "layers": descriptors,
    }
    manifest_descriptor = blobs.add_bytes(MANIFEST, dump_json(manifest))
    manifest_descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_descriptor],
    }
    (layout / "index.json").write_bytes(dump_json(index))
    (layout / "oci-layout").write_bytes(dump_json({"imageLayoutVersion": "1.0.0"}))


def add_member(archive, name, data=None, path=None):
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.mode = 0o644
    if path is not None:
        info.size = path.stat().st_size
        with open(path, "rb") as file:
            archive.addfile(info, file)
    elif data is not None:
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    else:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        archive.addfile(info)


def write_docker_archive(output, repository_tag, layers, diff_ids, created_by):
    config = dump_json(image_config(diff_ids, history(created_by)))
    config_name = hashlib.sha256(config).hexdigest() + ".json"

    # docker save names each layer directory by a v1 id chained from its parent.
    layer_ids = []
    parent = ""
    for diff_id in diff_ids:
        parent = hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()
        layer_ids.append(parent)

    repository, tag = repository_tag.rsplit(":", 1)
    manifest = [
        {
            "Config": config_name,
            "RepoTags": [repository_tag],
            "Layers": [f"{layer_id}/layer.tar" for layer_id in layer_ids],
        }
    ]
    with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as archive:
        for position, (layer_id, layer) in enumerate(zip(layer_ids, layers, strict=True)):
            add_member(archive, layer_id)
            add_member(archive, f"{layer_id}/VERSION", b"1.0")
            legacy = {"id": layer_id, "created": CREATED, "os": "linux"}
            if position:
                legacy["parent"] = layer_ids[position - 1]
            add_member(archive, f"{layer_id}/json", dump_json(legacy))
            add_member(archive, f"{layer_id}/layer.tar", path=layer)
        add_member(archive, config_name, config)
        add_member(archive, "manifest.json", dump_json(manifest))
        add_member(archive, "repositories", dump_json({repository: {tag: layer_ids[-1]}}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("tag", help="repository:tag; the OCI layouts use the tag part")
    parser.add_argument(
        "--layer", nargs=2, action="append", required=True, metavar=("TAR", "CREATED_BY")
    )
    arguments = parser.parse_args()

    layers = [Path(layer) for layer, _ in arguments.layer]
    created_by = [step for _, step in arguments.layer]
    diff_ids = [f"sha256:{file_sha256(layer)}" for layer in layers]

    for name in ["docker-archive.tar", *COMPRESSORS]:
        path = arguments.out / name
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
    arguments.out.mkdir(parents=True, exist_ok=True)

    write_docker_archive(
        arguments.out / "docker-archive.tar", arguments.tag, layers, diff_ids, created_by
    )
    tag = arguments.tag.rsplit(":", 1)[1]
    for compression in COMPRESSORS:
        write_oci_layout(
            arguments.out / compression, tag, layers, diff_ids, created_by, compression
        )


if __name__ == "__main__":
    main()
