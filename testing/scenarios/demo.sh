#!/bin/sh
# make demo: spillway's reason to exist, in one bounded run on loopback.
#
# Starts spillway-mockup (the upstream), spillway (with priority rules, and
# both OTLP receivers: HTTP and gRPC) and three spillway-loadgen processes,
# one per priority class, together sending traces, metrics and logs for
# DEMO_SECONDS (default 60; or --seconds N).
# Halfway through, the upstream goes down (connections refused) for a fifth
# of the run and comes back. Each load generator then checks, item by item,
# what reached the upstream (--verify). Prints a summary: per class the
# transport, items sent, accepted, delivered, spilled to disk, replayed from
# disk, duplicated and LOST (spilled and replayed from spillway's
# spillway_dlq_{written,replayed}_items_total{class}); the requests spillway
# answered per transport; the DLQ's bytes; the circuit breaker transitions;
# spillway's CPU and peak RSS; and where to look. Exit status 1 if anything
# was lost (or the run failed).
#
# Class and signal: each class carries one signal, so that the mock's
# per-signal count tells each load generator when its own items arrived
# (critical = traces of checkout/payment, high = metrics of frontend/cart,
# normal = logs of the other services). Transport: the high class sends
# OTLP/gRPC (spillway-loadgen --protocol grpc), the other two OTLP/HTTP, so
# both receivers carry data through the outage. Every process started here is
# stopped by PID on exit. The work directory (DEMO_DIR, default
# <build dir>/demo) is kept: logs, the DLQ directory, final /metrics.
#
# Usage: sh testing/scenarios/demo.sh [--seconds N] [--rate ITEMS_PER_S]
# Env: DEMO_SECONDS, DEMO_RATE (items/s per class, default 1000), DEMO_DIR,
#      SW_BIN_DIR (default build).
set -u
BIN=${SW_BIN_DIR:-build}
SECS=${DEMO_SECONDS:-60}
RATE=${DEMO_RATE:-1000}
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    -h | --help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
case $SECS in '' | *[!0-9]*) echo "demo: --seconds needs a whole number" >&2; exit 2 ;; esac
[ "$SECS" -ge 10 ] || { echo "demo: --seconds must be at least 10" >&2; exit 2; }
W=${DEMO_DIR:-$BIN/demo}
rm -rf "$W"
mkdir -p "$W" || exit 1
PIDS=""
cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    PIDS=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }
. "$(dirname "$0")/../lib/wait.sh" # wait_file PATH SECONDS
forget() { _l=""; for _p in $PIDS; do [ "$_p" = "$1" ] || _l="$_l $_p"; done; PIDS=$_l; }
die() { echo "demo: $*" >&2; exit 1; }
# metric NAME[{LABEL="V"}] FILE: the sum of the samples of NAME on a /metrics
# page that carry that label (all of them without one); 0 when absent.
metric() {
    awk -v k="$1" 'BEGIN { n = k; l = ""; i = index(k, "{")
                           if (i) { n = substr(k, 1, i - 1); l = substr(k, i + 1, length(k) - i - 1) } }
        /^#/ { next }
        { m = $1; j = index(m, "{"); if (j) m = substr(m, 1, j - 1) }
        m == n && (l == "" || index($1, l)) { s += $2 }
        END { printf "%.15g\n", s }' "$2"
}

# ---- the upstream --------------------------------------------------------
"$BIN/spillway-mockup" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --ready-file "$W/mock.ready" --log-level warn 2>"$W/mock.log" &
MOCK_PID=$!; PIDS="$PIDS $MOCK_PID"
wait_file "$W/mock.ready" 10 || die "the mock upstream did not start (see $W/mock.log)"
MOCK=$(sed -n 's/^http=//p' "$W/mock.ready")
ADMIN=$(sed -n 's/^admin=//p' "$W/mock.ready")

