#!/usr/bin/env python3
"""Build examples/classic.tar, a small docker-archive that a remapped daemon refuses.

The image reproduces the commonest way an unmappable owner gets into an image: a
tarball packed by a user with a high uid (here 1000000) is unpacked by root, which
keeps the owner recorded in the archive, so the files land in the layer owned by
1000000:1000000. A user-namespaced runtime that maps only 0-65535 (docker's
`--userns-remap=default`, rootless podman with one subordinate range) cannot map
them and fails the pull or load with `Container ID 1000000 cannot be mapped to a
host ID`.

Layers:
  0  a tiny root: etc/passwd and etc/group declaring `app` as 1000000:1000000
  1  app/server.js and app/node_modules/left-pad/, owned 1000000:1000000
  2  tmp/build.tar.gz owned 1000000:1000000
  3  a whiteout deleting tmp/build.tar.gz: deleting a file in a later layer does
     not remove it from the earlier one, which still has to be unpacked

The layout is the one `docker save` wrote before docker 25: manifest.json,
repositories, <config-sha256>.json and one <v1-id>/ directory per layer with
VERSION, json and an uncompressed layer.tar.

Output is byte-identical from run to run: fixed mtimes, sorted entries, no
user or group names, and JSON with sorted keys.

Usage: python3 examples/make-classic.py [OUTPUT]   (default: next to this script)
"""

import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

# Go's archive/tar, which docker uses to write layers and saved images, ends an
# archive after the two zero blocks instead of padding it to a 10 KiB record.
# Doing the same keeps the example small and looks like what docker writes.
tarfile.RECORDSIZE = tarfile.BLOCKSIZE

APP_ID = 1000000
MTIME = 1704067200  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z"
REPO_TAG = "idfit-example/classic:latest"

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
app:x:1000000:1000000::/app:/bin/sh
"""

GROUP = """\
root:x:0:
daemon:x:1:
nogroup:x:65534:
app:x:1000000:
"""

OS_RELEASE = """\
PRETTY_NAME="idfit example"
ID=idfit-example
"""

SERVER_JS = """\
'use strict';
const http = require('http');
const leftPad = require('left-pad');

const port = Number(process.env.PORT || 8080);

http
  .createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(leftPad('ok', 8) + '\\n');
  })
  .listen(port);
"""

LEFT_PAD_JS = """\
'use strict';
module.exports = function leftPad(str, len, ch) {
  str = String(str);
  ch = ch === undefined ? ' ' : String(ch);
  while (str.length < len) str = ch + str;
  return str;
};
"""

LEFT_PAD_PACKAGE = {
    "name": "left-pad",
    "version": "1.3.0",
    "main": "index.js",
    "license": "WTFPL",
}

APP_PACKAGE = {
    "name": "classic-app",
    "version": "1.0.0",
    "private": True,
    "main": "server.js",
    "dependencies": {"left-pad": "1.3.0"},
}


def dump_json(value, indent=None):
    return json.dumps(value, sort_keys=True, indent=indent).encode()


def directory(name, uid=0, mode=0o755):
    return (name.rstrip("/") + "/", None, uid, mode)


def regular(name, data, uid=0, mode=0o644):
    if isinstance(data, str):
        data = data.encode()
    return (name, data, uid, mode)


def tar_bytes(entries):
    """Write entries, given as (name, data or None for a directory, uid, mode)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data, uid, mode in sorted(entries, key=lambda entry: entry[0]):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.uid = info.gid = uid
            info.uname = info.gname = ""
            info.mode = mode
            info.mtime = MTIME
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_tarball():
    """The build artefact of layer 2: any gzip stream will do, this one is fixed."""
    inner = tar_bytes([regular("dist/bundle.js", SERVER_JS * 4)])
    return gzip.compress(inner, compresslevel=9, mtime=0)


