#!/bin/sh
# run_bench.sh — `make bench`: measures spillway against the targets of
# DESIGN.md and writes bench/report.md and bench/report.json.
#
#   (a) steady 10,000 spans/s (100 spans/request) for BENCH_SECONDS, BENCH_RUNS
#       times per upstream compression (none, zstd, gzip): spillway CPU % of
#       one core, peak RSS, client latency, receive->ack latency, loss.
#   (b) ceiling: offered rate stepped up, BENCH_STEP_SECONDS each; the highest
#       step with nothing refused, no errors and nothing lost.
#   (c) clean build time and binary sizes.
#   (d) scaling: spillway CPU, RSS and CPU-seconds per million spans at
#       BENCH_SCALE_RATES (1k and 100k; 10k is (a)) and at the ceiling.
#   (f) OTLP/gRPC beside OTLP/HTTP, (g) the filelog receiver, (h) memory vs
#       durable queue mode: see intakes.sh.
#   (e) microbenchmarks of the hot parts (build/bench/micro_*): APQ
#       push+pop, classify and decode per span, cardinality limiter per
#       point, DLQ spill and read+verify MiB/s and zstd ratio.
#
# Each run starts a fresh spillway-mockup (--fast) and spillway on
# 127.0.0.1 with ephemeral ports (ready files). Every process started is
# stopped by PID, also on interruption. Needs sh, awk, sed, curl, coreutils.
# Knobs (environment): see docs/performance.md.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/testing/bench/lib.sh"

BIN=${SW_BIN_DIR:-$ROOT/${BUILD:-build}}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
OUT=${BENCH_OUT:-$ROOT/bench}
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then SECS=${BENCH_SECONDS:-5}; else SECS=${BENCH_SECONDS:-60}; fi
RUNS=${BENCH_RUNS:-3}
if [ "$QUICK" = 1 ]; then SCALE_SECS=${BENCH_SCALE_SECONDS:-5}; else SCALE_SECS=${BENCH_SCALE_SECONDS:-15}; fi
SCALE_RATES=${BENCH_SCALE_RATES:-1000 100000}
SCALE_CONNS=${BENCH_SCALE_CONNECTIONS:-8}
MICRO_RUNS=${BENCH_MICRO_RUNS:-3}
RATE=${BENCH_RATE:-10000}
BATCH=${BENCH_BATCH:-100}
CONNS=${BENCH_CONNECTIONS:-4}
COMPRESSIONS=${BENCH_COMPRESSIONS:-none zstd gzip}
if [ "$QUICK" = 1 ]; then STEP_SECS=${BENCH_STEP_SECONDS:-5}; else STEP_SECS=${BENCH_STEP_SECONDS:-10}; fi
STEP_RATES=${BENCH_CEILING_RATES:-50000 100000 200000 400000 600000 800000}
STEP_CONNS=${BENCH_CEILING_CONNECTIONS:-16}
DRAIN_SECS=${BENCH_DRAIN_SECONDS:-30}
BATCH_TIMEOUT=${BENCH_BATCH_TIMEOUT:-}
if [ "$QUICK" = 1 ]; then CLOSED_SECS=${BENCH_CLOSED_SECONDS:-5}; else CLOSED_SECS=${BENCH_CLOSED_SECONDS:-10}; fi
CLOSED_CONNS=${BENCH_CLOSED_CONNECTIONS:-16}
FL_LINES=${BENCH_FL_LINES:-200000}
FL_FILES=${BENCH_FL_FILES:-100}
if [ "$QUICK" = 1 ]; then FL_SECONDS=${BENCH_FL_SECONDS:-5}; else FL_SECONDS=${BENCH_FL_SECONDS:-20}; fi
CLK_TCK=$(getconf CLK_TCK)

bench_work bench

for b in spillway spillway-mockup spillway-loadgen; do
    [ -x "$BIN/$b" ] || { log "missing $BIN/$b (run make first)"; exit 1; }
done
mkdir -p "$OUT" || exit 1

. "$ROOT/testing/bench/procs.sh"
. "$ROOT/testing/bench/intakes.sh"

# ---- (a) steady rate --------------------------------------------------

