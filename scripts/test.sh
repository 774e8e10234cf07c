#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, docs, unit and integration tests,
# and the differential tests against real runtimes (two remapped dockerds and rootless
# Podman), which this script installs, starts and stops again.
#
# Usage: scripts/test.sh            (as root: it installs packages and starts daemons)
#        IDFIT_NO_RUNTIMES=1 scripts/test.sh   skips the real runtimes (not allowed with CI=true)

set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "toolchain checks"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet

LOG=$(mktemp)

# Runs the tests, keeping their output for the total printed at the very end.
run_tests() {
    cargo test --locked --all-targets 2>&1 | tee "$LOG"
    return "${PIPESTATUS[0]}"
}

# One closing line totalling every test binary's results.
total() {
    awk '/^test result:/ { passed += $4; failed += $6 }
        END { printf "tests: %d passed, %d failed\n", passed, failed }' "$LOG"
    rm -f "$LOG"
}

if [ "${IDFIT_NO_RUNTIMES:-}" = 1 ] && [ "${CI:-}" != true ]; then
    step "tests (without real runtimes)"
    status=0
    run_tests || status=$?
    total
    exit "$status"
fi

step "starting real runtimes"
trap 'scripts/runtimes.sh stop' EXIT
scripts/runtimes.sh start
eval "$(scripts/runtimes.sh env)"

step "tests"
status=0
run_tests || status=$?
trap - EXIT
scripts/runtimes.sh stop
total
exit "$status"
