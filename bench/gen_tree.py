#!/usr/bin/env python3
"""Generate the directory trees that become the benchmark image's layers.

The trees imitate what real images carry, because the cost of scanning a layer
depends on its shape more than its size: a node_modules tree is tens of thousands
of small headers, a vendor SDK is fewer and larger files, a clean-up layer is a
handful of whiteouts. Content is text cut from a JavaScript-like corpus for
source files (it compresses about as well as real code) and seeded random bytes
for binaries (which do not compress), so gzip and zstd do realistic work.

Output is seeded and so repeatable, which keeps cached images comparable.

Subcommands (run as root so ownership is kept):
  node-modules DIR --files N      packages under DIR, owned 0:0, a few 1000:1000
  vendor-sdk DIR --files N --total-mib M --uid U
                                  an unpacked vendor tarball owned U:U
  whiteouts LOWER UPPER           delete part of LOWER's vendor SDK in UPPER
  small-root DIR --files N        a stand-in for a distribution root (--quick)
"""

import argparse
import json
import os
import random
from pathlib import Path

WORDS = (
    "function return const let var if else for while async await import export "
    "default module require this new class extends null undefined true false "
    "object string number value key index length options config callback error "
    "result data buffer stream promise resolve reject emit listener handler "
    "prototype typeof instanceof throw catch try finally switch case break"
).split()

SCOPES = ["", "", "", "@babel/", "@types/", "@aws-sdk/", "@smithy/", "@jest/"]
STEMS = (
    "core util parse string array lodash debug chalk color semver glob minimatch "
    "path fs extra json schema yaml ansi regex escape buffer stream http proxy "
    "agent cookie mime types url query form data uuid date format event emitter "
    "loader plugin preset runtime helper compat generator traverse template"
).split()

MIB = 1024 * 1024


def corpus(rng, size=4 * MIB):
    """A block of JavaScript-looking text to cut source files from."""
    lines = []
    total = 0
    while total < size:
        indent = "  " * rng.randrange(4)
        words = " ".join(rng.choices(WORDS, k=rng.randrange(3, 12)))
        line = f"{indent}{words};\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()


class Writer:
    """Writes files with seeded sizes and contents, and records their paths."""

    def __init__(self, root, seed):
        self.root = Path(root)
        self.rng = random.Random(seed)
        self.text = corpus(self.rng)
        self.files = []

    def text_size(self, median=1500, cap=400_000):
        # File sizes in source trees are roughly log-normal.
        return min(int(self.rng.lognormvariate(0, 1.2) * median), cap)

    def write_text(self, relative, size):
        start = self.rng.randrange(len(self.text) - size) if size < len(self.text) else 0
        self.write_bytes(relative, self.text[start : start + size])

    def write_binary(self, relative, size):
        # Machine code and data sections compress to roughly half under gzip:
        # alternate incompressible chunks with chunks of text and zero runs.
        chunks = []
        for offset in range(0, size, 4096):
            length = min(4096, size - offset)
            draw = self.rng.random()
            if draw < 0.45:
                chunks.append(self.rng.randbytes(length))
            elif draw < 0.85:
                start = self.rng.randrange(len(self.text) - 4096)
                chunks.append(self.text[start : start + length])
            else:
                chunks.append(bytes(length))
        self.write_bytes(relative, b"".join(chunks))

    def write_json(self, relative, value):
        self.write_bytes(relative, (json.dumps(value, indent=2) + "\n").encode())

    def write_bytes(self, relative, data):
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files.append(path)


def package_name(rng, taken):
    while True:
        name = rng.choice(SCOPES) + "-".join(rng.sample(STEMS, rng.choice([1, 1, 2, 2, 3])))
        if name not in taken:
            taken.add(name)
            return name


def write_package(writer, base, name):
    rng = writer.rng
    version = f"{rng.randrange(8)}.{rng.randrange(30)}.{rng.randrange(20)}"
    writer.write_json(
        f"{base}/package.json", {"name": name, "version": version, "main": "index.js"}
    )
    writer.write_text(f"{base}/README.md", writer.text_size(3000))
    writer.write_text(f"{base}/LICENSE", 1077)
    writer.write_text(f"{base}/index.js", writer.text_size(400))
    for directory in rng.sample(
        ["lib", "dist", "src", "types", "esm"], rng.choice([0, 1, 1, 1, 2])
    ):
        for number in range(rng.randrange(2, 16)):
            stem = f"{rng.choice(STEMS)}{number}"
            writer.write_text(f"{base}/{directory}/{stem}.js", writer.text_size())
            if rng.random() < 0.4:
                writer.write_text(f"{base}/{directory}/{stem}.d.ts", writer.text_size(600))
            if rng.random() < 0.3:
                writer.write_text(f"{base}/{directory}/{stem}.js.map", writer.text_size(4000))


