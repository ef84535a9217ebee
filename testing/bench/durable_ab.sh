#!/bin/sh
# durable_ab.sh — queue.mode memory vs durable, one run per line.
#
#   sh testing/bench/durable_ab.sh [RATE] [SECONDS] [RUNS]
#
# For each of memory, durable + fsync always, durable + fsync batch: starts
# spillway-mockup (--fast) and spillway (compression none, DLQ in a temp
# dir), sends RATE spans/s (0: closed loop) in requests of 100 spans on 4
# connections for SECONDS, and prints spillway's CPU % of a core and peak
# RSS, the spans/s accepted and forwarded, and the client P50/P99. Runs the
# three modes RUNS times, interleaved (take medians: the machine is noisy).
# Defaults: 10000 spans/s, 5 s, 3 runs. Binaries from $SW_BIN_DIR (build).
. "$(dirname "$0")/lib.sh"
B=${SW_BIN_DIR:-build}
RATE=${1:-10000}; DUR=${2:-5}; RUNS=${3:-3}
T=$(mktemp -d /tmp/spillway-durable-ab.XXXXXX)
trap 'stop_all; rm -rf "$T"' EXIT

json_num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$2" | head -1; }

one() { # MODE FSYNC
    rm -rf "$T/dlq" "$T/mock.ready" "$T/sw.ready"
    start_bg "$T/mock.log" "$B/spillway-mockup" --listen 127.0.0.1:0 --ready-file "$T/mock.ready" --fast
    MPID=$LAST_PID
    wait_file "$T/mock.ready" 10 || { log "mockup did not start"; return 1; }
    mport=$(sed 's/.*://' "$T/mock.ready")
    cat > "$T/cfg.yaml" <<EOC
receivers:
  otlp:
    http: { endpoint: 127.0.0.1:0 }
queue: { mode: $1 }
dlq: { dir: $T/dlq, fsync: $2 }
exporters:
  otlphttp: { endpoint: "http://127.0.0.1:$mport", compression: none }
telemetry:
  endpoint: 127.0.0.1:0
  log: { level: warn }
EOC
    start_bg "$T/sw.log" "$B/spillway" --config "$T/cfg.yaml" --ready-file "$T/sw.ready"
    SPID=$LAST_PID
    wait_file "$T/sw.ready" 10 || { log "spillway did not start"; cat "$T/sw.log" >&2; return 1; }
    port=$(sed -n 's/^otlp_http=.*:\([0-9]*\)$/\1/p' "$T/sw.ready")
    t0=$(cpu_ticks "$SPID"); n0=$(now_ns)
    "$B/spillway-loadgen" --endpoint "http://127.0.0.1:$port" --rate "$RATE" --batch 100 \
        --connections 4 --duration "$DUR" --json --quiet > "$T/lg.json" 2> "$T/lg.err"
    t1=$(cpu_ticks "$SPID"); n1=$(now_ns)
    sleep 0.5
    curl -s "http://127.0.0.1:$mport/stats" > "$T/stats.json"
    rss=$(peak_rss_kib "$SPID")
    fwd=$(sed -n 's/.*"items":{"traces":\([0-9]*\).*/\1/p' "$T/stats.json")
    awk -v m="$1" -v f="$2" -v t=$((t1 - t0)) -v n=$((n1 - n0)) -v hz="$(getconf CLK_TCK)" \
        -v rss="$rss" -v acc="$(json_num items_accepted "$T/lg.json")" -v fwd="${fwd:-0}" \
        -v d="$DUR" -v p50="$(json_num p50 "$T/lg.json")" -v p99="$(json_num p99 "$T/lg.json")" \
        'BEGIN { printf "%-8s fsync=%-6s cpu=%6.2f%%  rss=%6d KiB  accepted=%8.0f/s  forwarded=%8.0f/s  p50=%s ms  p99=%s ms\n",
                 m, f, 100 * t / hz / (n / 1e9), rss, acc / d, fwd / d, p50, p99 }'
    stop_pid "$SPID"
    stop_pid "$MPID"
}

echo "rate=$RATE spans/s (0 = closed loop), ${DUR}s per run, $RUNS runs"
i=0
while [ "$i" -lt "$RUNS" ]; do
    one memory always
    one durable always
    one durable batch
    i=$((i + 1))
done
