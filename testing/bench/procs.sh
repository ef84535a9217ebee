# procs.sh — starting, loading and stopping spillway and the mock upstream
# for the bench scripts (sourced after lib.sh; POSIX sh + awk).
#
# Needs BIN (the load generator and mock upstream), WORK (a temp dir),
# CLK_TCK, DRAIN_SECS and BATCH. What start_spillway writes into the config
# comes from these variables (empty = left out, the config default):
#   SW_EXE         the spillway binary (default $BIN/spillway)
#   SW_GRPC        1: also receivers.otlp.grpc on 127.0.0.1:0
#   SW_FILELOG     a glob: receivers.filelog reading it from the beginning
#   SW_QUEUE_MODE  queue.mode (memory | durable)
#   SW_FSYNC       dlq.fsync (always | batch | never)
#   BATCH_TIMEOUT  exporters.otlphttp.batch.timeout
#   BATCH_LINGER   exporters.otlphttp.batch.linger
# and load() sends with LG_PROTO (http, the default, or grpc).

start_mockup() {
    rm -f "$WORK/mock.ready"
    start_bg "$WORK/mock.log" "$BIN/spillway-mockup" --listen 127.0.0.1:0 --fast \
        --log-level warn --ready-file "$WORK/mock.ready"
    MOCK_PID=$LAST_PID
    wait_file "$WORK/mock.ready" 10 || { log "mockup did not start:"; cat "$WORK/mock.log" >&2; exit 1; }
    MOCK_PORT=$(sed -n 's/^http=.*:\([0-9]*\)$/\1/p' "$WORK/mock.ready")
}

# start_spillway COMPRESSION
start_spillway() {
    rm -rf "$WORK/sw.ready" "$WORK/dlq" "$WORK/pos"
    {
        echo "receivers:"
        echo "  otlp:"
        echo "    http: { endpoint: 127.0.0.1:0 }"
        [ "${SW_GRPC:-0}" = 1 ] && echo "    grpc: { endpoint: 127.0.0.1:0 }"
        [ -n "${SW_FILELOG:-}" ] &&
            echo "  filelog: { include: [\"$SW_FILELOG\"], start_at: beginning, positions_dir: $WORK/pos }"
        [ -n "${SW_QUEUE_MODE:-}" ] && echo "queue: { mode: $SW_QUEUE_MODE }"
        echo "dlq: { dir: $WORK/dlq$( [ -n "${SW_FSYNC:-}" ] && echo ", fsync: $SW_FSYNC") }"
        echo "exporters:"
        echo "  otlphttp:"
        echo "    endpoint: http://127.0.0.1:$MOCK_PORT"
        echo "    compression: $1"
        _batch="${BATCH_TIMEOUT:+timeout: $BATCH_TIMEOUT}"
        [ -n "${BATCH_LINGER:-}" ] && _batch="${_batch:+$_batch, }linger: $BATCH_LINGER"
        [ -n "$_batch" ] && echo "    batch: { $_batch }"
        echo "telemetry: { endpoint: 127.0.0.1:0, log: { level: warn } }"
    } >"$WORK/spillway.yaml"
    start_bg "$WORK/spillway.log" "${SW_EXE:-$BIN/spillway}" --config "$WORK/spillway.yaml" \
        --ready-file "$WORK/sw.ready"
    SW_PID=$LAST_PID
    wait_file "$WORK/sw.ready" 10 || { log "spillway did not start:"; cat "$WORK/spillway.log" >&2; exit 1; }
    OTLP_PORT=$(sed -n 's/^otlp_http=.*:\([0-9]*\)$/\1/p' "$WORK/sw.ready")
    GRPC_PORT=$(sed -n 's/^otlp_grpc=.*:\([0-9]*\)$/\1/p' "$WORK/sw.ready")
    TEL_PORT=$(sed -n 's/^telemetry=.*:\([0-9]*\)$/\1/p' "$WORK/sw.ready")
}

# lg_bg PORT RATE BATCH SEED FILE: a load generator in the background
# (traces over OTLP/HTTP, 4 connections, SECS seconds; RATE 0: closed loop),
# its JSON summary to FILE and its stderr to FILE.err; sets LG_PID.
lg_bg() {
    "$BIN/spillway-loadgen" --protocol http --endpoint "http://127.0.0.1:$1" --signal traces \
        --rate "$2" --batch "$3" --connections 4 --duration "$SECS" --seed "$4" \
        --json --quiet >"$5" 2>"$5.err" &
    LG_PID=$!
}

stop_pair() { stop_pid "$SW_PID"; stop_pid "$MOCK_PID"; SW_PID=""; MOCK_PID=""; }

# drain ACCEPTED [SIGNAL]: waits until the upstream counted ACCEPTED items of
# SIGNAL (traces) or more, or DRAIN_SECS passed; sets DELIVERED.
drain() {
    _end=$(($(date +%s) + DRAIN_SECS))
    while :; do
        DELIVERED=$(mock_items "$MOCK_PORT" "${2:-traces}")
        DELIVERED=${DELIVERED:-0}
        [ "$DELIVERED" -ge "$1" ] && break
        [ "$(date +%s)" -ge "$_end" ] && break
        sleep "${DRAIN_POLL:-0.2}"
    done
}

# load RATE CONNS SECONDS SEED: runs the load generator against spillway
# (OTLP/HTTP, or OTLP/gRPC with LG_PROTO=grpc), measuring spillway's and the
# mockup's CPU over the run. RATE 0 is a closed loop.
# Sets LG (its JSON file), SW_CPU, SW_CPU_S, MOCK_CPU, LG_CPU (% of one core), WALL_NS.
load() {
    LG=$WORK/lg.json
    if [ "${LG_PROTO:-http}" = grpc ]; then _port=$GRPC_PORT; else _port=$OTLP_PORT; fi
    _s0=$(cpu_ticks "$SW_PID"); _m0=$(cpu_ticks "$MOCK_PID"); _t0=$(now_ns)
    "$BIN/spillway-loadgen" --protocol "${LG_PROTO:-http}" --endpoint "http://127.0.0.1:$_port" \
        --signal traces --rate "$1" --batch "$BATCH" --connections "$2" --duration "$3" --seed "$4" \
        --json --quiet >"$LG" 2>"$WORK/lg.err"
    _t1=$(now_ns); _s1=$(cpu_ticks "$SW_PID"); _m1=$(cpu_ticks "$MOCK_PID")
    WALL_NS=$((_t1 - _t0))
    SW_CPU=$(cpu_pct $((_s1 - _s0)) "$WALL_NS")
    SW_CPU_S=$(awk -v t=$((_s1 - _s0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", t / hz }')
    MOCK_CPU=$(cpu_pct $((_m1 - _m0)) "$WALL_NS")
    [ -s "$LG" ] || { log "load generator failed:"; cat "$WORK/lg.err" >&2; exit 1; }
    LG_CPU=$(awk -v c="$(jnum cpu_seconds "$LG")" -v ns="$WALL_NS" 'BEGIN { printf "%.3f", c / (ns / 1e9) * 100 }')
}

# lg_errors: connection errors + unanswered requests of the last load.
lg_errors() { echo $(( $(jnum connection_errors "$LG") + $(jnum unanswered "$LG") )); }

# per_s COUNT: COUNT divided by the load generator's send window (its
# send_seconds), i.e. a rate over the same window as its accepted_rate.
per_s() { awk -v n="$1" -v s="$(jnum send_seconds "$LG")" 'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }'; }
