#!/bin/sh
# make demo: runs spillway, the mock upstream and the load generator together
# on loopback for a bounded time (DEMO_SECONDS, default 10) and prints what
# happened. Every process started here is stopped by PID on exit.
set -eu
BIN=${SW_BIN_DIR:-build}
SECS=${DEMO_SECONDS:-10}
RATE=${DEMO_RATE:-2000}
tmp=$(mktemp -d)
mock_pid=""; sw_pid=""
cleanup() {
    for p in $sw_pid $mock_pid; do kill "$p" 2>/dev/null || true; done
    for p in $sw_pid $mock_pid; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

wait_file() { # path, seconds
    n=0
    while [ ! -s "$1" ]; do
        n=$((n + 1)); [ "$n" -gt $(($2 * 20)) ] && { echo "demo: $1 not written" >&2; exit 1; }
        sleep 0.05
    done
}

"$BIN/spillway-mockup" --listen 127.0.0.1:0 --ready-file "$tmp/mock.ready" 2>"$tmp/mock.log" &
mock_pid=$!
wait_file "$tmp/mock.ready" 10
mock_addr=$(sed -n 's/^http=//p' "$tmp/mock.ready")

cat >"$tmp/spillway.yaml" <<YAML
receivers:
  otlp:
    http: { endpoint: 127.0.0.1:0 }
exporters:
  otlphttp:
    endpoint: http://$mock_addr
    compression: zstd
telemetry:
  endpoint: 127.0.0.1:0
  log: { level: info, format: text }
dlq:
  dir: $tmp/dlq
YAML
"$BIN/spillway" --config "$tmp/spillway.yaml" --ready-file "$tmp/sw.ready" 2>"$tmp/spillway.log" &
sw_pid=$!
wait_file "$tmp/sw.ready" 10
otlp=$(sed -n 's/^otlp_http=//p' "$tmp/sw.ready")
tel=$(sed -n 's/^telemetry=//p' "$tmp/sw.ready")

echo "demo: spillway on $otlp (telemetry $tel), mock upstream on $mock_addr"
for sig in traces metrics logs; do
    echo "demo: sending $sig at $RATE items/s for $SECS s"
    "$BIN/spillway-loadgen" --endpoint "http://$otlp" --signal "$sig" --rate "$RATE" \
        --duration "$SECS"
done
sleep 1
kill -TERM "$sw_pid"; wait "$sw_pid" || true; sw_pid=""
echo "demo: upstream received:"
curl -s "http://$mock_addr/stats" 2>/dev/null || echo "(curl not available)"
echo
echo "demo: spillway log:"
cat "$tmp/spillway.log"
