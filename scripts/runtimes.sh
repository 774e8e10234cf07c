#!/usr/bin/env bash
# Starts, stops and describes the real container runtimes that the differential test
# (tests/runtime_differential.rs) compares idfit against:
#
#   - a dockerd on overlay2 with --userns-remap=default (remapped root is dockremap, 100000)
#   - a second dockerd on vfs with --userns-remap=default, so the two storage drivers'
#     extraction paths can be compared on the same machine at the same time
#   - rootless Podman as the user idfit-rootless, whose subordinate range is 200000:65536
#   - rootful Podman on a store of its own whose storage.conf remaps ids to 100000:65536
#     (remap-uids/remap-gids, containers-storage.conf(5)), on the storage driver
#     $IDFIT_PODMAN_ROOTFUL_DRIVER (default vfs); the system store is not used
#
# busybox-static gives tests/fix_runtime.rs a static /bin/busybox to run inside images.
#
# Usage: scripts/runtimes.sh start|stop|env|start-podman-rootful
#
# `start-podman-rootful` sets up only the rootful Podman store and leaves the other
# runtimes alone (`start` resets the rootless user's store).
#
# Everything lives under $IDFIT_RUNTIME_DIR (default /tmp/idfit-runtimes) so that the
# daemons never touch /var/lib/docker or /var/run/docker.sock of a system install.
# `start` and `stop` are idempotent; `env` prints export lines for the test to read.
# Must run as root (it installs packages, creates a user and starts daemons).

set -euo pipefail

RUNTIME_DIR=${IDFIT_RUNTIME_DIR:-/tmp/idfit-runtimes}
ROOTLESS_USER=idfit-rootless
ROOTLESS_SUBID_START=200000
ROOTLESS_SUBID_COUNT=65536
DOCKER_DRIVERS=(overlay2 vfs)
# The map rootful Podman's store applies, as containers-storage.conf(5) writes it: the same
# range as dockremap, so both remapping runtimes are compared on the same ids.
ROOTFUL_MAP=0:100000:65536
# vfs applies the map while `podman load` writes a layer. overlay does so only on a kernel
# without idmapped mounts of overlay lower layers; on one with them (6.18 here) it stores
# layers unshifted and maps at mount time, so its `podman load` never checks an id.
ROOTFUL_DRIVER=${IDFIT_PODMAN_ROOTFUL_DRIVER:-vfs}
# The runtimes and what the tests build inputs with (bsdtar from libarchive-tools).
PACKAGES=(docker.io podman uidmap skopeo umoci fuse-overlayfs slirp4netns busybox-static
    libarchive-tools)
# How long a daemon may take to answer before start gives up and shows its log.
WAIT_SECONDS=60

log() { printf 'runtimes: %s\n' "$*" >&2; }
die() { printf 'runtimes: error: %s\n' "$*" >&2; exit 1; }

# --- packages ---------------------------------------------------------------------------

install_packages() {
    local missing=() package
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    log "installing ${missing[*]}"
    # A package's postinst must not start a system dockerd: it would own /run/containerd,
    # which our daemons would then pick up instead of their own containerd.
    local policy=/usr/sbin/policy-rc.d created_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ -n "$created_policy" ] && rm -f "$policy"
    return 0
}

# --- docker -----------------------------------------------------------------------------

docker_dir() { echo "$RUNTIME_DIR/docker-$1"; }
docker_socket() { echo "$(docker_dir "$1")/docker.sock"; }
docker_host() { echo "unix://$(docker_socket "$1")"; }

docker_answers() {
    docker -H "$(docker_host "$1")" info >/dev/null 2>&1
}

