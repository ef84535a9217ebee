#!/usr/bin/env python3
"""Static checks of the deployment files, used by testing/deploy/lint_deploy.sh
and testing/deploy/prom_live.sh. Prints "PASS: deploy/..." / "FAIL: deploy/..."
lines for testing/run_tests.sh; exit status 1 when a check failed.

  deploy_check.py compose deploy/compose/docker-compose.yml
  deploy_check.py alerts RULES TESTS RUNBOOK
  deploy_check.py dashboard DASHBOARD.json DATASOURCES.yml [METRICS_PAGE]
  deploy_check.py k8s NAME RENDERED.yaml KIND[,KIND...]
  deploy_check.py exprs DASHBOARD.json RULES      (one JSON line per PromQL expression)
  deploy_check.py configs RENDERED.yaml OUTDIR    (writes each spillway config of a ConfigMap)
  deploy_check.py endpoints CONFIG.yaml           (KEY=HOST:PORT per listen endpoint, env defaults)

Needs PyYAML (Debian python3-yaml).
"""
import json
import os
import re
import sys

import yaml

FAILS = 0


def ok(name, detail=""):
    print("PASS: deploy/%s%s" % (name, " (%s)" % detail if detail else ""))


def bad(name, why):
    global FAILS
    FAILS += 1
    print("FAIL: deploy/%s: %s" % (name, why))


def check(name, cond, why, detail=""):
    if cond:
        ok(name, detail)
    else:
        bad(name, why)


METRIC_RE = re.compile(r"\b((?:spillway|process)_[a-zA-Z0-9_]+|up)\b(?!\s*\()")


def metric_names(expr):
    """Metric names a PromQL expression selects (spillway_*, process_*, up)."""
    return {m.group(1) for m in METRIC_RE.finditer(expr)}


# ---- compose ------------------------------------------------------------------

def cmd_compose(path):
    base = os.path.dirname(path)
    doc = yaml.safe_load(open(path))
    svcs = doc.get("services", {})
    want = {"spillway", "upstream", "loadgen", "prometheus", "grafana"}
    check("compose/services", want <= set(svcs), "missing services %s" % sorted(want - set(svcs)),
          ", ".join(sorted(svcs)))
    for name, s in sorted(svcs.items()):
        for p in s.get("ports", []):
            p = str(p)
            check("compose/%s/port %s" % (name, p), p.startswith("127.0.0.1:"),
                  "published port does not bind 127.0.0.1")
        for v in s.get("volumes", []):
            src = str(v).split(":")[0]
            if src.startswith("."):
                check("compose/%s/volume %s" % (name, src), os.path.exists(os.path.join(base, src)),
                      "mounted path does not exist")
        b = s.get("build")
        if b:
            df = os.path.join(base, b.get("context", "."), b.get("dockerfile", "Dockerfile"))
            check("compose/%s/build" % name, os.path.isfile(df), "%s missing" % df)
    sw = svcs.get("spillway", {})
    grace = str(sw.get("stop_grace_period", ""))
    m = re.fullmatch(r"(\d+)s", grace)
    check("compose/spillway/stop_grace_period", m and int(m.group(1)) >= 15,
          "stop_grace_period %r: must exceed shutdown_timeout (10s) plus the spill" % grace, grace)
    pub = {str(x) for x in sw.get("ports", [])}
    for port, what in ((4318, "OTLP/HTTP"), (4317, "OTLP/gRPC"), (8888, "telemetry")):
        check("compose/spillway/port %d" % port, "127.0.0.1:%d:%d" % (port, port) in pub,
              "%s port %d is not published on 127.0.0.1:%d" % (what, port, port))
    check("compose/spillway/volume", any(str(v).endswith(":/var/lib/spillway") for v in sw.get("volumes", [])),
          "no volume on /var/lib/spillway")
    env = sw.get("environment", {})
    check("compose/spillway/upstream", "upstream:4319" in str(env.get("SPILLWAY_UPSTREAM", "")),
          "SPILLWAY_UPSTREAM does not point at the upstream service")
    lg = " ".join(svcs.get("loadgen", {}).get("command", []))
    check("compose/loadgen/target", "http://spillway:4318" in lg, "loadgen does not send to spillway:4318")
    prom = " ".join(svcs.get("prometheus", {}).get("command", []))
    check("compose/prometheus/config", "/etc/prometheus/prometheus.yml" in prom, "no --config.file")
    return 0


