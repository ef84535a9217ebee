#!/bin/sh
# A real Prometheus scrapes a real spillway through an upstream outage, then
# every PromQL expression of the dashboard and of the alert rules runs
# against it through its HTTP API.
#
#  - spillway-mockup (upstream), spillway and spillway-loadgen (traces,
#    metrics and logs of all three priority classes, ~24 s) on 127.0.0.1,
#    ephemeral ports; the upstream refuses connections from 6 s to 16 s.
#  - Prometheus (Debian's package) on 127.0.0.1 with a temp dir, a port
#    free at run time, scraping spillway's /metrics every second and
#    evaluating a copy of deploy/prometheus/alerts.yml every second with
#    every `for:` shortened to 2s (the expressions are unchanged).
#  - Checks: every dashboard query returns data ($__rate_interval = 1m,
#    $job/$instance = all); every alert expression is accepted and every
#    metric it names has data; SpillwayCircuitBreakerOpen and
#    SpillwayDLQGrowing were pending or firing during the run; every metric
#    the dashboard names is on spillway's live /metrics page; the limits the
#    fill ratios divide by are the config's (non-default here: max_keys
#    4096, queue.max_bytes 32MiB, dlq.max_size 1GiB), in Prometheus too.
# PASS/FAIL lines for testing/run_tests.sh. Every process started here is
# stopped by PID. About 35 s.
# Usage: SW_BIN_DIR=build sh testing/deploy/prom_live.sh
set -u
BIN=${SW_BIN_DIR:-build}
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
PROM=${PROMETHEUS:-prometheus}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sw-prom-live.XXXXXX")
PIDS=""
fails=0
cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ok() { echo "PASS: prom_live/$1"; }
bad() { echo "FAIL: prom_live/$1: $2"; fails=$((fails + 1)); }
finish() { [ "$fails" = 0 ] && exit 0; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
. "$(dirname "$0")/../lib/wait.sh" # wait_file

command -v "$PROM" >/dev/null 2>&1 || { bad tools "prometheus is not installed (make deps installs it)"; finish; }
command -v curl >/dev/null 2>&1 || { bad tools "curl is not installed"; finish; }

# ---- spillway and its upstream ---------------------------------------------------
"$BIN/spillway-mockup" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --keep 0 \
    --ready-file "$tmp/mock.ready" --log-level warn 2>"$tmp/mock.log" &
PIDS="$PIDS $!"
wait_file "$tmp/mock.ready" 10 || { bad start "the mock upstream did not start"; finish; }
MOCK=$(sed -n 's/^http=//p' "$tmp/mock.ready")
ADMIN=$(sed -n 's/^admin=//p' "$tmp/mock.ready")
cat >"$tmp/spillway.yaml" <<YAML
receivers:
  otlp:
    http: { endpoint: 127.0.0.1:0 }
processors:
  cardinality: { max_keys: 4096 }
  priority:
    rules:
      - { class: critical, attribute: service.name, regex: "^(checkout|payment)" }
      - { class: high, attribute: service.name, regex: "^(frontend|cart)" }
queue: { max_bytes: 32MiB }
dlq:
  dir: $tmp/dlq
  fsync: batch
  max_size: 1GiB
exporters:
  otlphttp:
    endpoint: http://$MOCK
    retry: { initial_interval: 200ms, max_interval: 1s }
    circuit_breaker: { consecutive_failures: 5, open_duration: 2s }
telemetry:
  endpoint: 127.0.0.1:0
  log: { level: warn, format: text }
YAML
"$BIN/spillway" --config "$tmp/spillway.yaml" --ready-file "$tmp/sw.ready" 2>"$tmp/spillway.log" &
SW_PID=$!; PIDS="$SW_PID $PIDS"
wait_file "$tmp/sw.ready" 10 || { bad start "spillway did not start"; cat "$tmp/spillway.log"; finish; }
OTLP=$(sed -n 's/^otlp_http=//p' "$tmp/sw.ready")
TEL=$(sed -n 's/^telemetry=//p' "$tmp/sw.ready")

# ---- Prometheus ----------------------------------------------------------------------
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PROM_URL="http://127.0.0.1:$port"
sed -E 's/^([[:space:]]*)for: .*/\1for: 2s/' deploy/prometheus/alerts.yml >"$tmp/alerts.yml"
cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $tmp/alerts.yml
scrape_configs:
  - job_name: spillway
    static_configs:
      - targets: ["$TEL"]
YAML
"$PROM" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom-data" \
    --web.listen-address="127.0.0.1:$port" \
    --storage.tsdb.retention.time=1h >"$tmp/prometheus.log" 2>&1 &
PROM_PID=$!; PIDS="$PROM_PID $PIDS"
end=$(($(now_ms) + 20000))
until curl -sf --max-time 1 "$PROM_URL/-/ready" >/dev/null 2>&1; do
    kill -0 "$PROM_PID" 2>/dev/null || { bad prometheus "prometheus exited"; tail -n 20 "$tmp/prometheus.log"; finish; }
    [ "$(now_ms)" -lt "$end" ] || { bad prometheus "not ready after 20 s"; tail -n 20 "$tmp/prometheus.log"; finish; }
    sleep 0.2
done
ok "prometheus (127.0.0.1:$port)"

# ---- load with an outage -------------------------------------------------------------
T0=$(now_ms)
"$BIN/spillway-loadgen" --endpoint "http://$OTLP" --signal traces,metrics,logs --priority-mix 1:2:7 \
    --services 12 --rate 1500 --duration 24 --timeout 10 --json --quiet >"$tmp/load.json" 2>"$tmp/load.log" &
LG_PID=$!; PIDS="$LG_PID $PIDS"
outage=0
while kill -0 "$LG_PID" 2>/dev/null; do
    t=$(( ($(now_ms) - T0) / 1000 ))
    if [ "$outage" = 0 ] && [ "$t" -ge 6 ]; then
        curl -s -o /dev/null --max-time 2 -X POST "http://$ADMIN/admin/outage?seconds=10&mode=refuse"
        outage=1
    fi
    [ "$t" -lt 60 ] || { bad load "the load generator did not finish"; finish; }
    sleep 0.2
done
wait "$LG_PID"; PIDS=$(echo "$PIDS" | sed "s/\b$LG_PID\b//")
acc=$(sed -n 's/.*"items_accepted":\([0-9]*\).*/\1/p' "$tmp/load.json")
[ "${acc:-0}" -gt 0 ] && ok "load ($acc items accepted)" || bad load "nothing accepted: $(cat "$tmp/load.log")"
curl -s --max-time 2 "http://$TEL/metrics" >"$tmp/metrics.txt"
for lim in spillway_cl_max_keys:4096 spillway_queue_max_bytes:33554432 spillway_dlq_max_bytes:1073741824; do
    if grep -qx "${lim%%:*} ${lim#*:}" "$tmp/metrics.txt"; then ok "limit/${lim%%:*} (${lim#*:})"
    else bad "limit/${lim%%:*}" "want ${lim#*:}, /metrics has: $(grep "^${lim%%:*} " "$tmp/metrics.txt")"; fi
done
sleep 2 # two more scrapes and rule evaluations after the load

# ---- every expression through the HTTP API ---------------------------------------------
$PY testing/deploy/deploy_check.py exprs deploy/grafana/dashboards/spillway.json \
    deploy/prometheus/alerts.yml >"$tmp/exprs.jsonl" || { bad exprs "cannot list the expressions"; finish; }
$PY - "$PROM_URL" "$tmp/exprs.jsonl" <<'PYEOF' || fails=$((fails + 1))
import json, sys, urllib.parse, urllib.request
url, path = sys.argv[1], sys.argv[2]
fails = 0
def query(q):
    u = url + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        with urllib.request.urlopen(u, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)
for line in open(path):
    e = json.loads(line)
    expr = e["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*").replace("$job", ".*")
    r = query(expr)
    name = "%s/%s" % (e["kind"], e["name"])
    if r.get("status") != "success":
        print("FAIL: prom_live/%s: %s: %s" % (name, expr, r.get("error")))
        fails += 1
        continue
    res = r["data"]["result"]
    if e["kind"] == "dashboard":
        if res:
            print("PASS: prom_live/%s (%d series)" % (name, len(res)))
        else:
            print("FAIL: prom_live/%s: no data for %s" % (name, expr))
            fails += 1
        continue
    # An alert expression is empty when its condition does not hold; what
    # must have data is every metric it reads.
    empty = [m for m in e["metrics"] if not query("count(%s)" % m)["data"]["result"]]
    if empty:
        print("FAIL: prom_live/%s: no data for %s" % (name, ", ".join(empty)))
        fails += 1
    else:
        print("PASS: prom_live/%s (%s; now %d series)" % (name, ", ".join(e["metrics"]), len(res)))
for alert in ("SpillwayCircuitBreakerOpen", "SpillwayDLQGrowing"):
    r = query('max by (alertstate) (max_over_time(ALERTS{alertname="%s"}[5m]))' % alert)
    states = sorted(x["metric"].get("alertstate", "?") for x in r.get("data", {}).get("result", []))
    if states:
        print("PASS: prom_live/alert/%s/seen (%s)" % (alert, ", ".join(states)))
    else:
        print("FAIL: prom_live/alert/%s/seen: never pending or firing during the outage" % alert)
        fails += 1
# The fill ratios divide by the config's limits (prom_live's config above).
for name, want in (("spillway_dlq_max_bytes", 1073741824), ("spillway_cl_max_keys", 4096),
                   ("spillway_queue_max_bytes", 33554432)):
    res = query("max(%s)" % name).get("data", {}).get("result", [])
    got = float(res[0]["value"][1]) if res else None
    if got == want:
        print("PASS: prom_live/limit/%s/prometheus (%d)" % (name, want))
    else:
        print("FAIL: prom_live/limit/%s/prometheus: %s, want %d" % (name, got, want))
        fails += 1
sys.exit(1 if fails else 0)
PYEOF
if $PY testing/deploy/deploy_check.py dashboard deploy/grafana/dashboards/spillway.json \
    deploy/grafana/provisioning/datasources/prometheus.yml "$tmp/metrics.txt" >"$tmp/dash.out"; then
    grep 'metrics_exist' "$tmp/dash.out" | sed 's/deploy\/dashboard/prom_live\/dashboard/'
else
    sed 's/deploy\/dashboard/prom_live\/dashboard/' "$tmp/dash.out" | grep FAIL; fails=$((fails + 1))
fi
echo "# $(( ($(now_ms) - T0) / 1000 )) s of load and queries"
finish