# Each daemon gets its own data-root and exec-root; the exec-root holds the containerd
# that dockerd supervises (its socket, state and pid), so two daemons never share one.
# The containerd namespaces are distinct as well, for the case where a system containerd
# is running and both daemons attach to it instead.
start_docker() {
    local driver=$1 dir
    dir=$(docker_dir "$driver")
    if docker_answers "$driver"; then
        log "dockerd ($driver) already running"
        return 0
    fi
    stop_docker "$driver"

    mkdir -p "$dir/data" "$dir/exec"
    log "starting dockerd ($driver)"
    setsid dockerd \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --host "$(docker_host "$driver")" \
        --pidfile "$dir/dockerd.pid" \
        --containerd-namespace "idfit-$driver" \
        --containerd-plugins-namespace "idfit-$driver-plugins" \
        --iptables=false --ip-masq=false --bridge=none \
        --userns-remap=default \
        --storage-driver "$driver" \
        >"$dir/dockerd.log" 2>&1 </dev/null &

    if ! wait_for "dockerd ($driver)" $! "$dir/dockerd.log" docker_answers "$driver"; then
        stop_docker "$driver"
        die "dockerd ($driver) failed to start"
    fi
    local actual
    actual=$(docker -H "$(docker_host "$driver")" info --format '{{.Driver}}')
    [ "$actual" = "$driver" ] || die "dockerd ($driver) runs storage driver $actual"
}

stop_docker() {
    local driver=$1 dir pid
    dir=$(docker_dir "$driver")
    if [ -f "$dir/dockerd.pid" ]; then
        pid=$(cat "$dir/dockerd.pid")
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping dockerd ($driver, pid $pid)"
            kill "$pid"
            wait_for_exit "$pid"
        fi
        rm -f "$dir/dockerd.pid"
    fi
    unmount_under "$dir"
}

# With --userns-remap, dockerd bind-mounts its remapped root onto itself and only a clean
# shutdown undoes it; a daemon that died leaves the mount, and then nothing can delete it.
unmount_under() {
    local dir=$1 mount_point
    awk -v prefix="$dir/" 'index($5, prefix) == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r mount_point; do
            umount "$mount_point" 2>/dev/null || umount -l "$mount_point"
        done
}

# --- rootless podman --------------------------------------------------------------------

rootless_uid() { id -u "$ROOTLESS_USER"; }
rootless_home() { getent passwd "$ROOTLESS_USER" | cut -d: -f6; }
rootless_xdg() { echo "/run/user/$(rootless_uid)"; }

# Runs a command as the rootless user with the environment a login session would give.
as_rootless() {
    runuser -u "$ROOTLESS_USER" -- env -i \
        HOME="$(rootless_home)" USER="$ROOTLESS_USER" LOGNAME="$ROOTLESS_USER" \
        PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
        XDG_RUNTIME_DIR="$(rootless_xdg)" \
        "$@"
}

ensure_subid_line() {
    local file=$1 line="$ROOTLESS_USER:$ROOTLESS_SUBID_START:$ROOTLESS_SUBID_COUNT"
    touch "$file"
    grep -qx "$line" "$file" && return 0
    # A different range for the user would silently change the namespace map the
    # test asserts against, so replace it rather than add a second line.
    sed -i "/^$ROOTLESS_USER:/d" "$file"
    echo "$line" >>"$file"
}

ensure_rootless_user() {
    if ! id "$ROOTLESS_USER" >/dev/null 2>&1; then
        log "creating user $ROOTLESS_USER"
        useradd --create-home --shell /bin/bash "$ROOTLESS_USER"
    fi
    ensure_subid_line /etc/subuid
    ensure_subid_line /etc/subgid

    local xdg
    xdg=$(rootless_xdg)
    mkdir -p "$xdg"
    chown "$ROOTLESS_USER:" "$xdg"
    chmod 700 "$xdg"
}

# Without systemd there is neither a user session cgroup nor journald, so Podman must use
# cgroupfs and write events to a file. The storage driver is chosen by the caller.
write_rootless_config() {
    local driver=$1 config
    config="$(rootless_home)/.config/containers"
    mkdir -p "$config"
    cat >"$config/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    cat >"$config/storage.conf" <<EOF
[storage]
driver = "$driver"
EOF
    chown -R "$ROOTLESS_USER:" "$(rootless_home)/.config"
}

# A rootfs made of the host's `true` and the libraries it links, so `podman run` can be
# checked without any registry.
build_probe_rootfs() {
    local rootfs=$1 library
    rm -rf "$rootfs"
    mkdir -p "$rootfs"
    cp /bin/true "$rootfs/true"
    for library in $(ldd /bin/true | grep -o '/[^ ]*'); do
        mkdir -p "$rootfs$(dirname "$library")"
        cp -L "$library" "$rootfs$library"
    done
}