# ---- spillway ------------------------------------------------------------
cat >"$W/spillway.yaml" <<YAML
# written by testing/scenarios/demo.sh
receivers:
  otlp:
    http: { endpoint: 127.0.0.1:0 }
    grpc: { endpoint: 127.0.0.1:0 }
processors:
  priority:
    rules:
      - { class: critical, attribute: service.name, regex: "^(checkout|payment)" }
      - { class: high, attribute: service.name, regex: "^(frontend|cart)" }
dlq:
  dir: $W/dlq
  fsync: batch
exporters:
  otlphttp:
    endpoint: http://$MOCK
    compression: zstd
    retry: { initial_interval: 200ms, max_interval: 2s }
    circuit_breaker: { consecutive_failures: 5, open_duration: 2s }
telemetry:
  endpoint: 127.0.0.1:0
  log: { level: info, format: text }
YAML
"$BIN/spillway" --config "$W/spillway.yaml" --ready-file "$W/spillway.ready" 2>"$W/spillway.log" &
SW_PID=$!; PIDS="$PIDS $SW_PID"
wait_file "$W/spillway.ready" 10 || die "spillway did not start (see $W/spillway.log)"
OTLP=$(sed -n 's/^otlp_http=//p' "$W/spillway.ready")
GRPC=$(sed -n 's/^otlp_grpc=//p' "$W/spillway.ready")
TEL=$(sed -n 's/^telemetry=//p' "$W/spillway.ready")
[ -n "$GRPC" ] || die "spillway did not start its OTLP/gRPC receiver (see $W/spillway.ready)"

echo "demo: spillway OTLP/HTTP on $OTLP, OTLP/gRPC on $GRPC, upstream (spillway-mockup) on $MOCK"
echo "demo: while it runs:  curl -s http://$TEL/metrics   curl -s http://$TEL/readyz   curl -s http://$ADMIN/stats"
echo "demo: DLQ directory:  $W/dlq"
echo "demo: $SECS s of load, $RATE items/s per class; upstream down from $((SECS / 2)) s to $((SECS / 2 + SECS / 5)) s"

# ---- load: one generator per class ---------------------------------------
# class_of CLASS: sets sig (the class's signal) and proto (its transport).
class_of() {
    case $1 in
    critical) sig=traces; proto=http ;;
    high) sig=metrics; proto=grpc ;;
    normal) sig=logs; proto=http ;;
    esac
}
T0=$(now_ms)
for c in critical high normal; do
    class_of "$c"
    case $c in
    critical) mix=1:0:0; seed=101 ;;
    high) mix=0:1:0; seed=202 ;;
    normal) mix=0:0:1; seed=303 ;;
    esac
    if [ "$proto" = grpc ]; then ep="--protocol grpc --endpoint http://$GRPC"
    else ep="--endpoint http://$OTLP"; fi
    # shellcheck disable=SC2086
    "$BIN/spillway-loadgen" $ep --signal "$sig" --priority-mix "$mix" \
        --services 4 --rate "$RATE" --duration "$SECS" --seed "$seed" --timeout 10 \
        --verify --verify-url "http://$ADMIN" --verify-wait 60 --json --quiet \
        >"$W/load-$c.json" 2>"$W/load-$c.log" &
    eval "LG_$c=\$!"
    PIDS="$PIDS $!"
done

# ---- the outage, and samples of spillway's state --------------------------
out_at=$((SECS / 2)); out_len=$((SECS / 5)); outage_done=0
peak_dlq=0; peak_spilled_q=0
: >"$W/samples"
while :; do
    t=$(( ($(now_ms) - T0) / 1000 ))
    if [ "$outage_done" = 0 ] && [ "$t" -ge "$out_at" ]; then
        curl -s -o /dev/null --max-time 2 -X POST "http://$ADMIN/admin/outage?seconds=$out_len&mode=refuse" &&
            echo "demo: $t s: upstream DOWN for $out_len s (connections refused)"
        outage_done=1
    fi
    if curl -s --max-time 1 "http://$TEL/metrics" >"$W/metrics.now" 2>/dev/null; then
        b=$(metric spillway_dlq_bytes "$W/metrics.now")
        st=$(metric spillway_exporter_circuit_state "$W/metrics.now")
        q=$(metric spillway_queue_fill_ratio "$W/metrics.now")
        echo "$t $st $b $q" >>"$W/samples"
        [ "${b%.*}" -gt "$peak_dlq" ] 2>/dev/null && peak_dlq=${b%.*}
    fi
    alive=0
    for c in critical high normal; do
        eval "p=\$LG_$c"
        kill -0 "$p" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    [ "$t" -gt $((SECS + 120)) ] && die "load generators still running after $((SECS + 120)) s"
    sleep 0.5