# steady_run COMPRESSION RUN: one steady run; appends a row to steady.tsv:
# comp run cpu% rss_kib p50 p99 ack_p50 ack_p95 ack_p99 sent accepted delivered lost refused errors late mock_cpu% lg_cpu% cpu_s_per_M
steady_run() {
    start_mockup
    start_spillway "$1"
    load "$RATE" "$CONNS" "$SECS" "$2"
    acc=$(jnum items_accepted "$LG")
    drain "$acc"
    curl -s --max-time 5 "http://127.0.0.1:$TEL_PORT/metrics" >"$WORK/metrics.txt"
    rss=$(peak_rss_kib "$SW_PID")
    m=$WORK/metrics.txt; h=spillway_pipeline_latency_seconds
    a50=$(awk -v v="$(hist_pct "$m" $h 0.50)" 'BEGIN { printf "%.3f", v * 1000 }')
    a95=$(awk -v v="$(hist_pct "$m" $h 0.95)" 'BEGIN { printf "%.3f", v * 1000 }')
    a99=$(awk -v v="$(hist_pct "$m" $h 0.99)" 'BEGIN { printf "%.3f", v * 1000 }')
    lost=$((acc > DELIVERED ? acc - DELIVERED : 0))
    stop_pair
    cpm=$(awk -v c="$SW_CPU_S" -v n="$acc" 'BEGIN { printf "%.3f", (n > 0) ? c / (n / 1e6) : 0 }')
    printf '%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$1" "$2" "$SW_CPU" "$rss" \
        "$(jnum p50 "$LG")" "$(jnum p99 "$LG")" "$a50" "$a95" "$a99" "$(jnum items_sent "$LG")" \
        "$acc" "$DELIVERED" "$lost" "$(jnum requests_refused "$LG")" \
        "$(( $(jnum connection_errors "$LG") + $(jnum unanswered "$LG") ))" "$(jnum late "$LG")" \
        "$MOCK_CPU" "$LG_CPU" "$cpm" >>"$WORK/steady.tsv"
    log "steady $1 run $2: cpu ${SW_CPU}% rss ${rss} KiB p99 $(jnum p99 "$LG") ms ack-p99 ${a99} ms lost $lost"
}

# ---- (b) ceiling ------------------------------------------------------

# step RATE: one ceiling step; appends to ceiling.tsv:
# rate achieved accepted delivered lost refused errors late unsent sw_cpu mock_cpu lg_cpu p99 spilled pass rss_kib cpu_s_per_M
ceiling_step() {
    start_mockup
    start_spillway none
    load "$1" "$STEP_CONNS" "$STEP_SECS" 7
    acc=$(jnum items_accepted "$LG")
    drain "$acc"
    curl -s --max-time 5 "http://127.0.0.1:$TEL_PORT/metrics" >"$WORK/metrics.txt"
    spilled=$(metric_sum "$WORK/metrics.txt" spillway_queue_spilled_total)
    rss=$(peak_rss_kib "$SW_PID")
    stop_pair
    lost=$((acc > DELIVERED ? acc - DELIVERED : 0))
    ref=$(jnum requests_refused "$LG")
    err=$(( $(jnum connection_errors "$LG") + $(jnum unanswered "$LG") ))
    ach=$(jnum achieved_rate "$LG")
    pass=$(awk -v a="$ach" -v r="$1" -v l="$lost" -v f="$ref" -v e="$err" -v u="$(jnum unsent "$LG")" \
        'BEGIN { print (l == 0 && f == 0 && e == 0 && u == 0 && a >= 0.97 * r) ? "yes" : "no" }')
    cpm=$(awk -v c="$SW_CPU_S" -v n="$acc" 'BEGIN { printf "%.3f", (n > 0) ? c / (n / 1e6) : 0 }')
    printf '%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$1" "$ach" "$acc" "$DELIVERED" "$lost" \
        "$ref" "$err" "$(jnum late "$LG")" "$(jnum unsent "$LG")" "$SW_CPU" "$MOCK_CPU" "$LG_CPU" \
        "$(jnum p99 "$LG")" "$spilled" "$pass" "$rss" "$cpm" >>"$WORK/ceiling.tsv"
    log "ceiling $1 spans/s: achieved $ach, cpu ${SW_CPU}% (mockup ${MOCK_CPU}%, loadgen ${LG_CPU}%), lost $lost, refused $ref, errors $err -> $pass"
    [ "$pass" = yes ]
}

# ---- (c) build --------------------------------------------------------

