#!/usr/bin/env bash
# Time `idfit check` against the tools a user would otherwise reach for.
#
# Builds one realistic image (cached), packages it three ways, then times idfit
# and each peer in the same run, alternating them round by round so that drift
# in the machine (page cache, frequency, neighbours) falls on both sides. The
# figure that matters is the median over rounds of peer time / idfit time.
#
# The image:
#   layer 0  Debian bookworm, debootstrap --variant=minbase
#   layer 1  a node_modules tree, ~30k small files, owned 0:0 (a few 1000:1000)
#   layer 2  a vendor SDK tarball unpacked by root, ~2000 files owned 1000000
#   layer 3  whiteouts deleting part of layer 2
# and its forms:
#   docker-archive  classic `docker save` layout, uncompressed layers
#   oci-gzip        OCI image layout, tar+gzip layers
#   oci-zstd        OCI image layout, tar+zstd layers
#
# Needs root (layer ownership, debootstrap, dockerd), GNU tar, bsdtar, zstd,
# pigz, python3, umoci, skopeo, dockerd and /usr/bin/time. Not run in CI.

# Single-quoted `$` is meant for awk and inner `bash -c` scripts (SC2016), and
# the IDFIT_*_REF and IDFIT_FIX_ARGS formats are printf formats by design (SC2059).
# shellcheck disable=SC2016,SC2059

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

# Bump when the recipe changes so cached images are rebuilt.
RECIPE=2
TAG=latest
REPOSITORY_TAG=idfit-bench/app:$TAG
MTIME='2024-01-01 00:00:00Z'
ID_LIMIT=65535

WORK=${IDFIT_BENCH_DIR:-/tmp/idfit-bench}
IDFIT=${IDFIT:-$REPO/target/release/idfit}
# How idfit is told where an image is; printf formats taking the path.
IDFIT_OCI_REF=${IDFIT_OCI_REF:-oci:%s:$TAG}
IDFIT_ARCHIVE_REF=${IDFIT_ARCHIVE_REF:-docker-archive:%s}
DOCKERD_DIR=${BENCH_DOCKERD_DIR:-/tmp/bench-dockerd/run}

# `idfit fix`'s arguments, a printf format over the image argument and an output
# directory. The peers set every out-of-range id to 0, so idfit is asked to as well.
IDFIT_FIX_ARGS=${IDFIT_FIX_ARGS:---policy owner=0:0 %s oci:%s:$TAG}

ROUNDS=7
QUICK=0
REBUILD=0
WITH_IDFIT=1
TASK=check
CHECK_FORMS="docker-archive oci-gzip oci-zstd"
CHECK_PEERS="idfit-noverify bsdtar gnutar tarfile umoci docker-load"
FIX_FORMS="oci-gzip oci-zstd"
FIX_PEERS="fix-tarfile fix-umoci"
FORMS=
PEERS=