# Imports, saves, removes, loads and runs a probe image: each step is one the test or a
# user relies on, and a broken fuse/overlay/newuidmap setup shows up in one of them.
probe_rootless() {
    local work="$RUNTIME_DIR/rootless-probe"
    rm -rf "$work"
    mkdir -p "$work"
    build_probe_rootfs "$work/rootfs"
    tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
    chown -R "$ROOTLESS_USER:" "$work"

    as_rootless podman import -q "$work/rootfs.tar" localhost/idfit-probe:latest >/dev/null &&
        as_rootless podman save -q -o "$work/probe.tar" localhost/idfit-probe:latest &&
        as_rootless podman rmi -f localhost/idfit-probe:latest >/dev/null &&
        as_rootless podman load -q -i "$work/probe.tar" >/dev/null &&
        as_rootless podman run --rm --network none localhost/idfit-probe:latest /true &&
        as_rootless podman rmi -f localhost/idfit-probe:latest >/dev/null
}

# Tries native overlay first (kernel >= 5.11 allows it in a user namespace), then vfs.
start_rootless() {
    ensure_rootless_user
    local driver
    for driver in overlay vfs; do
        write_rootless_config "$driver"
        # A leftover store or pause process from another driver makes podman refuse to start.
        as_rootless podman system reset --force >/dev/null 2>&1 || true
        if as_rootless podman info >"$RUNTIME_DIR/podman-info.log" 2>&1 &&
            probe_rootless >>"$RUNTIME_DIR/podman-info.log" 2>&1; then
            log "rootless podman works for $ROOTLESS_USER with storage driver $driver"
            echo "$driver" >"$RUNTIME_DIR/podman-driver"
            return 0
        fi
        log "rootless podman with storage driver $driver failed:"
        sed 's/^/    /' "$RUNTIME_DIR/podman-info.log" >&2
    done
    die "rootless podman does not work for $ROOTLESS_USER"
}

stop_rootless() {
    id "$ROOTLESS_USER" >/dev/null 2>&1 || return 0
    [ -d "$(rootless_home)/.config/containers" ] || return 0
    log "removing rootless podman containers and images"
    as_rootless podman rm -af >/dev/null 2>&1 || true
    as_rootless podman rmi -af >/dev/null 2>&1 || true

    # The pause process holds the user namespace open between podman calls.
    local pause
    pause="$(rootless_xdg)/libpod/tmp/pause.pid"
    if [ -f "$pause" ] && kill -0 "$(cat "$pause")" 2>/dev/null; then
        kill "$(cat "$pause")"
    fi
}

# --- rootful podman ---------------------------------------------------------------------

# One store per driver: podman refuses a store that was created with another driver.
rootful_dir() { echo "$RUNTIME_DIR/podman-rootful/$ROOTFUL_DRIVER"; }

# Runs podman as root on the dedicated store. The two files replace the system ones, so the
# system store (/var/lib/containers/storage) is never used; podman still reads
# /etc/containers/policy.json and keeps its blob cache in /var/lib/containers/cache.
as_rootful() {
    CONTAINERS_STORAGE_CONF="$(rootful_dir)/storage.conf" \
        CONTAINERS_CONF="$(rootful_dir)/containers.conf" \
        podman "$@"
}

# The test finds containers.conf next to the storage.conf that `env` names. As for the
# rootless user, there is no systemd: cgroupfs, and events to a file.
write_rootful_config() {
    local dir
    dir=$(rootful_dir)
    mkdir -p "$dir/root" "$dir/runroot" "$dir/tmp"
    cat >"$dir/storage.conf" <<EOF
[storage]
driver = "$ROOTFUL_DRIVER"
graphroot = "$dir/root"
runroot = "$dir/runroot"

[storage.options]
remap-uids = "$ROOTFUL_MAP"
remap-gids = "$ROOTFUL_MAP"
EOF
    cat >"$dir/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$dir/tmp"
EOF
}

