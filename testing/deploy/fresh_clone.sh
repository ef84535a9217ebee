#!/bin/sh
# A new user's first command: clone the repository and run plain `make`
# (no target). Checks that the three binaries exist and run. The clone is of
# the committed HEAD of this repository (uncommitted changes are not in it),
# into a temporary directory that is removed afterwards.
# Prints "PASS: fresh_clone/..." / "FAIL: fresh_clone/..." lines for
# testing/run_tests.sh. Usage: sh testing/deploy/fresh_clone.sh [REPO_DIR]
set -u
repo=${1:-.}
# Run as a recipe of `make test`: do not inherit its flags or jobserver.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES GNUMAKEFLAGS BUILD SANITIZE CFLAGS
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sw-fresh-clone.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
if ! git clone -q --no-hardlinks "$repo" "$tmp/spillway" >"$tmp/clone.log" 2>&1; then
    echo "FAIL: fresh_clone/clone: git clone $repo failed"
    cat "$tmp/clone.log"
    exit 1
fi
echo "PASS: fresh_clone/clone ($(git -C "$tmp/spillway" rev-parse --short HEAD))"
start=$(date +%s)
# Plain `make`, as the README says; -j only to share the build time.
if ! (cd "$tmp/spillway" && make -j"$(nproc)") >"$tmp/make.log" 2>&1; then
    echo "FAIL: fresh_clone/make: make in a fresh clone failed"
    tail -n 40 "$tmp/make.log"
    exit 1
fi
echo "PASS: fresh_clone/make ($(( $(date +%s) - start )) s)"
for b in spillway spillway-mockup spillway-loadgen; do
    f="$tmp/spillway/build/$b"
    if [ ! -x "$f" ]; then
        echo "FAIL: fresh_clone/$b: build/$b missing after plain make"
        fail=1
    elif ! "$f" --help >/dev/null 2>&1; then
        echo "FAIL: fresh_clone/$b: build/$b --help failed"
        fail=1
    else
        echo "PASS: fresh_clone/$b"
    fi
done
exit $fail
