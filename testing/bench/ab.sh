#!/bin/sh
# ab.sh — A/B of two spillway binaries in one run, runs alternating:
#
#   sh testing/bench/ab.sh BEFORE_DIR AFTER_DIR
#
# BEFORE_DIR and AFTER_DIR are build directories holding a `spillway`
# binary (e.g. /tmp/ab-before/build and build); the load generator and the
# mock upstream (--fast) are always AFTER_DIR's, so only spillway differs.
# For each of AB_RUNS (3) rounds, in alternating order (before first in odd
# rounds, after first in even ones):
#   steady: AB_RATE (10,000) spans/s, 100 spans per request, 4 connections,
#           AB_SECONDS (15; 5 with BENCH_QUICK=1), upstream compression
#           none: spillway CPU % of one core, peak RSS, client P99, lost;
#   closed: closed loop (--rate 0) on 16 connections for AB_CLOSED_SECONDS
#           (10; 5 quick): spans/s accepted and forwarded (accepted minus
#           lost) over the send window, lost.
# Prints a markdown table (median, min, max) and the runs; also writes it
# to $BENCH_OUT/ab.md. Fresh processes every run, ephemeral ports on
# 127.0.0.1, every process stopped by PID.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/testing/bench/lib.sh"

[ $# -eq 2 ] || { echo "usage: sh testing/bench/ab.sh BEFORE_DIR AFTER_DIR" >&2; exit 2; }
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
BEFORE=$(abs "$1"); AFTER=$(abs "$2"); BIN=$AFTER
for b in "$BEFORE/spillway" "$AFTER/spillway" "$AFTER/spillway-mockup" "$AFTER/spillway-loadgen"; do
    [ -x "$b" ] || { log "missing $b"; exit 1; }
done
QUICK=${BENCH_QUICK:-0}
RUNS=${AB_RUNS:-3}
RATE=${AB_RATE:-10000}
if [ "$QUICK" = 1 ]; then SECS=${AB_SECONDS:-5}; CSECS=${AB_CLOSED_SECONDS:-5}
else SECS=${AB_SECONDS:-15}; CSECS=${AB_CLOSED_SECONDS:-10}; fi
BATCH=100
DRAIN_SECS=${BENCH_DRAIN_SECONDS:-30}
BATCH_TIMEOUT=""
OUT=${BENCH_OUT:-$ROOT/bench}
CLK_TCK=$(getconf CLK_TCK)
bench_work ab
. "$ROOT/testing/bench/procs.sh"
mkdir -p "$OUT" || exit 1

# ab_run SIDE KIND RUN: appends to ab.tsv:
# side kind run cpu% rss_kib p99 accepted lost accepted/s forwarded/s refused errors
ab_run() {
    if [ "$1" = before ]; then SW_EXE=$BEFORE/spillway; else SW_EXE=$AFTER/spillway; fi
    start_mockup
    start_spillway none
    if [ "$2" = steady ]; then load "$RATE" 4 "$SECS" "$((400 + $3))"; else load 0 16 "$CSECS" "$((410 + $3))"; fi
    acc=$(jnum items_accepted "$LG")
    drain "$acc"
    rss=$(peak_rss_kib "$SW_PID")
    stop_pair
    lost=$((acc > DELIVERED ? acc - DELIVERED : 0))
    printf '%s %s %s %s %s %s %s %s %s %s %s %s\n' "$1" "$2" "$3" "$SW_CPU" "$rss" "$(jnum p99 "$LG")" \
        "$acc" "$lost" "$(per_s "$acc")" "$(per_s $((acc - lost)))" "$(jnum requests_refused "$LG")" \
        "$(lg_errors)" >>"$WORK/ab.tsv"
    log "$1 $2 run $3: $(tail -n 1 "$WORK/ab.tsv")"
}

# st SIDE KIND COLUMN [SCALE]: "median min max".
st() { awk -v v="$1" -v k="$2" -v c="$3" -v s="${4:-1}" '$1 == v && $2 == k { printf "%.3f\n", $c * s }' "$WORK/ab.tsv" | stats; }
sum() { awk -v v="$1" -v k="$2" -v c="$3" '$1 == v && $2 == k { s += $c } END { print s + 0 }' "$WORK/ab.tsv"; }

report() {
    echo "# A/B: before = $BEFORE/spillway, after = $AFTER/spillway"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uptime | sed 's/.*load average/load average/'); $RUNS rounds, alternating;"
    echo "steady $RATE spans/s (100 spans per request, 4 connections, ${SECS} s, upstream compression none);"
    echo "closed loop 16 connections, ${CSECS} s. Median (min – max)."
    echo
    echo "| figure | before | after |"
    echo "|---|---|---|"
    row() { # LABEL KIND COLUMN [SCALE]
        b=$(st before "$2" "$3" "${4:-1}" | awk '{ f = ($1 >= 1000) ? "%.0f" : "%s"; printf f " (" f " – " f ")", $1, $2, $3 }')
        a=$(st after "$2" "$3" "${4:-1}" | awk '{ f = ($1 >= 1000) ? "%.0f" : "%s"; printf f " (" f " – " f ")", $1, $2, $3 }')
        echo "| $1 | $b | $a |"
    }
    row "CPU % of one core at $RATE spans/s" steady 4
    row "peak RSS MiB at $RATE spans/s" steady 5 0.0009765625
    row "client P99 ms at $RATE spans/s" steady 6
    echo "| spans lost at $RATE spans/s (all rounds) | $(sum before steady 8) | $(sum after steady 8) |"
    row "closed loop: spans/s forwarded (accepted − lost)" closed 10
    row "closed loop: spans/s accepted" closed 9
    row "closed loop: spillway CPU % of one core" closed 4
    echo "| closed loop: spans lost / refused requests (all rounds) | $(sum before closed 8) / $(sum before closed 11) | $(sum after closed 8) / $(sum after closed 11) |"
    echo
    echo "| side | kind | round | CPU % | peak RSS KiB | client p99 ms | accepted | lost | accepted/s | forwarded/s | refused | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    awk '{ printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$WORK/ab.tsv"
}

: >"$WORK/ab.tsv"
r=1
while [ "$r" -le "$RUNS" ]; do
    if [ $((r % 2)) = 1 ]; then order="before after"; else order="after before"; fi
    for kind in steady closed; do
        for side in $order; do ab_run "$side" "$kind" "$r"; done
    done
    r=$((r + 1))
done
report | tee "$OUT/ab.md"