# ---- alerts ---------------------------------------------------------------------

def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def cmd_alerts(rules_path, tests_path, runbook_path):
    rules = yaml.safe_load(open(rules_path))
    tests = yaml.safe_load(open(tests_path))
    anchors = {slug(l.lstrip("#")) for l in open(runbook_path) if l.startswith("#")}
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    tested = {}
    for t in tests.get("tests", []):
        for a in t.get("alert_rule_test", []):
            tested.setdefault(a["alertname"], []).append(bool(a.get("exp_alerts")))
    want = {"SpillwayCircuitBreakerOpen", "SpillwayDLQGrowing", "SpillwayDLQNearMaxSize",
            "SpillwayCorruptSegment", "SpillwayRefusingData", "SpillwayQueueNearSpill",
            "SpillwayCardinalityNearDropBand", "SpillwayRejectedData", "SpillwayScrapeDown",
            "SpillwayDLQUnavailable"}
    names = {a["alert"] for a in alerts}
    check("alerts/set", want <= names, "missing alerts %s" % sorted(want - names), "%d alerts" % len(names))
    for a in alerts:
        n = a["alert"]
        t = tested.get(n, [])
        check("alerts/%s/tested" % n, True in t and False in t,
              "alerts_test.yml must expect it firing and silent (has %s)" % t)
        url = a.get("annotations", {}).get("runbook_url", "")
        m = re.fullmatch(r"docs/runbook\.md#([\w-]+)", url)
        check("alerts/%s/runbook" % n, m and m.group(1) in anchors,
              "runbook_url %r is not a heading of docs/runbook.md" % url)
    return 0


# ---- dashboard ----------------------------------------------------------------------

def dashboard_exprs(dash):
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    return out


def sample_names(page):
    names = set()
    for line in page.splitlines():
        if not line or line.startswith("#"):
            continue
        names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def cmd_dashboard(path, ds_path, metrics_path=None):
    dash = json.load(open(path))
    ok("dashboard/parses", os.path.basename(path))
    exprs = dashboard_exprs(dash)
    check("dashboard/queries", len(exprs) >= 20, "only %d queries" % len(exprs), "%d queries" % len(exprs))
    ds = yaml.safe_load(open(ds_path))
    uids = {d.get("uid") for d in ds.get("datasources", [])}
    used = set()

    def walk(o):
        if isinstance(o, dict):
            d = o.get("datasource")
            if isinstance(d, dict) and d.get("uid"):
                used.add(d["uid"])
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(dash)
    check("dashboard/datasource", used and used <= uids,
          "dashboard uses data source uids %s, provisioned %s" % (sorted(used), sorted(uids)))
    topics = {"spillway_receiver_items_total", "spillway_receiver_refused_items_total",
              "spillway_queue_fill_ratio", "spillway_queue_bytes", "spillway_queue_dequeued_total",
              "spillway_dlq_bytes", "spillway_dlq_segments", "spillway_dlq_oldest_age_seconds",
              "spillway_dlq_corrupt_segments_total", "spillway_dlq_replayed_bytes_total",
              "spillway_exporter_requests_total", "spillway_exporter_retries_total",
              "spillway_exporter_circuit_state", "spillway_pipeline_latency_seconds_bucket",
              "spillway_cl_keys_used", "spillway_cl_aggregated_samples_total",
              "spillway_cl_dropped_samples_total", "process_cpu_seconds_total",
              "process_resident_memory_bytes",
              # fill ratios against the exported limits, storage health, items per class
              "spillway_dlq_max_bytes", "spillway_cl_max_keys", "spillway_dlq_available",
              "spillway_dlq_written_items_total", "spillway_dlq_replayed_items_total"}
    names = set()
    for _, e in exprs:
        names |= metric_names(e)
    check("dashboard/topics", topics <= names, "no panel for %s" % sorted(topics - names))
    check("dashboard/aggregated", all(re.search(r"\b(sum|max|min|avg|count|histogram_quantile)\b", e)
                                      for _, e in exprs),
          "every query aggregates (sum by/max by) so added labels do not split panels")
    if metrics_path:
        live = sample_names(open(metrics_path).read())
        missing = sorted(n for n in names if n != "up" and n not in live)
        check("dashboard/metrics_exist", not missing,
              "metrics not in spillway's /metrics: %s" % missing, "%d metric names" % len(names))
    return 0


# ---- kubernetes ---------------------------------------------------------------------

