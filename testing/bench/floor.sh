#!/bin/sh
# floor.sh — spillway's CPU beside the floor of the same traffic:
#
#   sh testing/bench/floor.sh          (make bench-floor)
#
# For FLOOR_RUNS (5) rounds, three pass-throughs run at the same time, each
# with its own mock upstream (--fast) and load generator at FLOOR_RATE
# (10,000) spans/s, 100 spans per request, 4 connections, for
# FLOOR_SECONDS (20): build/bench/floor_fwd, a bare forwarder that answers
# 200 and writes each request unchanged upstream with nothing else
# (testing/bench/floor_fwd.c); the same with --handoff, its upstream side
# on a second thread as in spillway; and spillway (upstream compression
# none). Running them at once puts a slow phase of a shared machine on all
# three, so the ratios are steadier than the figures. Reports CPU % of one
# core, client P99 and items lost for each, and the ratios; prints a
# markdown table (median, min – max) and writes it to $BENCH_OUT/floor.md.
# Ephemeral ports on 127.0.0.1, every process stopped by PID.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/testing/bench/lib.sh"
BIN=${SW_BIN_DIR:-$ROOT/${BUILD:-build}}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
for b in spillway spillway-mockup spillway-loadgen bench/floor_fwd; do
    [ -x "$BIN/$b" ] || { log "missing $BIN/$b (make bench-floor builds it)"; exit 1; }
done
RUNS=${FLOOR_RUNS:-5}
SECS=${FLOOR_SECONDS:-20}
RATE=${FLOOR_RATE:-10000}
OUT=${BENCH_OUT:-$ROOT/bench}
BATCH=100
DRAIN_SECS=30
CLK_TCK=$(getconf CLK_TCK)
bench_work floor
. "$ROOT/testing/bench/procs.sh"
mkdir -p "$OUT" || exit 1

# start_floor NAME [--handoff]: a mock upstream and floor_fwd in front of
# it; sets <NAME>_PID, <NAME>_MOCK_PID, <NAME>_MOCK_PORT, <NAME>_PORT.
start_floor() {
    start_mockup
    eval "$1_MOCK_PID=$MOCK_PID; $1_MOCK_PORT=$MOCK_PORT"
    rm -f "$WORK/$1.ready"
    start_bg "$WORK/$1.log" "$BIN/bench/floor_fwd" ${2:-} "$MOCK_PORT" "$WORK/$1.ready"
    eval "$1_PID=$LAST_PID"
    wait_file "$WORK/$1.ready" 10 || { log "floor_fwd did not start"; cat "$WORK/$1.log" >&2; exit 1; }
    eval "$1_PORT=$(sed -n 's/^http=.*:\([0-9]*\)$/\1/p' "$WORK/$1.ready")"
}

# lost_at MOCK_PORT JSON: items the load generator had accepted that the
# mock upstream did not count (after draining).
lost_at() {
    _acc=$(jnum items_accepted "$2"); _saved=$MOCK_PORT; MOCK_PORT=$1; drain "$_acc"
    MOCK_PORT=$_saved; echo $((_acc > DELIVERED ? _acc - DELIVERED : 0))
}

# round N: appends "f1_cpu f2_cpu sw_cpu f1_p99 f2_p99 sw_p99 f1_lost f2_lost
# sw_lost" to floor.tsv (f1: floor_fwd, f2: floor_fwd --handoff).
round() {
    start_floor F1; start_floor F2 --handoff
    start_mockup
    start_spillway none
    _a0=$(cpu_ticks "$F1_PID"); _b0=$(cpu_ticks "$F2_PID"); _s0=$(cpu_ticks "$SW_PID"); _t0=$(now_ns)
    lg_bg "$F1_PORT" "$RATE" "$BATCH" "$((500 + $1))" "$WORK/lg_f1.json"; _l1=$LG_PID
    lg_bg "$F2_PORT" "$RATE" "$BATCH" "$((510 + $1))" "$WORK/lg_f2.json"; _l2=$LG_PID
    lg_bg "$OTLP_PORT" "$RATE" "$BATCH" "$((520 + $1))" "$WORK/lg_s.json"; _l3=$LG_PID
    wait "$_l1" "$_l2" "$_l3"
    _t1=$(now_ns); _a1=$(cpu_ticks "$F1_PID"); _b1=$(cpu_ticks "$F2_PID"); _s1=$(cpu_ticks "$SW_PID")
    for _j in "$WORK/lg_f1.json" "$WORK/lg_f2.json" "$WORK/lg_s.json"; do
        [ -s "$_j" ] || { log "load generator failed:"; cat "$_j.err" >&2; exit 1; }
    done
    _ns=$((_t1 - _t0))
    printf '%s %s %s %s %s %s %s %s %s\n' "$(cpu_pct $((_a1 - _a0)) $_ns)" \
        "$(cpu_pct $((_b1 - _b0)) $_ns)" "$(cpu_pct $((_s1 - _s0)) $_ns)" \
        "$(jnum p99 "$WORK/lg_f1.json")" "$(jnum p99 "$WORK/lg_f2.json")" "$(jnum p99 "$WORK/lg_s.json")" \
        "$(lost_at "$F1_MOCK_PORT" "$WORK/lg_f1.json")" "$(lost_at "$F2_MOCK_PORT" "$WORK/lg_f2.json")" \
        "$(lost_at "$MOCK_PORT" "$WORK/lg_s.json")" >>"$WORK/floor.tsv"
    log "round $1: $(tail -n 1 "$WORK/floor.tsv")"
    stop_pair; stop_pid "$F1_PID"; stop_pid "$F1_MOCK_PID"; stop_pid "$F2_PID"; stop_pid "$F2_MOCK_PID"
}

: >"$WORK/floor.tsv"
r=1
while [ "$r" -le "$RUNS" ]; do round "$r"; r=$((r + 1)); done

fmt() { awk '{ printf "%s (%s – %s)", $1, $2, $3 }'; }
med() { col "$WORK/floor.tsv" "$1" | stats | fmt; }
ratio() { awk -v a="$1" -v b="$2" '$a > 0 { printf "%.3f\n", $b / $a }' "$WORK/floor.tsv" | stats | fmt; }
lost() { awk -v c="$1" '{ s += $c } END { print s + 0 }' "$WORK/floor.tsv"; }
{
    echo "# spillway beside the floor of the same traffic"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uptime | sed 's/.*load average/load average/'); $RUNS rounds;"
    echo "all three at once, $RATE spans/s each (100 spans per request, 4 connections, ${SECS} s)."
    echo "Median (min – max)."
    echo
    echo "| figure | floor: one thread | floor: two threads (--handoff) | spillway |"
    echo "|---|---|---|---|"
    echo "| CPU % of one core | $(med 1) | $(med 2) | $(med 3) |"
    echo "| client P99 ms | $(med 4) | $(med 5) | $(med 6) |"
    echo "| items lost (all rounds) | $(lost 7) | $(lost 8) | $(lost 9) |"
    echo "| CPU / one-thread floor, per round | 1 | $(ratio 1 2) | $(ratio 1 3) |"
    echo "| CPU / two-thread floor, per round | | 1 | $(ratio 2 3) |"
    echo
    echo "| round | floor CPU % | floor --handoff CPU % | spillway CPU % | P99 ms (floor, --handoff, spillway) | lost |"
    echo "|---|---|---|---|---|---|"
    awk '{ printf "| %d | %s | %s | %s | %s, %s, %s | %d |\n", NR, $1, $2, $3, $4, $5, $6, $7 + $8 + $9 }' "$WORK/floor.tsv"
} >"$OUT/floor.md"
cat "$OUT/floor.md"