def node_modules(arguments):
    writer = Writer(arguments.dir, seed=1)
    rng = writer.rng
    taken = set()
    packages = []
    while len(writer.files) < arguments.files:
        name = package_name(rng, taken)
        # npm nests a package under its parent when versions conflict.
        parent = rng.choice(packages) if packages and rng.random() < 0.15 else ""
        base = f"{parent}/node_modules/{name}" if parent else name
        write_package(writer, base, name)
        packages.append(base)

    # Packages published from a developer's machine keep that user's uid when
    # installed by older npm; 1000 maps fine, so these must not be reported.
    for base in rng.sample(packages, max(1, len(packages) // 20)):
        for path in (writer.root / base).rglob("*"):
            os.lchown(path, 1000, 1000)
    print(f"{arguments.dir}: {len(writer.files)} files in {len(packages)} packages")


def vendor_sdk(arguments):
    writer = Writer(arguments.dir, seed=2)
    rng = writer.rng
    budget = arguments.total_mib * MIB
    large = max(1, arguments.files // 200)

    # A few large shared objects hold most of the bytes, as in real SDKs.
    for number in range(large):
        writer.write_binary(f"lib/libsdk-part{number}.so.1", budget // 2 // large)
        writer.write_binary(f"lib/libsdk-part{number}.a", budget // 4 // large)
    for number in range(arguments.files // 50):
        writer.write_binary(f"bin/sdk-tool{number}", rng.randrange(20_000, 400_000))
    while len(writer.files) < arguments.files:
        section = rng.choice(["include/sdk", "share/doc/sdk", "share/sdk/examples", "lib/cmake"])
        module = rng.choice(STEMS)
        suffix = {"include/sdk": ".h", "lib/cmake": ".cmake"}.get(section, ".txt")
        writer.write_text(
            f"{section}/{module}/{rng.choice(WORDS)}{len(writer.files)}{suffix}",
            writer.text_size(2500),
        )

    # A tarball packed by uid U and unpacked by root keeps U as the owner.
    for path in [writer.root, *writer.root.rglob("*")]:
        os.lchown(path, arguments.uid, arguments.uid)
    print(f"{arguments.dir}: {len(writer.files)} files owned {arguments.uid}")


def whiteouts(arguments):
    """Delete the SDK's docs and its static libraries in a later layer.

    A whiteout is an empty file `.wh.<name>` beside the deleted entry (OCI image
    spec, layer.md "Whiteouts"); deleting a directory needs one entry only. The
    parent directories come along with the owner they have below, as a layer
    diff records them.
    """
    lower = Path(arguments.lower)
    upper = Path(arguments.upper)
    deleted = [lower / "opt/sdk/share/doc"]
    deleted += sorted((lower / "opt/sdk/lib").glob("*.a"))
    for path in deleted:
        relative = path.relative_to(lower)
        target = upper / relative.parent / f".wh.{relative.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
        for parent in relative.parents:
            if parent != Path("."):
                info = (lower / parent).lstat()
                os.lchown(upper / parent, info.st_uid, info.st_gid)
                os.chmod(upper / parent, info.st_mode & 0o7777)
    print(f"{upper}: {len(deleted)} whiteouts")


def small_root(arguments):
    writer = Writer(arguments.dir, seed=3)
    rng = writer.rng
    writer.write_bytes("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    writer.write_bytes("etc/group", b"root:x:0:\n")
    for directory in ["tmp", "root", "opt", "srv", "var/tmp", "home"]:
        (writer.root / directory).mkdir(parents=True, exist_ok=True)
    while len(writer.files) < arguments.files:
        kind = rng.random()
        stem = f"{rng.choice(STEMS)}{len(writer.files)}"
        if kind < 0.2:
            writer.write_binary(f"usr/bin/{stem}", rng.randrange(4_000, 60_000))
        elif kind < 0.4:
            writer.write_binary(
                f"usr/lib/x86_64-linux-gnu/lib{stem}.so.1", rng.randrange(8_000, 120_000)
            )
        else:
            writer.write_text(f"usr/share/doc/{rng.choice(STEMS)}/{stem}", writer.text_size())
    print(f"{arguments.dir}: {len(writer.files)} files")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    command = commands.add_parser("node-modules")
    command.add_argument("dir")
    command.add_argument("--files", type=int, default=30_000)
    command.set_defaults(run=node_modules)

    command = commands.add_parser("vendor-sdk")
    command.add_argument("dir")
    command.add_argument("--files", type=int, default=2_000)
    command.add_argument("--total-mib", type=int, default=48)
    command.add_argument("--uid", type=int, default=1_000_000)
    command.set_defaults(run=vendor_sdk)

    command = commands.add_parser("whiteouts")
    command.add_argument("lower")
    command.add_argument("upper")
    command.set_defaults(run=whiteouts)

    command = commands.add_parser("small-root")
    command.add_argument("dir")
    command.add_argument("--files", type=int, default=1_500)
    command.set_defaults(run=small_root)

    arguments = parser.parse_args()
    arguments.run(arguments)


if __name__ == "__main__":
    main()
