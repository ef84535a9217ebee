#!/bin/sh
# floor.sh — spillway's CPU beside the floor of the same traffic:
#
#   sh testing/bench/floor.sh          (make bench-floor)
#
# For FLOOR_RUNS (5) rounds, two pass-throughs run at the same time, each
# with its own mock upstream (--fast) and load generator at FLOOR_RATE
# (10,000) spans/s, 100 spans per request, 4 connections, for
# FLOOR_SECONDS (20): spillway (upstream compression none) and
# build/bench/floor_fwd, a bare forwarder that answers 200 and writes each
# request unchanged upstream with nothing else (testing/bench/floor_fwd.c).
# Running both at once puts a slow phase of a shared machine on both, so
# the ratio spillway/floor is steadier than either figure. Reports CPU % of
# one core, client P99 and items lost for both, and the ratio; prints a
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

# lg PORT SEED FILE: one load generator run in the background; sets LG_PID.
lg() {
    "$BIN/spillway-loadgen" --protocol http --endpoint "http://127.0.0.1:$1" --signal traces \
        --rate "$RATE" --batch "$BATCH" --connections 4 --duration "$SECS" --seed "$2" \
        --json --quiet >"$3" 2>"$3.err" &
    LG_PID=$!
}

# round N: appends "floor_cpu sw_cpu floor_p99 sw_p99 floor_lost sw_lost" to floor.tsv.
round() {
    start_mockup; F_MOCK_PID=$MOCK_PID; F_MOCK_PORT=$MOCK_PORT
    rm -f "$WORK/fwd.ready"
    start_bg "$WORK/fwd.log" "$BIN/bench/floor_fwd" "$F_MOCK_PORT" "$WORK/fwd.ready"
    F_PID=$LAST_PID
    wait_file "$WORK/fwd.ready" 10 || { log "floor_fwd did not start"; cat "$WORK/fwd.log" >&2; exit 1; }
    F_PORT=$(sed -n 's/^http=.*:\([0-9]*\)$/\1/p' "$WORK/fwd.ready")
    start_mockup
    start_spillway none
    _f0=$(cpu_ticks "$F_PID"); _s0=$(cpu_ticks "$SW_PID"); _t0=$(now_ns)
    lg "$F_PORT" "$((500 + $1))" "$WORK/lg_f.json"; _l1=$LG_PID
    lg "$OTLP_PORT" "$((510 + $1))" "$WORK/lg_s.json"; _l2=$LG_PID
    wait "$_l1" "$_l2"
    _t1=$(now_ns); _f1=$(cpu_ticks "$F_PID"); _s1=$(cpu_ticks "$SW_PID")
    for _j in "$WORK/lg_f.json" "$WORK/lg_s.json"; do
        [ -s "$_j" ] || { log "load generator failed:"; cat "$_j.err" >&2; exit 1; }
    done
    _acc_s=$(jnum items_accepted "$WORK/lg_s.json"); drain "$_acc_s"; _sl=$((_acc_s - DELIVERED))
    _acc_f=$(jnum items_accepted "$WORK/lg_f.json")
    _saved=$MOCK_PORT; MOCK_PORT=$F_MOCK_PORT; drain "$_acc_f"; MOCK_PORT=$_saved
    _fl=$((_acc_f - DELIVERED))
    printf '%s %s %s %s %s %s\n' "$(cpu_pct $((_f1 - _f0)) $((_t1 - _t0)))" \
        "$(cpu_pct $((_s1 - _s0)) $((_t1 - _t0)))" "$(jnum p99 "$WORK/lg_f.json")" \
        "$(jnum p99 "$WORK/lg_s.json")" "$((_fl > 0 ? _fl : 0))" "$((_sl > 0 ? _sl : 0))" >>"$WORK/floor.tsv"
    log "round $1: $(tail -n 1 "$WORK/floor.tsv")"
    stop_pair; stop_pid "$F_PID"; stop_pid "$F_MOCK_PID"
}

: >"$WORK/floor.tsv"
r=1
while [ "$r" -le "$RUNS" ]; do round "$r"; r=$((r + 1)); done

fmt() { awk '{ printf "%s (%s – %s)", $1, $2, $3 }'; }
{
    echo "# spillway beside the floor of the same traffic"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uptime | sed 's/.*load average/load average/'); $RUNS rounds;"
    echo "both at once, $RATE spans/s each (100 spans per request, 4 connections, ${SECS} s)."
    echo "Median (min – max)."
    echo
    echo "| figure | floor (bare forwarder) | spillway |"
    echo "|---|---|---|"
    echo "| CPU % of one core | $(col "$WORK/floor.tsv" 1 | stats | fmt) | $(col "$WORK/floor.tsv" 2 | stats | fmt) |"
    echo "| client P99 ms | $(col "$WORK/floor.tsv" 3 | stats | fmt) | $(col "$WORK/floor.tsv" 4 | stats | fmt) |"
    echo "| items lost (all rounds) | $(awk '{ s += $5 } END { print s + 0 }' "$WORK/floor.tsv") | $(awk '{ s += $6 } END { print s + 0 }' "$WORK/floor.tsv") |"
    echo "| spillway CPU / floor CPU, per round | | $(awk '$1 > 0 { printf "%.3f\n", $2 / $1 }' "$WORK/floor.tsv" | stats | fmt) |"
    echo
    echo "| round | floor CPU % | spillway CPU % | floor P99 ms | spillway P99 ms | floor lost | spillway lost |"
    echo "|---|---|---|---|---|---|---|"
    awk '{ printf "| %d | %s | %s | %s | %s | %s | %s |\n", NR, $1, $2, $3, $4, $5, $6 }' "$WORK/floor.tsv"
} >"$OUT/floor.md"
cat "$OUT/floor.md"