# The OTLP ports every spillway container declares and every Service in front
# of spillway exposes, by port name: the config must bind them on 0.0.0.0.
OTLP_PORTS = {"otlp-http": 4318, "otlp-grpc": 4317}
ENV_RE = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*(?::-([^}]*))?\}")


def config_endpoints(text):
    """{key: (host, port)} of the listen endpoints of a spillway config;
    ${env:NAME:-default} is read as its default. Missing sections are absent."""
    cfg = yaml.safe_load(ENV_RE.sub(lambda m: m.group(1) or "", text)) or {}
    otlp = (cfg.get("receivers") or {}).get("otlp") or {}
    out = {}
    for key, sec in (("receivers.otlp.http", otlp.get("http")), ("receivers.otlp.grpc", otlp.get("grpc")),
                     ("telemetry", cfg.get("telemetry"))):
        ep = str((sec or {}).get("endpoint", "")) if sec is not None else None
        if ep is None:
            continue
        host, _, port = ep.rpartition(":")
        out[key] = (host, int(port) if port.isdigit() else None)
    return out


def check_spillway_ports(name, n, c, spec, configmaps):
    """A spillway container declares both OTLP ports, and the config its
    ConfigMap mounts at /etc/spillway binds each declared port on 0.0.0.0."""
    declared = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    for pname, port in sorted(OTLP_PORTS.items()):
        check("k8s/%s/%s/port %s" % (name, n, pname), declared.get(pname) == port,
              "the spillway container does not declare %s: %d" % (pname, port))
    vol = {m["name"] for m in c.get("volumeMounts", []) if m["mountPath"] == "/etc/spillway"}
    cms = [v["configMap"]["name"] for v in spec.get("volumes", []) if v["name"] in vol and v.get("configMap")]
    text = configmaps.get(cms[0], {}).get("config.yaml") if cms else None
    if text is None:
        bad("k8s/%s/%s/config_ports" % (name, n), "no ConfigMap with config.yaml mounted at /etc/spillway")
        return
    eps = config_endpoints(text)
    for key, port in (("receivers.otlp.http", 4318), ("receivers.otlp.grpc", 4317), ("telemetry", 8888)):
        ep = eps.get(key)
        check("k8s/%s/%s/config %s" % (name, n, key),
              ep and ep[0] == "0.0.0.0" and ep[1] == port and port in declared.values(),
              "%s.endpoint is %s: must be 0.0.0.0:%d, a port the container declares" %
              (key, "%s:%s" % ep if ep else "not set (section missing)", port), "0.0.0.0:%d" % port)


