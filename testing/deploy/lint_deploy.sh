#!/bin/sh
# make lint-deploy: every deployment file checked by the tool that reads it.
#   docker-compose config          deploy/compose/docker-compose.yml (+ static checks:
#                                   4318, 4317 and 8888 published on 127.0.0.1)
#   check_dockerfile.sh            deploy/Dockerfile (hadolint is not in Debian); the
#                                   image's config binds 0.0.0.0:4318 and :4317 (gRPC on)
#   promtool check config / check rules / test rules   deploy/prometheus/
#   alerts: every alert unit-tested (firing and silent), runbook links resolve
#   dashboard JSON parses, data source provisioned, one panel per topic
#   kubectl kustomize               deploy/k8s base and overlays: kinds, probes
#                                   on existing ports, Services, PDB, grace period;
#                                   spillway containers declare otlp-http 4318 and
#                                   otlp-grpc 4317, their config binds both on
#                                   0.0.0.0, Services in front of them expose both;
#                                   every spillway config in them passes
#                                   `spillway validate`
# What needs a live spillway (dashboard metric names, every PromQL query,
# alerts pending/firing) is testing/deploy/prom_live.sh.
# Prints PASS/FAIL lines for testing/run_tests.sh; exit 1 if any failed.
# Usage: SW_BIN_DIR=build sh testing/deploy/lint_deploy.sh   (KUBECTL: another kubectl)
set -u
BIN=${SW_BIN_DIR:-build}
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
CHECK="$PY testing/deploy/deploy_check.py"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sw-lint-deploy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fails=0
run() { # name command...: PASS when the command exits 0, else FAIL with its output
    _n=$1; shift
    if "$@" >"$tmp/out" 2>&1; then echo "PASS: deploy/$_n"
    else echo "FAIL: deploy/$_n: $*"; sed 's/^/    /' "$tmp/out" | tail -n 30; fails=$((fails + 1)); fi
}
sub() { # command...: a checker that prints its own PASS/FAIL lines
    "$@" || fails=$((fails + 1))
}
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "FAIL: deploy/tools: $1 not installed (make deps installs it)"; fails=$((fails + 1)); return 1
}

if need docker-compose; then
    run compose/config docker-compose -f deploy/compose/docker-compose.yml config -q
fi
run compose/outage.sh sh -n deploy/compose/outage.sh
sub $CHECK compose deploy/compose/docker-compose.yml
sub sh testing/deploy/check_dockerfile.sh "$BIN/spillway"
run config/container "$BIN/spillway" validate --config deploy/config/spillway.yaml

if need promtool; then
    run prometheus/check_config promtool check config deploy/prometheus/prometheus.yml
    run prometheus/check_rules promtool check rules deploy/prometheus/alerts.yml
    run prometheus/test_rules promtool test rules deploy/prometheus/alerts_test.yml
fi
sub $CHECK alerts deploy/prometheus/alerts.yml deploy/prometheus/alerts_test.yml docs/runbook.md
sub $CHECK dashboard deploy/grafana/dashboards/spillway.json deploy/grafana/provisioning/datasources/prometheus.yml
run grafana/provisioning $PY -c 'import sys, yaml; [yaml.safe_load(open(f)) for f in sys.argv[1:]]' \
    deploy/grafana/provisioning/datasources/prometheus.yml deploy/grafana/provisioning/dashboards/spillway.yml

KUBECTL=${KUBECTL:-kubectl}
if need "$KUBECTL"; then
    base=ConfigMap,Service,StatefulSet,PodDisruptionBudget
    for o in base:$base overlays/kind:$base,Namespace,Deployment,Job \
             overlays/agent:$base,Namespace,Deployment,Job,DaemonSet; do
        dir=${o%%:*}; kinds=${o#*:}; name=$(basename "$dir")
        if "$KUBECTL" kustomize "deploy/k8s/$dir" >"$tmp/$name.yaml" 2>"$tmp/$name.err"; then
            echo "PASS: deploy/k8s/$name/kustomize"
            sub $CHECK k8s "$name" "$tmp/$name.yaml" "$kinds"
            mkdir -p "$tmp/cfg-$name"
            n=$($CHECK configs "$tmp/$name.yaml" "$tmp/cfg-$name")
            for f in "$tmp/cfg-$name"/*; do
                [ -f "$f" ] && run "k8s/$name/config/$(basename "$f")" "$BIN/spillway" validate --config "$f"
            done
            [ "${n:-0}" -gt 0 ] || { echo "FAIL: deploy/k8s/$name/config: no spillway config in a ConfigMap"; fails=$((fails + 1)); }
        else
            echo "FAIL: deploy/k8s/$name/kustomize: kubectl kustomize deploy/k8s/$dir"
            sed 's/^/    /' "$tmp/$name.err"; fails=$((fails + 1))
        fi
    done
    run k8s/kind-cluster $PY -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert d["kind"] == "Cluster" and d["nodes"], d' \
        deploy/k8s/kind-cluster.yaml
fi
[ "$fails" = 0 ]
