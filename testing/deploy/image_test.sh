#!/bin/sh
# make image-test: builds deploy/Dockerfile with podman and runs the image
# for real (host networking, everything on 127.0.0.1).
#
#  1. Base image: docker.io/library/debian:12 is made locally (no registry
#     is pulled from): mmdebstrap --variant=minbase bookworm from the Debian
#     mirror of this machine's apt sources, then podman import. Skipped when
#     the image exists (IMAGE_TEST_NEW_BASE=1 forces it).
#  2. podman --runtime runc build --format docker --pull=never --network host
#     -f deploy/Dockerfile . (docker format: the OCI format has no HEALTHCHECK)
#  3. A mock upstream (build/spillway-mockup) on the host; a container of
#     the image with the DLQ on a fresh named volume, its ports overridden
#     through the config's ${env:...} variables to 127.0.0.1. Checks: the
#     image's HEALTHCHECK passes, /healthz answers 200, the process runs as
#     uid 10001 (not root), spans sent over OTLP/HTTP (4318) and over
#     OTLP/gRPC (4317, spillway-loadgen --protocol grpc) reach the mock.
#  4. The upstream hangs (admin outage: requests read, never answered);
#     more items are sent over both transports; then `podman stop`: spillway must log SIGTERM and
#     a clean shutdown, exit 0, and leave its queue and in-flight data in the
#     DLQ on the volume (checked offline with `spillway dlq ls`).
#  5. The upstream recovers; a second container on the same volume replays:
#     the mock ends with every accepted item exactly once.
# Prints PASS/FAIL lines. Needs root (or working rootless podman), podman,
# runc, mmdebstrap, curl. Takes 1-3 min (the image build compiles spillway).
# Usage: sh testing/deploy/image_test.sh   (SW_BIN_DIR: host binaries, default build)
set -u
BIN=${SW_BIN_DIR:-build}
IMG=localhost/spillway:image-test
BASE=docker.io/library/debian:12
PODMAN="podman --runtime runc"
UL="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sw-image-test.XXXXXX")
tag=sw-image-test-$$
VOL=$tag-data
MOCK_PID=""
fails=0
ok() { echo "PASS: image/$1"; }
bad() { echo "FAIL: image/$1: $2"; fails=$((fails + 1)); }
cleanup() {
    $PODMAN rm -f -t 0 "$tag-1" "$tag-2" >/dev/null 2>&1
    podman volume rm -f "$VOL" >/dev/null 2>&1
    if [ -n "$MOCK_PID" ]; then kill -TERM "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
finish() { [ "$fails" = 0 ] && exit 0; exit 1; }
now() { date +%s; }
. "$(dirname "$0")/../lib/wait.sh" # wait_file

for t in podman runc mmdebstrap curl; do
    command -v "$t" >/dev/null 2>&1 || { bad tools "$t is not installed (make deps installs it)"; finish; }
done
for b in spillway spillway-mockup spillway-loadgen; do
    [ -x "$BIN/$b" ] || { bad tools "$BIN/$b missing (run make)"; finish; }
done

# ---- 1. base image ---------------------------------------------------------
# The Debian mirror of this machine: the first deb URI serving bookworm in
# the apt sources (deb822 .sources files or one-line .list files).
mirror() {
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             { u = ""; s = ""; t = ""
               for (i = 1; i <= NF; i++) {
                 if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
                 if ($i ~ /^Suites:/) s = " " substr($i, 8) " "
                 if ($i ~ /^Types:/) t = $i }
               if (u != "" && t ~ /deb( |$)/ && s ~ /[ \t]bookworm[ \t]/) { print u; exit } }' "$f"
    done
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" && $3 == "bookworm" { u = $2; if (u ~ /^\[/) u = $3; print u; exit }'
}
if [ "${IMAGE_TEST_NEW_BASE:-0}" = 1 ] || ! podman image exists "$BASE"; then
    m=$(mirror | head -n 1)
    [ -n "$m" ] || { bad base "no bookworm mirror found in the apt sources"; finish; }
    t0=$(now)
    if mmdebstrap --variant=minbase bookworm "$tmp/base.tar" "deb $m bookworm main" >"$tmp/mmdebstrap.log" 2>&1 &&
        podman import "$tmp/base.tar" "$BASE" >"$tmp/import.log" 2>&1; then
        ok "base (mmdebstrap + import, $(( $(now) - t0 )) s)"
        rm -f "$tmp/base.tar"
    else
        bad base "mmdebstrap/podman import failed"; tail -n 20 "$tmp/mmdebstrap.log" "$tmp/import.log"; finish
    fi
else
    ok "base ($BASE present)"
fi

# ---- 2. build ----------------------------------------------------------------
t0=$(now)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# shellcheck disable=SC2086
if $PODMAN build --format docker --pull=never --network host $UL --build-arg SPILLWAY_REVISION="$rev" \
    -f deploy/Dockerfile -t "$IMG" . >"$tmp/build.log" 2>&1; then
    ok "build ($(( $(now) - t0 )) s, $(podman image inspect --format '{{.Size}}' "$IMG") bytes)"
else
    bad build "podman build failed"; tail -n 40 "$tmp/build.log"; finish
fi
user=$(podman image inspect --format '{{.Config.User}}' "$IMG")
[ "${user%%:*}" = 10001 ] && ok "image_user ($user)" || bad image_user "image user is '$user'"

# ---- 3. run ------------------------------------------------------------------
"$BIN/spillway-mockup" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --ready-file "$tmp/mock.ready" --log-level warn 2>"$tmp/mock.log" &
MOCK_PID=$!
wait_file "$tmp/mock.ready" 10 || { bad mock "mock upstream did not start"; finish; }
MOCK=$(sed -n 's/^http=//p' "$tmp/mock.ready")
ADMIN=$(sed -n 's/^admin=//p' "$tmp/mock.ready")
podman volume create "$VOL" >/dev/null || { bad volume "podman volume create failed"; finish; }
mkdir -p "$tmp/run" && chmod 0777 "$tmp/run"

# free_port: a loopback port free right now (the healthcheck needs to know
# the telemetry port in advance; the OTLP port comes from the ready file).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_ctr NAME: runs the image with host networking on loopback ports;
# sets OTLP, GRPC and TEL from its ready file.
start_ctr() {
    _tp=$(free_port)
    rm -f "$tmp/run/ready"
    # shellcheck disable=SC2086
    $PODMAN run -d --name "$1" --network host $UL --stop-timeout 30 \
        -v "$VOL:/var/lib/spillway" -v "$tmp/run:/run/sw" \
        -e SPILLWAY_OTLP_HTTP_ENDPOINT=127.0.0.1:0 -e SPILLWAY_OTLP_GRPC_ENDPOINT=127.0.0.1:0 \
        -e SPILLWAY_TELEMETRY_ENDPOINT="127.0.0.1:$_tp" \
        -e SPILLWAY_TELEMETRY_PORT="$_tp" -e SPILLWAY_UPSTREAM="http://$MOCK" \
        -e SPILLWAY_UPSTREAM_COMPRESSION=none -e SPILLWAY_SHUTDOWN_TIMEOUT=2s \
        "$IMG" --config /etc/spillway/config.yaml --ready-file /run/sw/ready >"$tmp/$1.id" 2>&1 || return 1
    wait_file "$tmp/run/ready" 20 || return 1
    OTLP=$(sed -n 's/^otlp_http=//p' "$tmp/run/ready")
    GRPC=$(sed -n 's/^otlp_grpc=//p' "$tmp/run/ready")
    TEL=$(sed -n 's/^telemetry=//p' "$tmp/run/ready")
}
# mock_items: spans the mock accepted.
mock_items() { curl -s --max-time 2 "http://$ADMIN/stats" | sed -n 's/.*"items":{"traces":\([0-9]*\).*/\1/p'; }
# send N_REQUESTS SEED [grpc]: 100 spans per request over OTLP/HTTP (or
# OTLP/gRPC, gzip-compressed); prints the accepted spans.
send() {
    if [ "${3:-http}" = grpc ]; then _a="--protocol grpc --compression gzip --endpoint http://$GRPC"
    else _a="--endpoint http://$OTLP"; fi
    # shellcheck disable=SC2086
    "$BIN/spillway-loadgen" $_a --signal traces --count "$1" --rate 2000 \
        --seed "$2" --json --quiet 2>>"$tmp/loadgen.log" | sed -n 's/.*"items_accepted":\([0-9]*\).*/\1/p'
}
metric() { curl -s --max-time 2 "http://$TEL/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
# wait_mock N SECONDS: until the mock holds N spans (or the time is up).
wait_mock() {
    _end=$(($(now) + $2))
    while [ "$(mock_items)" != "$1" ] && [ "$(now)" -lt "$_end" ]; do sleep 0.2; done
}

if ! start_ctr "$tag-1"; then
    bad run "the container did not start"; cat "$tmp/$tag-1.id"; podman logs "$tag-1" 2>&1 | tail -n 20; finish
fi
ok "run (otlp/http $OTLP, otlp/grpc $GRPC, telemetry $TEL)"
[ -n "$GRPC" ] || bad grpc_listening "the container's ready file has no otlp_grpc line: the gRPC receiver is off"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$TEL/healthz")
[ "$code" = 200 ] && ok healthz || bad healthz "GET /healthz answered $code"
if podman healthcheck run "$tag-1" >"$tmp/hc.log" 2>&1; then ok healthcheck
else bad healthcheck "the image's HEALTHCHECK failed: $(cat "$tmp/hc.log")"; fi
uid=$(podman exec "$tag-1" sh -c 'awk "/^Uid:/ { print \$2 }" /proc/1/status')
[ "$uid" = 10001 ] && ok "non_root (uid $uid)" || bad non_root "spillway runs as uid '$uid'"

a1=$(send 20 1)
wait_mock "$a1" 20
got=$(mock_items)
[ -n "$a1" ] && [ "$a1" = 2000 ] && [ "$got" = "$a1" ] && ok "forward ($got spans over OTLP/HTTP)" ||
    bad forward "sent 2000 spans, accepted ${a1:-?}, the mock has ${got:-?}"
# OTLP/gRPC on the container's 4317 (moved to 127.0.0.1:0 like 4318).
g1=0
[ -n "$GRPC" ] && g1=$(send 10 3 grpc)
wait_mock "$(( ${a1:-0} + ${g1:-0} ))" 20
got=$(mock_items)
grpc_items=$(metric 'spillway_receiver_items_total{signal="traces",transport="grpc"}')
if [ "${g1:-0}" = 1000 ] && [ "$got" = "$(( ${a1:-0} + 1000 ))" ] && [ "$grpc_items" = 1000 ]; then
    ok "forward_grpc (1000 spans over OTLP/gRPC with gzip; the mock has $got in all)"
else
    bad forward_grpc "sent 1000 spans over gRPC, accepted ${g1:-?}, the receiver counted ${grpc_items:-?} over gRPC, the mock has ${got:-?} of $(( ${a1:-0} + ${g1:-0} ))"
fi

# ---- 4. outage, then podman stop spills ------------------------------------------
# hang: the upstream reads requests and never answers, so at the stop
# spillway holds data in memory and in flight that only the spill saves.
curl -s -o /dev/null --max-time 2 -X POST "http://$ADMIN/admin/outage?seconds=600&mode=hang"
a2=$(send 30 2)
g2=0
[ -n "$GRPC" ] && g2=$(send 10 4 grpc)
held=$(metric spillway_dlq_bytes)
inflight=$(metric spillway_exporter_in_flight_requests)
stop_t0=$(now)
$PODMAN stop -t 30 "$tag-1" >/dev/null 2>&1
rc=$(podman inspect --format '{{.State.ExitCode}}' "$tag-1")
[ "$rc" = 0 ] && ok "stop (exit 0 after $(( $(now) - stop_t0 )) s)" || bad stop "exit code $rc after podman stop"
podman logs "$tag-1" >"$tmp/ctr1.log" 2>&1
if grep -q 'signal 15: stopping intake' "$tmp/ctr1.log" && grep -q 'shutdown: queue drained' "$tmp/ctr1.log" &&
    ! grep -q 'could be neither delivered nor stored' "$tmp/ctr1.log"; then
    ok "graceful_stop (SIGTERM reached spillway; everything delivered or stored; $inflight requests were in flight)"
else
    bad graceful_stop "no clean shutdown in the container log:"; tail -n 15 "$tmp/ctr1.log"
fi
$PODMAN run --rm --network none $UL -v "$VOL:/var/lib/spillway" --entrypoint /usr/local/bin/spillway "$IMG" \
    dlq ls --dir /var/lib/spillway/dlq >"$tmp/dlq-ls.txt" 2>&1
if [ -n "$a2" ] && [ "$a2" -gt 0 ] && [ "${g2:-0}" -gt 0 ] && grep -qE '(sealed|open)' "$tmp/dlq-ls.txt"; then
    ok "spilled_to_volume ($a2 spans over HTTP and $g2 over gRPC accepted during the outage; DLQ held $held bytes before stop)"
else
    bad spilled_to_volume "accepted ${a2:-?} (HTTP) and ${g2:-?} (gRPC) during the outage; dlq ls: $(cat "$tmp/dlq-ls.txt")"
fi

# ---- 5. a second container replays -----------------------------------------------
curl -s -o /dev/null --max-time 2 -X POST "http://$ADMIN/admin/outage?seconds=0"
if ! start_ctr "$tag-2"; then
    bad replay "the second container did not start"; podman logs "$tag-2" 2>&1 | tail -n 20; finish
fi
want=$(( ${a1:-0} + ${g1:-0} + ${a2:-0} + ${g2:-0} ))
end=$(($(now) + 60))
while [ "$(mock_items)" -lt "$want" ] 2>/dev/null && [ "$(now)" -lt "$end" ]; do sleep 0.2; done
got=$(mock_items)
distinct=$(curl -s --max-time 5 "http://$ADMIN/received/traces" | sort -u | wc -l)
if [ "$got" = "$want" ] && [ "$distinct" = "$want" ]; then
    ok "replay (the mock has all $want spans, each once)"
else
    bad replay "accepted $want spans, the mock has $got ($distinct distinct)"
    tail -n 20 "$tmp/ctr1.log"; podman logs "$tag-2" 2>&1 | tail -n 20
fi
$PODMAN stop -t 30 "$tag-2" >/dev/null 2>&1
finish