# Copies the source tree (tracked and untracked, not ignored) to a temp dir
# and times a clean `make` there. Sets BUILD_S, BUILD_J_S.
build_time() {
    src=$WORK/src
    mkdir -p "$src"
    if git -C "$ROOT" rev-parse >/dev/null 2>&1; then
        (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 -r cp --parents -t "$src" 2>/dev/null)
    else
        (cd "$ROOT" && tar cf - --exclude='./build*' --exclude=./bench --exclude=./data .) | (cd "$src" && tar xf -)
    fi
    _t0=$(now_ns)
    make -C "$src" all >"$WORK/build.log" 2>&1 || { log "clean build failed (see below)"; tail -n 20 "$WORK/build.log" >&2; BUILD_S=0; }
    BUILD_S=${BUILD_S:-$(awk -v ns=$(($(now_ns) - _t0)) 'BEGIN { printf "%.1f", ns / 1e9 }')}
    make -C "$src" clean >/dev/null 2>&1
    _t0=$(now_ns)
    make -C "$src" -j "$(nproc)" all >"$WORK/build.log" 2>&1
    BUILD_J_S=$(awk -v ns=$(($(now_ns) - _t0)) 'BEGIN { printf "%.1f", ns / 1e9 }')
    SIZES=""
    for b in spillway spillway-mockup spillway-loadgen; do
        f=$src/build/$b
        [ -f "$f" ] || continue
        strip -o "$WORK/stripped" "$f" 2>/dev/null || cp "$f" "$WORK/stripped"
        SIZES="$SIZES $b $(stat -c %s "$f") $(stat -c %s "$WORK/stripped")"
    done
    rm -rf "$src"
}

# ---- (d) scaling ------------------------------------------------------

# scale_run RATE RUN: spillway at RATE spans/s (upstream none); appends to
# scale.tsv: rate run cpu% rss_kib accepted delivered lost cpu_s_per_M
scale_run() {
    start_mockup
    start_spillway none
    load "$1" "$SCALE_CONNS" "$SCALE_SECS" "$((100 + $2))"
    acc=$(jnum items_accepted "$LG")
    drain "$acc"
    rss=$(peak_rss_kib "$SW_PID")
    stop_pair
    cpm=$(awk -v c="$SW_CPU_S" -v n="$acc" 'BEGIN { printf "%.3f", (n > 0) ? c / (n / 1e6) : 0 }')
    printf '%s %s %s %s %s %s %s %s\n' "$1" "$2" "$SW_CPU" "$rss" "$acc" "$DELIVERED" \
        $((acc > DELIVERED ? acc - DELIVERED : 0)) "$cpm" >>"$WORK/scale.tsv"
    log "scale $1 spans/s run $2: cpu ${SW_CPU}% rss ${rss} KiB, ${cpm} CPU-s per million spans"
}

# ---- (e) microbenchmarks ----------------------------------------------

# micro_fig NAME VALUE: one microbenchmark figure of this run (micro.tsv).
micro_fig() { [ -n "$2" ] && echo "$1 $2" >>"$WORK/micro.tsv"; }

# field OUT PATTERN: the number before UNIT on the first line matching PATTERN.
field() { grep -m1 -- "$2" "$1" | sed -n "s|.* \([0-9.][0-9.]*\) *$3.*|\1|p" | head -n 1; }

micro_apq() {
    [ -x "$BIN/bench/micro_apq" ] || { log "micro_apq not built (skipped)"; return; }
    "$BIN/bench/micro_apq" "${BENCH_APQ_ITEMS:-2000000}" >"$WORK/m.out" 2>&1 || return
    micro_fig apq_ns "$(field "$WORK/m.out" 'apq push+pop, 1 thread' 'ns/item')"
}

micro_prio() {
    [ -x "$BIN/bench/micro_prio" ] || { log "micro_prio not built (skipped)"; return; }
    "$BIN/bench/micro_prio" "${BENCH_PRIO_ITERS:-2000}" >"$WORK/m.out" 2>&1 || return
    micro_fig classify_ns "$(field "$WORK/m.out" 'classify, 1 resource (pass' 'ns/span')"
    micro_fig prio_items_ns "$(field "$WORK/m.out" 'prio_items, 10 resources' 'ns/span')"
    micro_fig validate_ns "$(field "$WORK/m.out" 'ow_validate, 1 resource' 'ns/span')"
    micro_fig unpack_ns "$(field "$WORK/m.out" 'protobuf-c unpack' 'ns/span')"
}