# Imports a one-file image owned 5:5 and prints the owner the store gave the file.
probe_rootful() {
    local work="$RUNTIME_DIR/podman-rootful/probe" image=localhost/idfit-rootful-probe:latest
    local mount
    rm -rf "$work"
    mkdir -p "$work"
    : >"$work/probe"
    tar -C "$work" --owner=5 --group=5 -cf "$work/probe.tar" probe

    as_rootful import -q "$work/probe.tar" "$image" >/dev/null || return 1
    mount=$(as_rootful image mount "$image") || return 1
    stat -c %u:%g "$mount/probe"
    as_rootful image unmount "$image" >/dev/null
    as_rootful rmi -f "$image" >/dev/null
    rm -rf "$work"
}

# The probe's file must come out as host id + 5: then the map is applied when a layer is
# written, which the test relies on. 5:5 means the driver maps only at mount time, and no
# `podman load` will fail whatever the ids.
start_podman_rootful() {
    local info="$RUNTIME_DIR/podman-rootful/info.log" host=${ROOTFUL_MAP#*:} owner expected
    expected=$((${host%%:*} + 5))
    mkdir -p "$RUNTIME_DIR/podman-rootful"
    write_rootful_config
    if ! as_rootful info >"$info" 2>&1 || ! owner=$(probe_rootful 2>>"$info"); then
        sed 's/^/    /' "$info" >&2
        die "rootful podman with storage driver $ROOTFUL_DRIVER does not work"
    fi
    if [ "$owner" != "$expected:$expected" ]; then
        log "warning: rootful podman ($ROOTFUL_DRIVER) stored a file of 5:5 as $owner," \
            "not $expected:$expected: it does not remap while loading"
    fi
    log "rootful podman works with storage driver $ROOTFUL_DRIVER and map $ROOTFUL_MAP"
}

stop_podman_rootful() {
    [ -f "$(rootful_dir)/storage.conf" ] || return 0
    log "removing rootful podman images"
    as_rootful rmi -af >/dev/null 2>&1 || true
    unmount_under "$RUNTIME_DIR/podman-rootful"
}

# --- waiting ----------------------------------------------------------------------------

# Polls `command...` until it succeeds; gives up early if process `pid` has exited.
wait_for() {
    local name=$1 pid=$2 log_file=$3 i
    shift 3
    for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
        "$@" && { log "$name answers"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    log "$name did not answer (exited, or not within ${WAIT_SECONDS}s); its log follows"
    tail -n 60 "$log_file" >&2 || true
    return 1
}

wait_for_exit() {
    local pid=$1 i
    for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    die "process $pid did not exit"
}

# --- commands ---------------------------------------------------------------------------

cmd_start() {
    [ "$(id -u)" -eq 0 ] || die "must run as root"
    install_packages
    mkdir -p "$RUNTIME_DIR"
    local driver
    for driver in "${DOCKER_DRIVERS[@]}"; do
        start_docker "$driver"
    done
    start_rootless
    start_podman_rootful
    log "all runtimes are up; load their addresses with: eval \"\$($0 env)\""
}

cmd_stop() {
    local driver
    for driver in "${DOCKER_DRIVERS[@]}"; do
        stop_docker "$driver"
    done
    stop_rootless
    stop_podman_rootful
    rm -rf "$RUNTIME_DIR"
}

cmd_start_podman_rootful() {
    [ "$(id -u)" -eq 0 ] || die "must run as root"
    install_packages
    start_podman_rootful
}

cmd_env() {
    echo "export IDFIT_DOCKER_OVERLAY2_HOST=$(docker_host overlay2)"
    echo "export IDFIT_DOCKER_VFS_HOST=$(docker_host vfs)"
    echo "export IDFIT_ROOTLESS_USER=$ROOTLESS_USER"
    echo "export IDFIT_PODMAN_ROOTFUL_STORAGE_CONF=$(rootful_dir)/storage.conf"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    start-podman-rootful) cmd_start_podman_rootful ;;
    *) die "usage: $0 start|stop|env|start-podman-rootful" ;;
esac
