#!/bin/sh
# linger.sh — what exporters.otlphttp.batch.linger buys, side by side:
#
#   sh testing/bench/linger.sh          (make bench-linger)
#
# For each load in LINGER_LOADS ("RATE:BATCH ...", spans/s and spans per
# request, rate 0 for a closed loop; default 10000:100 20000:100 10000:25
# 0:100) and LINGER_RUNS (3)
# rounds, two pass-throughs run at the same time, each with its own mock
# upstream (--fast) and load generator (4 connections, LINGER_SECONDS, 20):
# spillway with batch.linger 0s (every item sent at once while a connection
# is idle) and with LINGER_ON (10ms, the default). Running them at once
# puts a slow phase of a shared machine on both. Reports, per load, the
# median (min – max) of: upstream requests per client request, spillway's
# and the mock upstream's CPU % of one core, the pipeline's P99
# receive→upstream-ack (spillway_pipeline_latency_seconds, interpolated in
# its bucket), the client's P99, spans/s forwarded and items lost; prints a markdown table and
# writes it to $BENCH_OUT/linger.md. Ephemeral ports on 127.0.0.1, every
# process stopped by PID.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/testing/bench/lib.sh"
BIN=${SW_BIN_DIR:-$ROOT/${BUILD:-build}}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
for b in spillway spillway-mockup spillway-loadgen; do
    [ -x "$BIN/$b" ] || { log "missing $BIN/$b (make bench-linger builds it)"; exit 1; }
done
RUNS=${LINGER_RUNS:-3}
SECS=${LINGER_SECONDS:-20}
LOADS=${LINGER_LOADS:-10000:100 20000:100 10000:25 0:100}
ON=${LINGER_ON:-10ms}
OUT=${BENCH_OUT:-$ROOT/bench}
DRAIN_SECS=30
CLK_TCK=$(getconf CLK_TCK)
bench_work linger
. "$ROOT/testing/bench/procs.sh"
mkdir -p "$OUT" || exit 1
TOP=$WORK

# side NAME LINGER: a mock upstream and spillway with batch.linger LINGER
# in $TOP/NAME; sets <NAME>_SW, <NAME>_MOCK, <NAME>_MPORT, <NAME>_PORT, <NAME>_TEL.
side() {
    WORK=$TOP/$1; mkdir -p "$WORK"
    start_mockup
    BATCH_LINGER=$2 start_spillway none
    eval "$1_SW=$SW_PID; $1_MOCK=$MOCK_PID; $1_MPORT=$MOCK_PORT; $1_PORT=$OTLP_PORT; $1_TEL=$TEL_PORT"
    WORK=$TOP
}

# figures NAME JSON T0 T1 SW_TICKS MOCK_TICKS: "reqs_per_req sw_cpu mock_cpu
# pipe_p99_ms client_p99_ms lost forwarded_per_s" of one side.
figures() {
    eval "_tel=\$$1_TEL; _mport=\$$1_MPORT"
    _acc=$(jnum items_accepted "$2")
    MOCK_PORT=$_mport; drain "$_acc"
    curl -s --max-time 5 "http://127.0.0.1:$_tel/metrics" >"$TOP/$1.metrics"
    _up=$(metric_sum "$TOP/$1.metrics" spillway_exporter_requests_total)
    _sent=$(jnum requests_ok "$2")
    _pipe=$(hist_pct "$TOP/$1.metrics" spillway_pipeline_latency_seconds 0.99)
    _ns=$(($4 - $3))
    _lost=$((_acc > DELIVERED ? _acc - DELIVERED : 0))
    printf '%s %s %s %s %s %s %s' \
        "$(awk -v u="$_up" -v s="$_sent" 'BEGIN { printf "%.3f", (s > 0) ? u / s : 0 }')" \
        "$(cpu_pct "$5" "$_ns")" "$(cpu_pct "$6" "$_ns")" \
        "$(awk -v p="$_pipe" 'BEGIN { printf "%.2f", p * 1000 }')" "$(jnum p99 "$2")" \
        "$_lost" "$(awk -v n=$((_acc - _lost)) -v s="$(jnum send_seconds "$2")" \
            'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }')"
}

