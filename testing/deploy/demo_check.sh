#!/bin/sh
# `make demo` in short: runs testing/scenarios/demo.sh for 10 s (upstream
# down from 5 s to 7 s) in a temp dir and checks that it exits 0, says
# nothing was lost, printed its summary (the high class over OTLP/gRPC, the
# others over OTLP/HTTP, and spillway answering requests on both receivers)
# and that the breaker opened and closed again; per class, the items
# spilled to disk were all replayed (the DLQ is empty at the end), and some
# class spilled. PASS/FAIL lines for testing/run_tests.sh.
# Usage: SW_BIN_DIR=build sh testing/deploy/demo_check.sh
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sw-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
DEMO_DIR=$tmp/demo DEMO_RATE=500 sh testing/scenarios/demo.sh --seconds 10 >"$tmp/out" 2>&1
rc=$?
sed 's/^/# /' "$tmp/out"
ok=1
check() { # name condition-description command...
    _n=$1; _d=$2; shift 2
    if "$@"; then echo "PASS: demo/$_n"; else echo "FAIL: demo/$_n: $_d"; ok=0; fi
}
check exit "demo.sh exited $rc" [ "$rc" = 0 ]
check nothing_lost "no 'nothing lost' line" grep -q '^demo: OK: nothing lost' "$tmp/out"
check summary "no per-class summary with its transport" sh -c "grep -q '^critical  *traces  *OTLP/HTTP ' '$tmp/out' && grep -q '^high  *metrics  *OTLP/gRPC ' '$tmp/out' && grep -q '^normal  *logs  *OTLP/HTTP ' '$tmp/out'"
check transports "spillway did not answer requests on both receivers" grep -qE '^spillway answered [1-9][0-9]* requests over OTLP/HTTP and [1-9][0-9]* over OTLP/gRPC$' "$tmp/out"
check breaker "the breaker did not open and close" sh -c "grep -q 'closed -> open' '$tmp/out' && grep -q -- '-> closed' '$tmp/out'"
check spilled "nothing was replayed from the DLQ" sh -c "! grep -q 'replayed: 0.00 MiB' '$tmp/out'"
# Columns: class signal transport sent accepted delivered spilled replayed duplicated LOST.
awk '$1 ~ /^(critical|high|normal)$/ && NF == 10 { n++; if ($7 !~ /^[0-9]+$/ || $7 != $8) bad = bad " " $1 "(" $7 "/" $8 ")"; s += $7 }
     END { if (bad != "") print "spilled/replayed differ:" bad; else if (n != 3) print n " class rows"; else if (s == 0) print "nothing spilled"; else print "ok" }' \
    "$tmp/out" >"$tmp/spill_rows"
check spilled_per_class "$(cat "$tmp/spill_rows")" grep -qx ok "$tmp/spill_rows"
[ "$ok" = 1 ]