usage() {
    cat <<EOF
usage: bench/run.sh [options]

Time \`idfit check\` against bsdtar, GNU tar, Python tarfile, umoci unpack and
docker load on a remapped daemon, over one image in three forms; or, with
\`--task fix\`, rewriting the image against a Python tarfile script and umoci.

options:
  --task TASK      check (default) or fix
  --rounds N       timed rounds per form (default 7; 3 with --quick)
  --quick          a small synthetic image instead of debootstrap, for a smoke test
  --forms LIST     comma-separated; check: ${CHECK_FORMS// /,}; fix: ${FIX_FORMS// /,}
  --peers LIST     comma-separated; check: ${CHECK_PEERS// /,}; fix: ${FIX_PEERS// /,}
  --no-idfit       time the peers only (ratios are then left out)
  --rebuild        rebuild the cached image (a debootstrap root is kept)
  -h, --help       this text

environment:
  IDFIT_BENCH_DIR    work directory (default /tmp/idfit-bench)
  IDFIT              idfit binary (default target/release/idfit, built if missing)
  IDFIT_OCI_REF      printf format turning an OCI layout path into an image argument
  IDFIT_ARCHIVE_REF  the same for a docker-archive path
  IDFIT_FIX_ARGS     printf format of \`idfit fix\`'s arguments over the image
                     argument and an output directory
  BENCH_DOCKERD_DIR  state of the remapped dockerd (default /tmp/bench-dockerd/run)
EOF
}

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 2
}

parse_options() {
    local rounds_given=0
    while (($#)); do
        case $1 in
        --rounds)
            [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a positive number"
            ROUNDS=$2 rounds_given=1
            shift
            ;;
        --quick) QUICK=1 ;;
        --task)
            [[ ${2:-} == check || ${2:-} == fix ]] || die "--task is \`check\` or \`fix\`"
            TASK=$2
            shift
            ;;
        --forms) FORMS=${2//,/ } && shift ;;
        --peers) PEERS=${2//,/ } && shift ;;
        --no-idfit) WITH_IDFIT=0 ;;
        --rebuild) REBUILD=1 ;;
        -h | --help) usage && exit 0 ;;
        *) usage >&2 && die "unknown option \`$1\`" ;;
        esac
        shift
    done
    if [[ $TASK == fix ]]; then
        FORMS=${FORMS:-$FIX_FORMS} PEERS=${PEERS:-$FIX_PEERS}
    else
        FORMS=${FORMS:-$CHECK_FORMS} PEERS=${PEERS:-$CHECK_PEERS}
    fi
    if ((QUICK)); then
        WORK=$WORK/quick
        ((rounds_given)) || ROUNDS=3
    else
        WORK=$WORK/full
    fi
}

# ---------------------------------------------------------------------------
# Preconditions

require_tools() {
    (($(id -u) == 0)) || die "run as root: the layers keep file ownership and dockerd needs it"
    if [[ ! -x /usr/bin/time ]]; then
        log "installing GNU time for peak memory figures"
        apt-get install -y -qq time >/dev/null || die "could not install package \`time\`"
    fi
    local tool
    for tool in tar bsdtar zstd pigz python3 umoci skopeo jq; do
        command -v "$tool" >/dev/null || die "\`$tool\` is not installed"
    done
    tar --version | grep -q 'GNU tar' || die "\`tar\` is not GNU tar"
    ((QUICK)) || command -v debootstrap >/dev/null || die "\`debootstrap\` is not installed"
    if [[ " $PEERS " == *" docker-load "* && " $FORMS " == *" docker-archive "* ]]; then
        command -v dockerd >/dev/null || die "\`dockerd\` is not installed (or leave out docker-load)"
    fi
}

ensure_idfit() {
    ((WITH_IDFIT)) || return 0
    if [[ ! -x $IDFIT && $IDFIT == "$REPO/target/release/idfit" ]]; then
        log "building idfit (cargo build --release)"
        (cd "$REPO" && cargo build --release --quiet) || die "cargo build failed; try --no-idfit"
    fi
    [[ -x $IDFIT ]] || die "no idfit binary at \`$IDFIT\`; set IDFIT or use --no-idfit"
}

# ---------------------------------------------------------------------------
# The image

# The Debian mirror apt already uses, from deb822 sources or sources.list.
apt_mirror() {
    local url
    url=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [[ -z $url ]]; then
        url=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    fi
    [[ -n $url ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d}"
    printf '%s\n' "$url"
}

build_rootfs() {
    local rootfs=$WORK/src/rootfs
    [[ -d $rootfs ]] && return 0
    if ((QUICK)); then
        python3 "$BENCH_DIR/gen_tree.py" small-root "$rootfs.tmp" --files 1500
    else
        local mirror
        mirror=$(apt_mirror)
        log "debootstrap bookworm from $mirror (a few minutes, once)"
        rm -rf "$rootfs.tmp"
        debootstrap --variant=minbase bookworm "$rootfs.tmp" "$mirror" >"$WORK/src/debootstrap.log" 2>&1 ||
            die "debootstrap failed, see $WORK/src/debootstrap.log"
    fi
    mv "$rootfs.tmp" "$rootfs"
}

build_trees() {
    local src=$WORK/src files sdk_files sdk_mib
    if ((QUICK)); then
        files=3000 sdk_files=200 sdk_mib=8
    else
        files=30000 sdk_files=2000 sdk_mib=48
    fi
    rm -rf "$src"/layer{1,2,3}
    mkdir -p "$src/layer1/usr/src/app" "$src/layer2/opt" "$src/layer3"
    python3 "$BENCH_DIR/gen_tree.py" node-modules "$src/layer1/usr/src/app/node_modules" --files "$files"
    python3 "$BENCH_DIR/gen_tree.py" vendor-sdk "$src/layer2/opt/sdk" --files "$sdk_files" --total-mib "$sdk_mib"
    python3 "$BENCH_DIR/gen_tree.py" whiteouts "$src/layer2" "$src/layer3"
}

# tar_layer DIR OUT [TAR OPTION...]: a reproducible layer tar of DIR's contents.
tar_layer() {
    local dir=$1 out=$2
    shift 2
    # Layer entries have no `./` prefix, so name the top-level entries rather
    # than `.`; atime and ctime are dropped so only needed PAX records remain.
    (cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort |
        tar --create --file "$out.tmp" --format=posix \
            --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
            --numeric-owner --sort=name --mtime="$MTIME" "$@" --files-from=-)
    mv "$out.tmp" "$out"
}

build_image() {
    local stamp=$WORK/images/.recipe
    if ((!REBUILD)) && [[ -f $stamp && $(<"$stamp") == "$RECIPE" ]]; then
        log "using cached image in $WORK/images"
        return 0
    fi
    mkdir -p "$WORK/src" "$WORK/layers"
    rm -rf "$WORK/images" "$WORK/extracted"
    # The synthetic root is cheap to make again; a debootstrap root is not.
    if ((QUICK)); then rm -rf "$WORK/src/rootfs"; fi
    build_rootfs
    log "generating layer trees"
    build_trees

    log "writing layer tars"
    # A base image carries no device nodes, apt lists or caches.
    tar_layer "$WORK/src/rootfs" "$WORK/layers/layer0.tar" \
        --exclude='dev/*' --exclude='proc/*' --exclude='sys/*' \
        --exclude='var/lib/apt/lists/*' --exclude='var/cache/apt/*'
    local n
    for n in 1 2 3; do
        tar_layer "$WORK/src/layer$n" "$WORK/layers/layer$n.tar"
    done

    log "packaging docker-archive, oci-gzip and oci-zstd"
    python3 "$BENCH_DIR/make_layouts.py" "$WORK/images" "$REPOSITORY_TAG" \
        --layer "$WORK/layers/layer0.tar" '/bin/sh -c #(nop) ADD file:{digest} in / ' \
        --layer "$WORK/layers/layer1.tar" '/bin/sh -c npm ci --omit=dev' \
        --layer "$WORK/layers/layer2.tar" '/bin/sh -c #(nop) ADD file:{digest} in /opt/ ' \
        --layer "$WORK/layers/layer3.tar" '/bin/sh -c rm -rf /opt/sdk/share/doc /opt/sdk/lib/*.a'
    verify_image
    printf '%s\n' "$RECIPE" >"$stamp"
}

verify_image() {
    local form
    for form in oci-gzip oci-zstd; do
        skopeo inspect "oci:$WORK/images/$form:$TAG" >/dev/null ||
            die "skopeo rejects the $form layout"
        umoci ls --layout "$WORK/images/$form" | grep -qx "$TAG" ||
            die "umoci does not list tag $TAG in the $form layout"
        umoci stat --image "$WORK/images/$form:$TAG" >/dev/null ||
            die "umoci stat fails on the $form layout"
    done
    skopeo inspect "docker-archive:$WORK/images/docker-archive.tar" >/dev/null ||
        die "skopeo rejects the docker-archive"
    log "skopeo and umoci accept all layouts"
}

# The GNU tar peer reads layer files as they would be after `tar -xf` of the
# archive: done once, outside the timing, which favours the peer.
extract_archive_layers() {
    [[ -d $WORK/extracted ]] && return 0
    mkdir -p "$WORK/extracted.tmp"
    tar -xf "$WORK/images/docker-archive.tar" -C "$WORK/extracted.tmp" --wildcards '*/layer.tar'
    mv "$WORK/extracted.tmp" "$WORK/extracted"
}

# layers FORM: the layer files, in manifest order, that the list peers read.
layers() {
    local form=$1 dir=$WORK/images/$1
    case $form in
    docker-archive)
        jq -r '.[0].Layers[]' <(tar -xOf "$dir.tar" manifest.json) |
            sed "s|^|$WORK/extracted/|"
        ;;
    *)
        local manifest
        manifest=$(jq -r '.manifests[0].digest' "$dir/index.json")
        jq -r '.layers[].digest' "$dir/blobs/sha256/${manifest#sha256:}" |
            sed "s|^sha256:|$dir/blobs/sha256/|"
        ;;
    esac
}

size() { du -sh --apparent-size "$1" | cut -f1; }

print_sizes() {
    log "image sizes:"
    local form layer
    for form in docker-archive.tar oci-gzip oci-zstd; do
        printf '  %-20s %s\n' "$form" "$(size "$WORK/images/$form")" >&2
    done
    for layer in "$WORK"/layers/layer*.tar; do
        printf '  %-20s %s, %s entries\n' "${layer##*/}" "$(size "$layer")" \
            "$(tar -tf "$layer" | wc -l)" >&2
    done
}

# ---------------------------------------------------------------------------
# The remapped dockerd behind the docker-load peer

dockerd_running=0

start_dockerd() {
    ((dockerd_running)) && return 0
    mkdir -p "$DOCKERD_DIR"
    local pid
    if pid=$(cat "$DOCKERD_DIR/docker.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
        die "a dockerd ($pid) already runs in $DOCKERD_DIR; stop it or set BENCH_DOCKERD_DIR"
    fi
    log "starting dockerd --userns-remap=default in $DOCKERD_DIR"
    dockerd --userns-remap=default \
        --data-root "$DOCKERD_DIR/data" --exec-root "$DOCKERD_DIR/exec" \
        --host "unix://$DOCKERD_DIR/docker.sock" --pidfile "$DOCKERD_DIR/docker.pid" \
        --containerd-namespace idfit-bench --containerd-plugins-namespace idfit-bench-plugins \
        --iptables=false --ip-masq=false --bridge=none >"$DOCKERD_DIR/dockerd.log" 2>&1 &
    dockerd_running=1
    for _ in $(seq 60); do
        docker --host "unix://$DOCKERD_DIR/docker.sock" version >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    die "dockerd did not come up, see $DOCKERD_DIR/dockerd.log"
}

stop_dockerd() {
    ((dockerd_running)) || return 0
    dockerd_running=0
    local pid
    pid=$(cat "$DOCKERD_DIR/docker.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 40); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    log "dockerd $pid did not stop; left running"
}

cleanup() {
    stop_dockerd
    rm -rf "$WORK/scratch"
}

# ---------------------------------------------------------------------------
# Tools. `tool_<name> FORM` sets CMD to the command to time. Optional hooks:
# `applies_<name> FORM` (default: every form), `before_<name>` once per form,
# `prepare_<name> FORM` and `after_<name>` around each run, outside the timing,
# and `accept_<name> STATUS ERRFILE`, whether the run ended as it should
# (default: status 0). A new peer is a new `tool_<name>` and its hooks.

CMD=()

# awk filters over listings, taking the limit as `limit`.
BSDTAR_FILTER='$3 > limit || $4 > limit'             # fields 3 and 4: uid, gid
GNUTAR_FILTER='{ split($2, id, "/") } id[1] > limit || id[2] > limit'  # field 2: uid/gid

tool_idfit() {
    local ref arguments
    case $1 in
    docker-archive) printf -v ref -- "$IDFIT_ARCHIVE_REF" "$WORK/images/docker-archive.tar" ;;
    *) printf -v ref -- "$IDFIT_OCI_REF" "$WORK/images/$1" ;;
    esac
    if [[ $TASK == fix ]]; then
        printf -v arguments -- "$IDFIT_FIX_ARGS" "$ref" "$WORK/scratch/fixed"
        read -ra arguments <<<"$arguments"
        CMD=("$IDFIT" fix "${arguments[@]}")
    else
        CMD=("$IDFIT" check --format json --runtime docker "$ref")
    fi
}
# Exit 1 means findings, which this image has; 2 is an error.
accept_idfit() {
    if (($1 == 0)); then log "warning: idfit found nothing in an image that has findings"; fi
    (($1 == 0 || $1 == 1))
}
after_idfit() { rm -rf "$WORK/scratch/fixed"; }

# idfit without hashing layer contents: what reading the headers alone costs.
applies_idfit_noverify() { [[ $TASK == check ]]; }
tool_idfit_noverify() {
    tool_idfit "$1"
    CMD+=(--no-verify)
}
accept_idfit_noverify() { accept_idfit "$@"; }

# list_command LISTER FILTER: CMD runs LISTER over each layer into awk.
list_command() {
    CMD=(bash -c 'set -o pipefail; lister=$1 filter=$2 limit=$3; shift 3
        for layer; do $lister "$layer"; done | awk -v limit="$limit" "$filter"' \
        _ "$1" "$2" "$ID_LIMIT" "${LAYERS[@]}")
}

# bsdtar detects gzip and zstd itself.
tool_bsdtar() { list_command 'bsdtar --numeric-owner -tvf' "$BSDTAR_FILTER"; }

tool_gnutar() {
    local decompress=
    case $1 in
    oci-gzip) decompress=--gzip ;;
    oci-zstd) decompress=--zstd ;;
    esac
    list_command "tar $decompress --numeric-owner -tvf" "$GNUTAR_FILTER"
}

tool_tarfile() { CMD=(python3 "$BENCH_DIR/peer_tarfile.py" "${LAYERS[@]}"); }

# umoci reads tar+zstd layers from 0.5.0 on; Debian bookworm ships 0.4.7.
applies_umoci() {
    case $1 in
    oci-gzip) return 0 ;;
    oci-zstd) umoci --version | awk '{ split($3, v, "."); exit !(v[1] > 0 || v[2] >= 5) }' ;;
    *) return 1 ;;
    esac
}
tool_umoci() {
    CMD=(umoci unpack --rootless --image "$WORK/images/$1:$TAG" "$WORK/scratch/bundle")
}
after_umoci() { rm -rf "$WORK/scratch/bundle"; }

applies_docker_load() { [[ $1 == docker-archive ]]; }
before_docker_load() { start_dockerd; }
tool_docker_load() {
    CMD=(docker --host "unix://$DOCKERD_DIR/docker.sock" load -q -i "$WORK/images/docker-archive.tar")
}
# Timed until it fails: loading must stop at the first unmappable owner.
accept_docker_load() { (($1 != 0)) && grep -q 'cannot be mapped to a host ID' "$2"; }
after_docker_load() {
    docker --host "unix://$DOCKERD_DIR/docker.sock" image rm -f "$REPOSITORY_TAG" >/dev/null 2>&1 || true
}

# --task fix peers. Each writes its result to scratch/fixed, never to the image.

applies_fix_tarfile() { [[ $1 == oci-* ]]; }
tool_fix_tarfile() {
    CMD=(python3 "$BENCH_DIR/peer_fix_tarfile.py" "$WORK/images/$1" "$WORK/scratch/fixed")
}
after_fix_tarfile() { rm -rf "$WORK/scratch/fixed"; }

# Unpack as root (ownership kept), chown what is out of range, repack. repack
# only adds a layer on top with the chowned files, so the offending entries
# stay in the lower layers: this is what the approach costs, not a working fix.
applies_fix_umoci() { applies_umoci "$1"; }
prepare_fix_umoci() { cp -a "$WORK/images/$1" "$WORK/scratch/fixed"; }
tool_fix_umoci() {
    CMD=(bash -c 'set -e; image=$1 bundle=$2 limit=$3
        umoci unpack --image "$image" "$bundle" >/dev/null
        find "$bundle/rootfs" \( -uid +"$limit" -o -gid +"$limit" \) -exec chown -h 0:0 {} +
        umoci repack --image "$image" "$bundle"' \
        _ "$WORK/scratch/fixed:$TAG" "$WORK/scratch/bundle" "$ID_LIMIT")
}
after_fix_umoci() { rm -rf "$WORK/scratch/fixed" "$WORK/scratch/bundle"; }

# ---------------------------------------------------------------------------
# Measurement

RESULTS=
OUTPUTS=
LAYERS=()

# measure FORM TOOL ROUND: run the tool once and append a line to RESULTS.
measure() {
    local form=$1 tool=$2 round=$3 fn=${2//-/_}
    "tool_$fn" "$form"
    if declare -F "prepare_$fn" >/dev/null; then "prepare_$fn" "$form"; fi
    local out=$WORK/scratch/$form.$tool.out err=$WORK/scratch/$form.$tool.err
    local rss=$WORK/scratch/rss start end status=0

    start=$EPOCHREALTIME
    /usr/bin/time -f %M -o "$rss" "${CMD[@]}" >"$out" 2>"$err" || status=$?
    end=$EPOCHREALTIME

    if [[ $TASK == fix ]] && ((round == 0)) && ((status == 0)); then
        describe_fix_output "$form" "$tool"
    fi
    if declare -F "after_$fn" >/dev/null; then "after_$fn"; fi

    local ok
    if declare -F "accept_$fn" >/dev/null; then
        "accept_$fn" "$status" "$err" && ok=1 || ok=0
    else
        ((status == 0)) && ok=1 || ok=0
    fi
    if ((!ok)); then
        tail -n 5 "$err" >&2
        die "$tool on $form ended with status $status"
    fi

    # GNU time writes a note before the figure when the command failed.
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$form" "$tool" "$round" \
        "$(awk -v s="${start/,/.}" -v e="${end/,/.}" 'BEGIN { printf "%.4f", e - s }')" \
        "$(tail -n 1 "$rss")" "$(wc -l <"$out")" >>"$RESULTS"
}

# What a fix wrote, judged once per tool on the warm-up round: how many bytes larger
# the image became, and whether the remapped dockerd loads it (through skopeo into a
# docker archive; only for gzip, as Docker 20.10 reads no zstd layers).
describe_fix_output() {
    local form=$1 tool=$2 before after loads=n/a
    local archive=$WORK/scratch/fixed-docker.tar docker=(docker --host "unix://$DOCKERD_DIR/docker.sock")
    before=$(du -sb --apparent-size "$WORK/images/$form" | cut -f1)
    after=$(du -sb --apparent-size "$WORK/scratch/fixed" | cut -f1)
    if [[ $form == oci-gzip ]]; then
        start_dockerd
        loads=no
        rm -f "$archive"
        if skopeo copy --quiet "oci:$WORK/scratch/fixed:$TAG" \
            "docker-archive:$archive:$REPOSITORY_TAG" >/dev/null 2>&1 &&
            "${docker[@]}" load -q -i "$archive" >/dev/null 2>&1; then
            loads=yes
        fi
        "${docker[@]}" image rm -f "$REPOSITORY_TAG" >/dev/null 2>&1 || true
        rm -f "$archive"
    fi
    printf '%s\t%s\t%s\t%s\n' "$form" "$tool" "$((after - before))" "$loads" >>"$OUTPUTS"
}

tools_for() {
    local form=$1 tool list=()
    ((WITH_IDFIT)) && list+=(idfit)
    for tool in $PEERS; do
        if ! declare -F "applies_${tool//-/_}" >/dev/null || "applies_${tool//-/_}" "$form"; then
            list+=("$tool")
        elif [[ $tool == umoci && $form == oci-zstd ]]; then
            log "$form: leaving out umoci, which reads zstd layers only from 0.5.0 on"
        fi
    done
    printf '%s\n' "${list[@]}"
}

bench_form() {
    local form=$1 tools tool round
    mapfile -t LAYERS < <(layers "$form")
    mapfile -t tools < <(tools_for "$form")
    log "$form: ${tools[*]} (${#LAYERS[@]} layers)"
    for tool in "${tools[@]}"; do
        if declare -F "before_${tool//-/_}" >/dev/null; then "before_${tool//-/_}"; fi
    done

    # Round 0 warms the page cache and the daemon and is not reported.
    for round in $(seq 0 "$ROUNDS"); do
        # Alternate the order so no tool always runs first after another.
        local order=("${tools[@]}")
        if ((round % 2)); then
            mapfile -t order < <(printf '%s\n' "${tools[@]}" | tac)
        fi
        local tool
        for tool in "${order[@]}"; do
            measure "$form" "$tool" "$round"
        done
        if ((round)); then log "$form: round $round/$ROUNDS done"; fi
    done
}

main() {
    parse_options "$@"
    require_tools
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    build_image
    print_sizes
    ensure_idfit
    mkdir -p "$WORK/scratch" "$WORK/results"
    RESULTS=$WORK/results/$TASK-$(date -u +%Y%m%dT%H%M%SZ).tsv
    printf 'form\ttool\tround\tseconds\tmax_rss_kib\toutput_lines\n' >"$RESULTS"
    if [[ $TASK == fix ]]; then
        OUTPUTS=${RESULTS%.tsv}-outputs.tsv
        printf 'form\ttool\tgrowth_bytes\tloads\n' >"$OUTPUTS"
    fi

    local form
    for form in $FORMS; do
        [[ $form == docker-archive ]] && extract_archive_layers
        bench_form "$form"
    done
    stop_dockerd

    python3 "$BENCH_DIR/summarize.py" "$RESULTS" "$TASK"
    log "raw figures: $RESULTS${OUTPUTS:+ and $OUTPUTS}"
}

main "$@"