def cmd_k8s(name, rendered, kinds):
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    got = sorted({d["kind"] for d in docs})
    want = kinds.split(",")
    check("k8s/%s/kinds" % name, sorted(set(want)) == got, "kinds %s, expected %s" % (got, sorted(set(want))),
          ", ".join(got))
    workloads = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment", "DaemonSet", "Job")]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    pod_ports = {}
    spillway_pods = []
    for w in workloads:
        n = "%s/%s" % (w["kind"], w["metadata"]["name"])
        pod = w["spec"]["template"]
        spec = pod["spec"]
        labels = pod["metadata"].get("labels", {})
        sel = w["spec"].get("selector", {}).get("matchLabels")
        if sel is not None:
            check("k8s/%s/%s/selector" % (name, n), all(labels.get(k) == v for k, v in sel.items()),
                  "selector %s does not match the pod labels %s" % (sel, labels))
        for c in spec["containers"]:
            ports = {p["containerPort"] for p in c.get("ports", [])} | {p.get("name") for p in c.get("ports", [])}
            pod_ports.setdefault(n, (labels, set()))[1].update(ports)
            check("k8s/%s/%s/%s/resources" % (name, n, c["name"]),
                  c.get("resources", {}).get("requests") and c.get("resources", {}).get("limits"),
                  "no resource requests and limits")
            if w["kind"] == "Job":
                continue
            for probe, path in (("readinessProbe", None), ("livenessProbe", "/healthz")):
                pr = c.get(probe, {}).get("httpGet")
                if not pr:
                    bad("k8s/%s/%s/%s/%s" % (name, n, c["name"], probe), "missing")
                    continue
                good = pr.get("port") in ports and (path is None or pr.get("path") == path)
                check("k8s/%s/%s/%s/%s" % (name, n, c["name"], probe), good,
                      "httpGet %s:%s: the port is not a port of the container%s" %
                      (pr.get("path"), pr.get("port"), "" if path is None else " or the path is not " + path),
                      "%s:%s" % (pr.get("path"), pr.get("port")))
            if c["name"] == "spillway":
                rp = c["readinessProbe"]["httpGet"]["path"] if c.get("readinessProbe") else None
                check("k8s/%s/%s/readyz" % (name, n), rp == "/readyz", "readiness probe path %s" % rp)
                mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
                check("k8s/%s/%s/mounts" % (name, n), {"/var/lib/spillway", "/etc/spillway"} <= mounts,
                      "mounts %s" % sorted(mounts))
                check_spillway_ports(name, n, c, spec, configmaps)
                spillway_pods.append(labels)
        if w["kind"] in ("StatefulSet", "DaemonSet"):
            g = spec.get("terminationGracePeriodSeconds", 30)
            check("k8s/%s/%s/grace" % (name, n), g >= 15,
                  "terminationGracePeriodSeconds %s: must exceed shutdown_timeout (10s) plus the spill" % g, str(g))
            sc = spec.get("securityContext", {})
            check("k8s/%s/%s/non_root" % (name, n), sc.get("runAsNonRoot") and sc.get("runAsUser") == 10001,
                  "pod securityContext must run as non-root uid 10001")
        if w["kind"] == "StatefulSet":
            vct = [v["metadata"]["name"] for v in w["spec"].get("volumeClaimTemplates", [])]
            check("k8s/%s/%s/volume_claim" % (name, n), "data" in vct, "no volumeClaimTemplates 'data'")
    for s in (d for d in docs if d["kind"] == "Service"):
        sel = s["spec"].get("selector", {})
        targets = [(labels, ports) for labels, ports in pod_ports.values()
                   if sel and all(labels.get(k) == v for k, v in sel.items())]
        check("k8s/%s/Service/%s/selects" % (name, s["metadata"]["name"]), targets, "selects no pod")
        for p in s["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            check("k8s/%s/Service/%s/port %s" % (name, s["metadata"]["name"], p["port"]),
                  targets and all(tp in ports for _, ports in targets),
                  "targetPort %s is not a port of the selected pods" % tp)
        if sel and any(all(labels.get(k) == v for k, v in sel.items()) for labels in spillway_pods):
            have = {p.get("targetPort"): p["port"] for p in s["spec"]["ports"]}
            for pname, port in sorted(OTLP_PORTS.items()):
                check("k8s/%s/Service/%s/%s" % (name, s["metadata"]["name"], pname), have.get(pname) == port,
                      "a Service in front of spillway must expose %s on %d" % (pname, port))
    for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        hit = [n for n, (labels, _) in pod_ports.items() if all(labels.get(k) == v for k, v in sel.items())]
        check("k8s/%s/PodDisruptionBudget/%s" % (name, pdb["metadata"]["name"]),
              any(h.startswith("StatefulSet/") for h in hit), "selects no gateway pod (%s)" % hit)
    return 0


def cmd_configs(rendered, outdir):
    n = 0
    for d in yaml.safe_load_all(open(rendered)):
        if d and d["kind"] == "ConfigMap":
            for k, v in d.get("data", {}).items():
                if k.endswith(".yaml"):
                    n += 1
                    with open(os.path.join(outdir, "%s-%s" % (d["metadata"]["name"], k)), "w") as f:
                        f.write(v)
    print(n)
    return 0


def cmd_endpoints(path):
    for key, (host, port) in sorted(config_endpoints(open(path).read()).items()):
        print("%s=%s:%s" % (key, host, port))
    return 0


def cmd_exprs(dash_path, rules_path):
    for title, e in dashboard_exprs(json.load(open(dash_path))):
        print(json.dumps({"kind": "dashboard", "name": title, "expr": e}))
    for g in yaml.safe_load(open(rules_path))["groups"]:
        for r in g["rules"]:
            print(json.dumps({"kind": "rule", "name": r.get("alert") or r.get("record"), "expr": r["expr"],
                              "metrics": sorted(metric_names(r["expr"]))}))
    return 0


def main(argv):
    cmds = {"compose": cmd_compose, "alerts": cmd_alerts, "dashboard": cmd_dashboard,
            "k8s": cmd_k8s, "exprs": cmd_exprs, "configs": cmd_configs, "endpoints": cmd_endpoints}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        cmds[argv[1]](*argv[2:])
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as e:
        bad(argv[1], "%s: %s" % (type(e).__name__, e))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