done
lg_fail=0
for c in critical high normal; do
    eval "p=\$LG_$c"
    wait "$p"; rc=$?
    forget "$p"
    # 3 = verify found missing or duplicated items: reported below.
    if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
        echo "demo: load generator $c exited $rc:" >&2; cat "$W/load-$c.log" >&2; lg_fail=1
    fi
done

# ---- spillway holds nothing any more? -------------------------------------
end=$(($(now_ms) + 30000))
while :; do
    curl -s --max-time 1 "http://$TEL/metrics" >"$W/metrics.final" 2>/dev/null
    age=$(metric spillway_dlq_oldest_age_seconds "$W/metrics.final")
    qi=0
    for c in critical high normal; do
        qi=$((qi + $(metric "spillway_queue_items{class=\"$c\"}" "$W/metrics.final")))
    done
    [ "$age" = 0 ] && [ "$qi" = 0 ] && break
    [ "$(now_ms)" -ge "$end" ] && break
    sleep 0.2
done
cpu_ticks=$(awk '{ print $14 + $15 }' "/proc/$SW_PID/stat" 2>/dev/null)
hz=$(getconf CLK_TCK)
peak_rss=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SW_PID/status" 2>/dev/null)
curl -s --max-time 2 "http://$ADMIN/stats" >"$W/mock.stats"
kill -TERM "$SW_PID" 2>/dev/null; wait "$SW_PID"; sw_rc=$?; forget "$SW_PID"
elapsed=$(( ($(now_ms) - T0) / 1000 ))

# ---- summary ---------------------------------------------------------------
# jget FILE PATH...: a number inside the load generator's one-line JSON.
jget() {
    _f=$1; shift
    _s=$(cat "$_f")
    for _k in "$@"; do _s=$(printf '%s' "$_s" | sed -n "s/.*\"$_k\":\(.*\)/\1/p"); done
    printf '%s' "$_s" | sed -n 's/^\([-0-9.]*\).*/\1/p'
}
lost_total=0
echo
echo "demo: summary after $elapsed s (items: spans, metric data points, log records)"
row='%-9s %-8s %-9s %9s %9s %10s %8s %9s %11s %6s\n'
# shellcheck disable=SC2059
printf "$row" class signal transport sent accepted delivered spilled replayed duplicated LOST
for c in critical high normal; do
    class_of "$c"
    case $proto in grpc) tname=OTLP/gRPC ;; *) tname=OTLP/HTTP ;; esac
    f="$W/load-$c.json"
    sent=$(jget "$f" items_sent); acc=$(jget "$f" items_accepted)
    exp=$(jget "$f" verify signals "$sig" expected); miss=$(jget "$f" verify signals "$sig" missing)
    dup=$(jget "$f" verify signals "$sig" duplicated)
    if [ -z "$exp" ] || [ -z "$miss" ]; then
        echo "demo: no verify result from the $c load generator (see $W/load-$c.log)" >&2
        lg_fail=1; exp=0; miss=0; dup=0
    fi
    # Items of this class spillway stored in the DLQ (the breaker open, the
    # queue full, a retry given up) and replayed from it, acknowledged.
    sp=$(metric "spillway_dlq_written_items_total{class=\"$c\"}" "$W/metrics.final")
    rp=$(metric "spillway_dlq_replayed_items_total{class=\"$c\"}" "$W/metrics.final")
    # shellcheck disable=SC2059
    printf "$row" "$c" "$sig" "$tname" "$sent" "$acc" "$((exp - miss))" "$sp" "$rp" "$dup" "$miss"
    lost_total=$((lost_total + miss))
