#!/bin/sh
# filelog_bench.sh — measures the filelog receiver (receivers.filelog) with
# the real binaries on loopback; prints a small report on stdout.
#
#   (a) throughput: FL_LINES (200,000) docker json-file lines with 200-byte
#       bodies, read from the beginning and forwarded to spillway-mockup
#       (--fast): wall time, lines/s, lines per CPU-second of spillway;
#   (b) steady load: FL_FILES (100) files each written at 100 lines/s for
#       FL_SECONDS (10): spillway CPU % of one core and peak RSS, nothing lost;
#   (c) latency: FL_PROBES (20) single lines written one at a time while
#       idle: file write -> counted by the upstream, P50 and max.
# Every process started is stopped by PID (lib.sh). Needs sh, awk, curl.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/testing/bench/lib.sh"

BIN=${SW_BIN_DIR:-$ROOT/${BUILD:-build}}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
LINES=${FL_LINES:-200000}
FILES=${FL_FILES:-100}
SECS=${FL_SECONDS:-10}
PROBES=${FL_PROBES:-20}
CLK_TCK=$(getconf CLK_TCK)
bench_work flbench

start_pair() { # start_pair INCLUDE_GLOB
    rm -rf "$WORK/mock.ready" "$WORK/sw.ready" "$WORK/dlq" "$WORK/pos"
    start_bg "$WORK/mock.log" "$BIN/spillway-mockup" --listen 127.0.0.1:0 --fast \
        --log-level warn --ready-file "$WORK/mock.ready"
    MOCK_PID=$LAST_PID
    wait_file "$WORK/mock.ready" 10 || { log "mockup did not start"; exit 1; }
    MOCK_PORT=$(sed -n 's/^http=.*:\([0-9]*\)$/\1/p' "$WORK/mock.ready")
    cat >"$WORK/spillway.yaml" <<YAML
receivers:
  otlp: { http: { endpoint: 127.0.0.1:0 } }
  filelog:
    include: ["$1"]
    start_at: beginning
    positions_dir: $WORK/pos
dlq: { dir: $WORK/dlq }
exporters: { otlphttp: { endpoint: "http://127.0.0.1:$MOCK_PORT", compression: none } }
telemetry: { endpoint: 127.0.0.1:0, log: { level: warn } }
YAML
    start_bg "$WORK/spillway.log" "$BIN/spillway" --config "$WORK/spillway.yaml" --ready-file "$WORK/sw.ready"
    SW_PID=$LAST_PID
    wait_file "$WORK/sw.ready" 10 || { log "spillway did not start"; cat "$WORK/spillway.log" >&2; exit 1; }
}

stop_pair() { stop_pid "$SW_PID"; stop_pid "$MOCK_PID"; }

# wait_logs N SECONDS: until the mock counted N log records; prints the count.
wait_logs() {
    _end=$(( $(date +%s) + $2 ))
    while :; do
        _n=$(mock_items "$MOCK_PORT" logs); _n=${_n:-0}
        if [ "$_n" -ge "$1" ] || [ "$(date +%s)" -ge "$_end" ]; then echo "$_n"; return; fi
        sleep 0.02
    done
}

# gen_lines FILE TAG FROM TO: docker json-file lines with 200-byte bodies.
gen_lines() {
    awk -v tag="$2" -v from="$3" -v to="$4" 'BEGIN {
        pad = sprintf("%180s", ""); gsub(/ /, "x", pad)
        for (i = from; i < to; i++)
            printf "{\"log\":\"%s %08d %s\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-07T10:00:00.%09dZ\"}\n", tag, i, substr(pad, 1, 200 - length(tag) - 10), i
    }' >>"$1"
}

echo "# filelog benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs)"

# (a) throughput
mkdir -p "$WORK/a"
gen_lines "$WORK/a/big.log" T 0 "$LINES"
BYTES=$(wc -c <"$WORK/a/big.log")
t0=$(now_ns)
start_pair "$WORK/a/*.log"
got=$(wait_logs "$LINES" 120)
t1=$(now_ns)
ticks=$(cpu_ticks "$SW_PID")
rss=$(peak_rss_kib "$SW_PID")
stop_pair
awk -v n="$got" -v want="$LINES" -v b="$BYTES" -v ns=$((t1 - t0)) -v t="$ticks" -v hz="$CLK_TCK" -v rss="$rss" 'BEGIN {
    cpu = t / hz
    printf "(a) throughput: %d of %d lines (%.1f MB, 200-byte bodies) in %.2f s: %.0f lines/s wall, %.0f lines per CPU-second of spillway (%.2f CPU-s), peak RSS %.1f MiB\n",
        n, want, b / 1e6, ns / 1e9, n / (ns / 1e9), (cpu > 0 ? n / cpu : 0), cpu, rss / 1024 }'

# (b) steady load: FILES files x 100 lines/s
mkdir -p "$WORK/b"
start_pair "$WORK/b/*.log"
t0=$(now_ns); c0=$(cpu_ticks "$SW_PID")
ticks_total=$((SECS * 10)); k=0
while [ "$k" -lt "$ticks_total" ]; do
    awk -v dir="$WORK/b" -v files="$FILES" -v k="$k" 'BEGIN {
        for (f = 0; f < files; f++) for (j = 0; j < 10; j++)
            printf "{\"log\":\"F%03d %08d steady load line with some text to reach a realistic length of a log line\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-07T10:00:00Z\"}\n", f, k * 10 + j >> (dir "/f" f ".log")
    }'
    k=$((k + 1))
    sleep 0.1
done
want=$((FILES * SECS * 100))
got=$(wait_logs "$want" 60)
t1=$(now_ns); c1=$(cpu_ticks "$SW_PID")
rss=$(peak_rss_kib "$SW_PID")
echo "(b) $FILES files x 100 lines/s for ${SECS} s: $got of $want lines delivered, spillway CPU $(cpu_pct $((c1 - c0)) $((t1 - t0))) % of one core (incl. the drain), peak RSS $((rss / 1024)) MiB"

# (c) latency of single lines while idle
lat="$WORK/lat.txt"; : >"$lat"
base=$(mock_items "$MOCK_PORT" logs); base=${base:-0}
i=0
while [ "$i" -lt "$PROBES" ]; do
    t0=$(now_ns)
    echo "{\"log\":\"probe $i\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-07T10:00:00Z\"}" >>"$WORK/b/f0.log"
    wait_logs $((base + i + 1)) 10 >/dev/null
    t1=$(now_ns)
    echo $(( (t1 - t0) / 1000000 )) >>"$lat"
    i=$((i + 1))
done
stop_pair
set -- $(stats <"$lat")
sorted=$(sort -n "$lat" | awk '{ v[NR] = $1 } END { i = int(NR * 0.99 + 0.999); if (i < 1) i = 1; print v[i] }')
echo "(c) file write -> upstream, $PROBES single lines (batch.timeout 200ms, exporter batch.timeout 200ms, 20 ms polling of /stats): median $1 ms, min $2 ms, P99 $sorted ms"