def layers():
    """Each layer as (created_by, entries)."""
    base = [
        directory("etc"),
        regular("etc/passwd", PASSWD),
        regular("etc/group", GROUP),
        regular("etc/os-release", OS_RELEASE),
        directory("app"),
        directory("tmp", mode=0o1777),
        directory("root", mode=0o700),
        directory("usr"),
        directory("usr/bin"),
    ]
    app = [
        directory("app", uid=APP_ID),
        regular("app/package.json", dump_json(APP_PACKAGE, indent=2), uid=APP_ID),
        regular("app/server.js", SERVER_JS, uid=APP_ID),
        directory("app/node_modules", uid=APP_ID),
        directory("app/node_modules/left-pad", uid=APP_ID),
        regular("app/node_modules/left-pad/index.js", LEFT_PAD_JS, uid=APP_ID),
        regular(
            "app/node_modules/left-pad/package.json",
            dump_json(LEFT_PAD_PACKAGE, indent=2),
            uid=APP_ID,
        ),
    ]
    build = [
        directory("tmp", mode=0o1777),
        regular("tmp/build.tar.gz", build_tarball(), uid=APP_ID),
    ]
    cleanup = [
        directory("tmp", mode=0o1777),
        # A whiteout is an empty file named .wh.<name> beside the deleted one
        # (OCI image spec, layer.md "Whiteouts"); its own owner does not matter.
        regular("tmp/.wh.build.tar.gz", b""),
    ]
    return [
        ("/bin/sh -c #(nop) ADD file:{} in / ", base),
        ("/bin/sh -c #(nop) ADD file:{} in / ", app),
        ("/bin/sh -c #(nop) COPY --chown=app:app file:{} in /tmp/ ", build),
        ("/bin/sh -c rm /tmp/build.tar.gz", cleanup),
    ]


EMPTY_LAYER_STEPS = [
    "/bin/sh -c #(nop)  USER app",
    "/bin/sh -c #(nop) WORKDIR /app",
    '/bin/sh -c #(nop)  CMD ["node" "server.js"]',
]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def image_config(diff_ids, history):
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "User": "app",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["node", "server.js"],
            "WorkingDir": "/app",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }


def legacy_layer_json(layer_id, parent_id):
    """The per-layer v1 `json` that docker save still writes beside layer.tar."""
    value = {
        "id": layer_id,
        "created": "1970-01-01T00:00:00Z",
        "container_config": {"Cmd": None, "Env": None},
        "os": "linux",
    }
    if parent_id:
        value["parent"] = parent_id
    return value


def build_archive():
    files = {}
    diff_ids = []
    history = []
    layer_dirs = []
    parent_id = ""

    for created_by, entries in layers():
        layer = tar_bytes(entries)
        digest = sha256(layer)
        diff_ids.append("sha256:" + digest)
        history.append({"created": CREATED, "created_by": created_by.format(digest)})

        # docker save names each directory by a v1 id chained from the parent;
        # any stable id derived the same way serves.
        layer_id = sha256((parent_id + " sha256:" + digest).encode())
        files[f"{layer_id}/VERSION"] = b"1.0"
        files[f"{layer_id}/json"] = dump_json(legacy_layer_json(layer_id, parent_id))
        files[f"{layer_id}/layer.tar"] = layer
        layer_dirs.append(layer_id)
        parent_id = layer_id

    for created_by in EMPTY_LAYER_STEPS:
        history.append({"created": CREATED, "created_by": created_by, "empty_layer": True})

    config = dump_json(image_config(diff_ids, history))
    config_name = sha256(config) + ".json"
    files[config_name] = config

    repository, tag = REPO_TAG.rsplit(":", 1)
    files["repositories"] = dump_json({repository: {tag: layer_dirs[-1]}})
    files["manifest.json"] = dump_json(
        [
            {
                "Config": config_name,
                "RepoTags": [REPO_TAG],
                "Layers": [f"{layer_id}/layer.tar" for layer_id in layer_dirs],
            }
        ]
    )

    entries = [directory(layer_id) for layer_id in layer_dirs]
    entries += [regular(name, data) for name, data in files.items()]
    return tar_bytes(entries)


def main():
    default = Path(__file__).resolve().parent / "classic.tar"
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    output.write_bytes(build_archive())
    print(f"wrote {output} ({output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