# round RATE BATCH N: appends "off figures... on figures..." to $TOP/<load>.tsv
# (RATE 0: closed loop, as fast as the connections allow).
round() {
    side OFF 0s; side ON "$ON"
    _a0=$(cpu_ticks "$OFF_SW"); _b0=$(cpu_ticks "$ON_SW")
    _c0=$(cpu_ticks "$OFF_MOCK"); _d0=$(cpu_ticks "$ON_MOCK"); _t0=$(now_ns)
    lg_bg "$OFF_PORT" "$1" "$2" "$((600 + $3))" "$TOP/lg_off.json"; _l1=$LG_PID
    lg_bg "$ON_PORT" "$1" "$2" "$((700 + $3))" "$TOP/lg_on.json"; _l2=$LG_PID
    wait "$_l1" "$_l2"
    _t1=$(now_ns)
    _a1=$(cpu_ticks "$OFF_SW"); _b1=$(cpu_ticks "$ON_SW")
    _c1=$(cpu_ticks "$OFF_MOCK"); _d1=$(cpu_ticks "$ON_MOCK")
    for _j in "$TOP/lg_off.json" "$TOP/lg_on.json"; do
        [ -s "$_j" ] || { log "load generator failed:"; cat "$_j.err" >&2; exit 1; }
    done
    echo "$(figures OFF "$TOP/lg_off.json" "$_t0" "$_t1" $((_a1 - _a0)) $((_c1 - _c0))) \
$(figures ON "$TOP/lg_on.json" "$_t0" "$_t1" $((_b1 - _b0)) $((_d1 - _d0)))" >>"$TOP/$1_$2.tsv"
    log "$1 spans/s, $2 per request, round $3: $(tail -n 1 "$TOP/$1_$2.tsv")"
    for _p in "$OFF_SW" "$OFF_MOCK" "$ON_SW" "$ON_MOCK"; do stop_pid "$_p"; done
}

fmt() { awk '{ printf "%s (%s – %s)", $1, $2, $3 }'; }
med() { col "$TOP/$1.tsv" "$2" | stats | fmt; }
lost() { awk -v c="$2" '{ s += $c } END { print s + 0 }' "$TOP/$1.tsv"; }
{
    echo "# batch.linger: 0s beside $ON"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uptime | sed 's/.*load average/load average/'); $RUNS rounds"
    echo "per load, both at once (4 connections, ${SECS} s, upstream compression none). Median (min – max)."
} >"$OUT/linger.md"
for l in $LOADS; do
    rate=${l%%:*}; batch=${l##*:}
    : >"$TOP/${rate}_$batch.tsv"
    r=1
    while [ "$r" -le "$RUNS" ]; do round "$rate" "$batch" "$r"; r=$((r + 1)); done
    k=${rate}_$batch
    {
        echo
        if [ "$rate" = 0 ]; then echo "## closed loop, $batch spans per request"
        else echo "## $rate spans/s, $batch spans per request ($((rate / batch)) requests/s)"; fi
        echo
        echo "| figure | linger 0s | linger $ON |"
        echo "|---|---|---|"
        echo "| upstream requests per client request | $(med "$k" 1) | $(med "$k" 8) |"
        echo "| spillway CPU % of one core | $(med "$k" 2) | $(med "$k" 9) |"
        echo "| mock upstream CPU % of one core | $(med "$k" 3) | $(med "$k" 10) |"
        echo "| pipeline P99 receive→upstream ack, ms | $(med "$k" 4) | $(med "$k" 11) |"
        echo "| client P99 ms | $(med "$k" 5) | $(med "$k" 12) |"
        echo "| spans/s forwarded | $(med "$k" 7) | $(med "$k" 14) |"
        echo "| items lost (all rounds) | $(lost "$k" 6) | $(lost "$k" 13) |"
    } >>"$OUT/linger.md"
done
cat "$OUT/linger.md"