done
# spillway's own count of the requests each receiver answered (any status).
rq_http=$(metric 'spillway_receiver_requests_total{transport="http"}' "$W/metrics.final")
rq_grpc=$(metric 'spillway_receiver_requests_total{transport="grpc"}' "$W/metrics.final")
echo "spillway answered $rq_http requests over OTLP/HTTP and $rq_grpc over OTLP/gRPC"
wb=$(metric spillway_dlq_written_bytes_total "$W/metrics.final")
rb=$(metric spillway_dlq_replayed_bytes_total "$W/metrics.final")
qs=""
for c in critical high normal; do
    qs="$qs $c $(metric "spillway_queue_spilled_total{class=\"$c\"}" "$W/metrics.final")"
done
# spilled/replayed above count items of every spill (open breaker, full
# queue, given-up retries); spillway_queue_spilled_total{class} counts the
# requests spilled because memory reached queue.spill_threshold.
awk -v w="$wb" -v r="$rb" -v p="$peak_dlq" 'BEGIN {
    printf "spilled to disk: %.2f MiB of requests (peak %.2f MiB in the DLQ); replayed: %.2f MiB\n", w / 1048576, p / 1048576, r / 1048576 }'
echo "  requests spilled because the memory queue was full:$qs"
echo "  the DLQ holds $( [ "$age" = 0 ] && echo nothing || echo "data (oldest ${age} s)") at the end"
echo "circuit breaker (from spillway's log; seconds since the load started):"
# Failed probes while the upstream stays down (open -> half-open -> open)
# are folded into one line.
grep 'circuit breaker [a-z-]* -> ' "$W/spillway.log" | awk -v t0="$T0" '
    function secs(ts,   a) { # 2026-01-02T10:33:02.901Z -> seconds since T0
        split(substr(ts, 12, 12), a, ":")
        s = a[1] * 3600 + a[2] * 60 + a[3] - (t0 / 1000) % 86400
        return s < -43200 ? s + 86400 : s }
    function flush() { if (probes) printf "  %5.1f s - %5.1f s  %d probes failed (open -> half-open -> open)\n", pf, pl, probes; probes = 0 }
    { t = secs($1); m = $0; sub(/.*circuit breaker /, "", m); sub(/:.*/, "", m) }
    m ~ /^open -> half-open/ { next }
    m ~ /^half-open -> open/ { if (!probes) pf = t; pl = t; probes++; next }
    { flush(); printf "  %5.1f s  %s\n", t, m }
    END { flush(); if (NR == 0) print "  no transitions" }'
if [ -n "$cpu_ticks" ] && [ -n "$peak_rss" ]; then
    awk -v t="$cpu_ticks" -v hz="$hz" -v s="$elapsed" -v r="$peak_rss" 'BEGIN {
        printf "spillway: CPU %.2f s (%.1f %% of one core over %d s), peak RSS %.1f MiB\n", t / hz, 100 * t / hz / s, s, r / 1024 }'
fi
echo "look at: $W/metrics.final (spillway's /metrics at the end), $W/spillway.log, $W/mock.stats,"
echo "         $W/load-<class>.json (load generator reports), $W/dlq (the DLQ directory), $W/samples (t breaker dlq_bytes fill)"
[ "$sw_rc" = 0 ] || { echo "demo: spillway exited with status $sw_rc" >&2; lg_fail=1; }
if [ "$lost_total" -ne 0 ]; then
    echo "demo: FAILED: $lost_total items LOST"
    exit 1
fi
[ "$lg_fail" = 0 ] || { echo "demo: FAILED (see above)"; exit 1; }
echo "demo: OK: nothing lost"
