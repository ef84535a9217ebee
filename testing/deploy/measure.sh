#!/bin/sh
# Short measurements behind the sizing figures of docs/deploy.md and the
# profiles of docs/tuning.md: spillway, spillway-mockup (--fast) and
# spillway-loadgen on 127.0.0.1, each case at most MEASURE_SECONDS (default
# 10) of load. One line per case:
#   case rate_offered items_accepted cpu_pct peak_rss_mib client_p99_ms
#   pipeline_p99_le_s dlq_written_mib dlq_disk_peak_mib
# (pipeline_p99_le_s: the upper bound of the latency histogram bucket that
# holds the 99th percentile). Figures are reported, never asserted.
# Usage: SW_BIN_DIR=build sh testing/deploy/measure.sh [CASE...]
#   cases: outage memory16 memory64 low standard high lowlat (default: all)
set -u
BIN=${SW_BIN_DIR:-build}
SECS=${MEASURE_SECONDS:-10}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sw-measure.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. "$(dirname "$0")/../lib/wait.sh" # wait_file
metric() { awk -v k="$1" '$1 == k { s += $2 } END { printf "%.0f\n", s }' "$2"; }

# case NAME "MOCK ARGS" "CONFIG YAML (indented keys)" "LOADGEN ARGS"
run_case() {
    name=$1; mock_args=$2; conf=$3; lg_args=$4
    d="$tmp/$name"; mkdir -p "$d"
    # shellcheck disable=SC2086
    "$BIN/spillway-mockup" --listen 127.0.0.1:0 --fast --keep 0 --log-level error \
        --ready-file "$d/mock.ready" $mock_args 2>"$d/mock.log" &
    mp=$!; PIDS="$PIDS $mp"
    wait_file "$d/mock.ready" 10 || { echo "$name: mock did not start" >&2; return 1; }
    mock=$(sed -n 's/^http=//p' "$d/mock.ready")
    printf 'receivers:\n  otlp:\n    http: { endpoint: 127.0.0.1:0 }\ntelemetry:\n  endpoint: 127.0.0.1:0\n  log: { level: error }\n%s\n' \
        "$(printf '%s' "$conf" | sed "s|@MOCK@|$mock|g; s|@DLQ@|$d/dlq|g")" >"$d/sw.yaml"
    "$BIN/spillway" --config "$d/sw.yaml" --ready-file "$d/sw.ready" 2>"$d/sw.log" &
    sp=$!; PIDS="$sp $PIDS"
    wait_file "$d/sw.ready" 10 || { echo "$name: spillway did not start" >&2; cat "$d/sw.log" >&2; return 1; }
    otlp=$(sed -n 's/^otlp_http=//p' "$d/sw.ready"); tel=$(sed -n 's/^telemetry=//p' "$d/sw.ready")
    t0=$(awk '{ print $14 + $15 }' "/proc/$sp/stat")
    # shellcheck disable=SC2086
    "$BIN/spillway-loadgen" --endpoint "http://$otlp" --duration "$SECS" --json --quiet $lg_args \
        >"$d/lg.json" 2>"$d/lg.log" &
    lp=$!
    peak_dlq=0
    while kill -0 "$lp" 2>/dev/null; do
        curl -s --max-time 1 "http://$tel/metrics" >"$d/m" 2>/dev/null
        b=$(metric spillway_dlq_bytes "$d/m"); [ "$b" -gt "$peak_dlq" ] && peak_dlq=$b
        sleep 0.5
    done
    wait "$lp"
    sleep 1
    curl -s --max-time 2 "http://$tel/metrics" >"$d/m"
    t1=$(awk '{ print $14 + $15 }' "/proc/$sp/stat")
    rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$sp/status")
    kill -TERM "$sp" "$mp"; wait "$sp" "$mp" 2>/dev/null; PIDS=""
    hz=$(getconf CLK_TCK)
    acc=$(sed -n 's/.*"items_accepted":\([0-9]*\).*/\1/p' "$d/lg.json")
    rate=$(sed -n 's/.*"target_rate":\([0-9.]*\).*/\1/p' "$d/lg.json")
    p99=$(sed -n 's/.*"latency_ms":{[^}]*"p99":\([0-9.]*\).*/\1/p' "$d/lg.json")
    p99le=$(awk '/^spillway_pipeline_latency_seconds_bucket/ {
                   le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le); n++; L[n] = le; C[n] = $2 }
                 /^spillway_pipeline_latency_seconds_count/ { tot = $2 }
                 END { for (i = 1; i <= n; i++) if (tot > 0 && C[i] >= 0.99 * tot) { print L[i]; exit } print "-" }' "$d/m")
    wb=$(metric spillway_dlq_written_bytes_total "$d/m")
    awk -v n="$name" -v r="$rate" -v a="$acc" -v c="$((t1 - t0))" -v hz="$hz" -v s="$SECS" -v rss="$rss" \
        -v p="$p99" -v le="$p99le" -v wb="$wb" -v pd="$peak_dlq" 'BEGIN {
        printf "%-9s rate=%s accepted=%s cpu=%.1f%% peak_rss=%.1fMiB client_p99=%sms pipeline_p99<=%ss dlq_written=%.1fMiB dlq_disk_peak=%.1fMiB\n",
            n, r, a, 100 * c / hz / (s + 1), rss / 1024, p, le, wb / 1048576, pd / 1048576 }'
}

cases=${*:-outage memory16 memory64 low standard high lowlat}
for c in $cases; do
    case $c in
    outage) # the upstream refuses connections for the whole run: all to disk
        run_case outage "--outage-at 0:3600:refuse" \
"exporters:
  otlphttp: { endpoint: http://@MOCK@, circuit_breaker: { open_duration: 60s } }
dlq: { dir: @DLQ@, fsync: batch }" "--signal traces --rate 10000 --batch 100 --services 12" ;;
    memory16 | memory64) # a slow upstream: the queue fills to spill_threshold
        mb=${c#memory}
        run_case "$c" "--latency-ms 5000" \
"queue: { max_bytes: ${mb}MiB }
exporters:
  otlphttp: { endpoint: http://@MOCK@, max_in_flight: 1, batch: { max_bytes: 256KiB } }
dlq: { dir: @DLQ@, fsync: batch }" "--signal traces --rate 30000 --batch 100 --services 12 --connections 8" ;;
    low)
        run_case low "" \
"queue: { max_bytes: 8MiB }
exporters:
  otlphttp: { endpoint: http://@MOCK@, compression: zstd, max_in_flight: 1, batch: { timeout: 1s } }
dlq: { dir: @DLQ@ }" "--signal traces,metrics,logs --rate 300 --batch 10 --services 12" ;;
    standard)
        run_case standard "" \
"exporters:
  otlphttp: { endpoint: http://@MOCK@ }
dlq: { dir: @DLQ@ }" "--signal traces --rate 10000 --batch 100 --services 12" ;;
    high)
        run_case high "" \
"queue: { max_bytes: 256MiB }
exporters:
  otlphttp: { endpoint: http://@MOCK@, compression: zstd, max_in_flight: 16, batch: { max_bytes: 8MiB } }
dlq: { dir: @DLQ@, fsync: batch }" "--signal traces --rate 100000 --batch 100 --services 12 --connections 8" ;;
    lowlat)
        run_case lowlat "" \
"exporters:
  otlphttp: { endpoint: http://@MOCK@, compression: none, max_in_flight: 8, batch: { timeout: 5ms } }
dlq: { dir: @DLQ@ }" "--signal traces --rate 10000 --batch 100 --services 12" ;;
    *) echo "measure.sh: unknown case $c" >&2; exit 2 ;;
    esac
done
