# lib.sh — helpers of the scenario runner (sourced by run.sh; POSIX sh,
# awk, sed, curl; no python).
#
# Processes: every process is started with sc_start_bg, which records its
# PID in SC_PIDS; sc_stop_pid stops one by PID (TERM, then KILL after a
# grace period) and sc_stop_all (the EXIT trap) stops whatever is left.
# Nothing is ever stopped by name.
#
# Expects: BIN (directory of the binaries), D (the scenario's work dir),
# NAME (scenario name), MODE (short|full).

SC_PIDS=""
PEAK_RSS=0
# Sanitizer runs (SW_TEST_SLOW, docs/testing.md) scale the time allowed
# for one HTTP call and for a process to start; the checks stay the same.
SC_SLOW=${SW_TEST_SLOW:-1}

sc_log() { echo "scenario[$NAME]: $*" >&2; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_file, wait_gone, wait_until: the shared waits.
. "$ROOT/testing/lib/wait.sh"

# sc_start_bg LOG CMD ARGS...: starts CMD in the background, stdout and
# stderr to LOG; sets LAST_PID.
sc_start_bg() {
    _log=$1; shift
    "$@" >"$_log" 2>&1 &
    LAST_PID=$!
    SC_PIDS="$SC_PIDS $LAST_PID"
}

sc_forget_pid() {
    _left=""
    for _p in $SC_PIDS; do [ "$_p" = "$1" ] || _left="$_left $_p"; done
    SC_PIDS=$_left
}

# sc_stop_pid PID [GRACE_S]: SIGTERM, SIGKILL after GRACE_S (default 10),
# then reaps it.
sc_stop_pid() {
    [ -n "$1" ] || return 0
    if kill -TERM "$1" 2>/dev/null; then
        wait_gone "$1" "${2:-10}" || kill -KILL "$1" 2>/dev/null
    fi
    wait "$1" 2>/dev/null
    sc_forget_pid "$1"
    return 0
}

# Newest first: spillway stops before the mock upstream it exports to.
sc_stop_all() {
    _rev=""
    for _p in $SC_PIDS; do _rev="$_p $_rev"; done
    for _p in $_rev; do sc_stop_pid "$_p" 2; done
}

# sc_peak_rss PID: folds the process's VmHWM (KiB) into PEAK_RSS.
sc_peak_rss() {
    _r=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    [ -n "$_r" ] && [ "$_r" -gt "$PEAK_RSS" ] && PEAK_RSS=$_r
    return 0
}

# jnum KEY FILE: the number after the last "KEY": in a one-line JSON file.
jnum() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p" "$2" | head -n 1; }

# ---- mock upstream -----------------------------------------------------

# sc_mock_start ARGS...: starts the mock upstream with an admin port that
# stays reachable during `refuse` outages. Sets MOCK_PID, MOCK (host:port
# of the export port), ADMIN (host:port of the admin port).
sc_mock_start() {
    rm -f "$D/mock.ready"
    sc_start_bg "$D/mock.log" "$BIN/spillway-mockup" --listen 127.0.0.1:0 \
        --admin-listen 127.0.0.1:0 --ready-file "$D/mock.ready" --keep 20000000 \
        --log-level warn "$@"
    MOCK_PID=$LAST_PID
    wait_file "$D/mock.ready" $((10 * SC_SLOW)) || { sc_log "mock upstream did not start"; cat "$D/mock.log" >&2; return 1; }
    MOCK=$(sed -n 's/^http=//p' "$D/mock.ready")
    ADMIN=$(sed -n 's/^admin=//p' "$D/mock.ready")
    [ -n "$ADMIN" ] || { sc_log "mock upstream has no admin port"; return 1; }
}

sc_mock_stats() { curl -s --max-time $((2 * SC_SLOW)) "http://$ADMIN/stats"; }

# sc_admin PATH_AND_QUERY: POST to the mock's admin API.
sc_admin() {
    _c=$(curl -s -o /dev/null -w '%{http_code}' --max-time $((2 * SC_SLOW)) -X POST "http://$ADMIN$1")
    [ "$_c" = 200 ] || sc_log "POST $1 answered $_c"
}

# outage_field JSON KEY: a value of the "outage" object of /stats.
outage_field() {
    printf '%s\n' "$1" | sed -n 's/.*"outage":{\(.*\)/\1/p' |
        sed -n "s/^.*\"$2\":\([a-z0-9\"]*\).*/\1/p" | tr -d '"'
}

# items_field JSON: the mock's "items"."traces" count.
items_field() { printf '%s\n' "$1" | sed -n 's/.*"items":{"traces":\([0-9]*\).*/\1/p'; }

# sc_wait_recovered SECONDS: waits until the mock reports no outage in
# force; sets T_REC (ms). Returns 1 at the deadline (T_REC set anyway).
sc_wait_recovered() {
    _end=$(($(now_ms) + $1 * 1000))
    while :; do
        _a=$(outage_field "$(sc_mock_stats)" active)
        T_REC=$(now_ms)
        [ "$_a" = false ] && return 0
        [ "$T_REC" -ge "$_end" ] && return 1
        sleep 0.1
    done
}

# ---- spillway ------------------------------------------------------------

# Per-scenario knobs (set before sc_sw_config): QUEUE_MAX_BYTES,
# SPILL_THRESHOLD, FSYNC, OPEN_DURATION, EXP_TIMEOUT, SHUTDOWN_TIMEOUT.
sc_sw_config() {
    cat >"$D/spillway.yaml" <<EOF
receivers: { otlp: { http: { endpoint: 127.0.0.1:0 } } }
queue: { max_bytes: ${QUEUE_MAX_BYTES:-64MiB}, spill_threshold: ${SPILL_THRESHOLD:-0.95} }
dlq:
  dir: $D/dlq
  segment_size: 4MiB
  max_size: 1GiB
  fsync: ${FSYNC:-always}
  replay: { rate: 4MiB, interleave: 500ms }
exporters:
  otlphttp:
    endpoint: http://$MOCK
    compression: none
    timeout: ${EXP_TIMEOUT:-5s}
    batch: { max_bytes: 1MiB, timeout: 200ms }
    retry: { initial_interval: 100ms, max_interval: 1s, multiplier: 2, max_elapsed_time: 10m }
    circuit_breaker: { consecutive_failures: 5, ratio_429: 0.30, window: 10s, open_duration: ${OPEN_DURATION:-2s} }
telemetry: { endpoint: 127.0.0.1:0, log: { level: ${SCEN_LOG_LEVEL:-info}, format: json } }
service: { shutdown_timeout: ${SHUTDOWN_TIMEOUT:-3s} }
EOF
}

# sc_sw_start: starts spillway (instance SW_N, counting from 1) on the
# scenario's config and DLQ dir. Sets SW_PID, OTLP, TEL; publishes TEL in
# $D/tel.addr for the sampler.
SW_N=0
sc_sw_start() {
    SW_N=$((SW_N + 1))
    rm -f "$D/sw.ready"
    sc_start_bg "$D/spillway.$SW_N.log" "$BIN/spillway" --config "$D/spillway.yaml" \
        --ready-file "$D/sw.ready"
    SW_PID=$LAST_PID
    wait_file "$D/sw.ready" $((15 * SC_SLOW)) || { sc_log "spillway did not start"; tail -n 20 "$D/spillway.$SW_N.log" >&2; return 1; }
    OTLP=$(sed -n 's/^otlp_http=//p' "$D/sw.ready")
    TEL=$(sed -n 's/^telemetry=//p' "$D/sw.ready")
    echo "$TEL" >"$D/tel.addr.tmp" && mv "$D/tel.addr.tmp" "$D/tel.addr"
    sc_log "spillway #$SW_N pid $SW_PID on $OTLP (telemetry $TEL)"
}

# sc_sw_term: graceful stop (SIGTERM), waits for the exit; sets SW_STATUS.
sc_sw_term() {
    sc_peak_rss "$SW_PID"
    rm -f "$D/tel.addr"
    kill -TERM "$SW_PID" 2>/dev/null
    _t0=$(now_ms)
    wait "$SW_PID"; SW_STATUS=$?
    sc_forget_pid "$SW_PID"
    sc_log "spillway #$SW_N exited with status $SW_STATUS $(($(now_ms) - _t0)) ms after SIGTERM"
}

# sc_sw_kill9: SIGKILL, no chance to flush anything.
sc_sw_kill9() {
    sc_peak_rss "$SW_PID"
    SW_DEQUEUED=$(sc_dequeued)
    rm -f "$D/tel.addr"
    kill -KILL "$SW_PID" 2>/dev/null
    wait "$SW_PID" 2>/dev/null
    sc_forget_pid "$SW_PID"
    sc_log "spillway #$SW_N killed with SIGKILL"
}

# sc_dequeued: items spillway's queue handed to the exporter so far (the
# sum of spillway_queue_dequeued_total), "-" if unreadable.
sc_dequeued() {
    _tel=$(cat "$D/tel.addr" 2>/dev/null)
    [ -n "$_tel" ] || { echo "-"; return; }
    curl -s --max-time "$SC_SLOW" "http://$_tel/metrics" 2>/dev/null | awk '
        /^spillway_queue_dequeued_total/ { s += $2; seen = 1 }
        END { if (seen) printf "%.0f\n", s; else print "-" }'
}

# sc_metrics: one line "state dlq_bytes queue_items in_flight oldest_age"
# from spillway's /metrics ("-" for what could not be read).
sc_metrics() {
    _tel=$(cat "$D/tel.addr" 2>/dev/null)
    [ -n "$_tel" ] || { echo "- - - - -"; return; }
    curl -s --max-time "$SC_SLOW" "http://$_tel/metrics" 2>/dev/null | awk '
        function g(k) { return (k in seen) ? sprintf("%.0f", v[k]) : "-" }
        /^#/ { next }
        NF >= 2 { n = $1; sub(/\{.*/, "", n); v[n] += $2; seen[n] = 1 }
        END {
            a = ("spillway_dlq_oldest_age_seconds" in seen) ? sprintf("%g", v["spillway_dlq_oldest_age_seconds"]) : "-"
            printf "%s %s %s %s %s\n", g("spillway_exporter_circuit_state"), g("spillway_dlq_bytes"),
                g("spillway_queue_items"), g("spillway_exporter_in_flight_requests"), a
        }'
}

# ---- sampler -------------------------------------------------------------

# sc_sampler_start: every ~250 ms appends to $D/samples one line
#   ms mock_outage_requests mock_outage_active mock_items state dlq_bytes queue_items in_flight oldest_age ms_before
# reading the mock first, then spillway (so requests counted between two
# samples arrived before the second spillway reading). The mock's counts
# were read between ms_before and ms (under load the read itself can take
# a while, and samples come further apart).
sc_sampler_start() {
    : >"$D/samples"
    rm -f "$D/sampler.stop"
    (
        while [ ! -e "$D/sampler.stop" ]; do
            _t0=$(now_ms)
            _s=$(sc_mock_stats)
            _t=$(now_ms)
            _or=$(outage_field "$_s" requests); _oa=$(outage_field "$_s" active)
            _it=$(items_field "$_s")
            echo "$_t ${_or:--} ${_oa:--} ${_it:--} $(sc_metrics) $_t0" >>"$D/samples"
            sleep 0.25
        done
    ) &
    SAMPLER_PID=$!
    SC_PIDS="$SC_PIDS $SAMPLER_PID"
}

sc_sampler_stop() {
    : >"$D/sampler.stop"
    wait "$SAMPLER_PID" 2>/dev/null
    sc_forget_pid "$SAMPLER_PID"
}

# ---- load ---------------------------------------------------------------

# sc_load_bg PHASE SECONDS: load generator against the current spillway in
# the background (seed differs per phase, so ids differ); sets LG_PID.
# LOAD_BATCH: spans per request (100).
sc_load_bg() {
    (exec "$BIN/spillway-loadgen" --endpoint "http://$OTLP" --signal traces \
        --rate "$RATE" --batch "${LOAD_BATCH:-100}" --connections 4 --duration "$2" --seed "$((100 + $1))" \
        --json --quiet >"$D/lg.$1.json" 2>"$D/lg.$1.err") &
    LG_PID=$!
    SC_PIDS="$SC_PIDS $LG_PID"
    LG_PHASES="${LG_PHASES:-} $1"
}

sc_load_wait() {
    wait "$LG_PID" 2>/dev/null
    sc_forget_pid "$LG_PID"
}

# sc_sent: items accepted (2xx) by spillway over every load phase.
sc_sent() {
    _s=0
    for _p in $LG_PHASES; do
        _a=$(jnum items_accepted "$D/lg.$_p.json")
        [ -n "$_a" ] || { sc_log "load phase $_p left no summary"; cat "$D/lg.$_p.err" >&2; _a=0; }
        _s=$((_s + _a))
    done
    echo "$_s"
}