micro_card() {
    [ -x "$BIN/bench/micro_card" ] || { log "micro_card not built (skipped)"; return; }
    "$BIN/bench/micro_card" "${BENCH_CARD_ITERS:-60}" >"$WORK/m.out" 2>&1 || return
    micro_fig card_existing_ns "$(field "$WORK/m.out" 'fill 80%, existing' 'ns')"
    micro_fig card_new_ns "$(field "$WORK/m.out" 'fill 0%, new' 'ns')"
}

# micro_dlq RUN: the spill and read+verify figures. Except in the first run
# of a default (not quick) benchmark, the program is stopped (by PID) once
# they are out, before its 1 GiB start-up test (about 40 s).
micro_dlq() {
    [ -x "$BIN/bench/micro_dlq" ] || { log "micro_dlq not built (skipped)"; return; }
    mkdir -p "$WORK/dlq-micro"
    if [ "$QUICK" = 1 ] || [ "$1" != 1 ]; then
        start_bg "$WORK/m.out" stdbuf -oL "$BIN/bench/micro_dlq" "$WORK/dlq-micro" "${BENCH_DLQ_SECONDS:-2}"
        _p=$LAST_PID; _n=0
        while kill -0 "$_p" 2>/dev/null && ! grep -q '^spill_write_fsync_never' "$WORK/m.out" && [ "$_n" -lt 1200 ]; do
            sleep 0.05; _n=$((_n + 1))
        done
        stop_pid "$_p"
    else
        "$BIN/bench/micro_dlq" "$WORK/dlq-micro" "${BENCH_DLQ_SECONDS:-5}" >"$WORK/m.out" 2>&1
    fi
    rm -rf "$WORK/dlq-micro"
    micro_fig dlq_spill_mibs "$(field "$WORK/m.out" '^spill_write_fsync_always' 'MiB/s')"
    micro_fig dlq_read_mibs "$(field "$WORK/m.out" '^read_verify' 'MiB/s')"
    micro_fig dlq_zstd_ratio "$(sed -n 's/^compression_ratio \([0-9.]*\).*/\1/p' "$WORK/m.out" | head -n 1)"
    micro_fig dlq_startup_ms "$(field "$WORK/m.out" '^startup_1gib' 'ms')"
}

# ---- main -------------------------------------------------------------

. "$ROOT/testing/bench/report.sh"

log "machine: $(nproc) cores, $(cpu_model), kernel $(uname -r)"
log "steady: $RATE spans/s, $BATCH spans/request, ${SECS}s x $RUNS runs per compression ($COMPRESSIONS)"
: >"$WORK/steady.tsv"
for comp in $COMPRESSIONS; do
    r=1
    while [ "$r" -le "$RUNS" ]; do steady_run "$comp" "$r"; r=$((r + 1)); done
done

: >"$WORK/ceiling.tsv"
if [ "${BENCH_SKIP_CEILING:-0}" != 1 ]; then
    log "ceiling: steps $STEP_RATES spans/s, ${STEP_SECS}s each, $STEP_CONNS connections"
    for rate in $STEP_RATES; do ceiling_step "$rate" || break; done
fi

: >"$WORK/scale.tsv"
if [ "${BENCH_SKIP_SCALE:-0}" != 1 ]; then
    log "scaling: $SCALE_RATES spans/s, ${SCALE_SECS}s x $RUNS runs (10,000 spans/s: the steady runs)"
    for rate in $SCALE_RATES; do
        r=1
        while [ "$r" -le "$RUNS" ]; do scale_run "$rate" "$r"; r=$((r + 1)); done
    done
fi

: >"$WORK/proto.tsv"; : >"$WORK/fl_tput.tsv"; : >"$WORK/fl_steady.tsv"; : >"$WORK/modes.tsv"
[ "${BENCH_SKIP_GRPC:-0}" != 1 ] && bench_protocols
[ "${BENCH_SKIP_FILELOG:-0}" != 1 ] && bench_filelog
[ "${BENCH_SKIP_MODES:-0}" != 1 ] && bench_modes

: >"$WORK/micro.tsv"
if [ "${BENCH_SKIP_MICRO:-0}" != 1 ]; then
    log "microbenchmarks: $MICRO_RUNS runs each"
    r=1
    while [ "$r" -le "$MICRO_RUNS" ]; do
        micro_apq; micro_prio; micro_card; micro_dlq "$r"
        r=$((r + 1))
    done
fi

BUILD_S=""; BUILD_J_S=""; SIZES=""
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "build: clean make in a copy of the tree"
    build_time
fi

write_reports
log "wrote $OUT/report.md and $OUT/report.json"
cat "$OUT/report.md"
