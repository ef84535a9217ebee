#!/bin/sh
# Stops the upstream container of the compose stack for a while and starts
# it again, printing spillway's breaker state, queue and DLQ every few
# seconds: spill to disk during the outage, replay after it.
#
#   sh deploy/compose/outage.sh [DOWN_SECONDS]      (default 60)
#
# Env: COMPOSE (default docker-compose; e.g. "docker compose"),
#      SPILLWAY_METRICS (default http://127.0.0.1:8888/metrics),
#      AFTER_SECONDS: how long to watch the replay (default 60).
set -eu
DOWN=${1:-60}
AFTER=${AFTER_SECONDS:-60}
COMPOSE=${COMPOSE:-docker-compose}
FILE="$(dirname "$0")/docker-compose.yml"
URL=${SPILLWAY_METRICS:-http://127.0.0.1:8888/metrics}
case $DOWN in '' | *[!0-9]*) echo "outage.sh: DOWN_SECONDS must be a whole number" >&2; exit 2 ;; esac

show() { # label
    curl -s --max-time 2 "$URL" | awk -v l="$1" '
        /^#/ { next }
        { n = $1; sub(/\{.*/, "", n) }
        n == "spillway_exporter_circuit_state" { b = $2 }
        n == "spillway_queue_fill_ratio" { q = $2 }
        n == "spillway_dlq_bytes" { d = $2 }
        n == "spillway_dlq_replayed_bytes_total" { r += $2 }
        n == "spillway_queue_spilled_total" { s += $2 }
        END { st = (b == 2 ? "open" : b == 1 ? "half-open" : "closed")
              printf "%-8s breaker=%-9s queue_fill=%.3f dlq_bytes=%d replayed_bytes=%d spilled_items=%d\n", l, st, q, d, r, s }'
}
watch() { # label seconds
    _end=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt "$_end" ]; do show "$1"; sleep 5; done
}

show before
echo "outage.sh: stopping the upstream for $DOWN s"
$COMPOSE -f "$FILE" stop upstream
watch down "$DOWN"
echo "outage.sh: starting the upstream again"
$COMPOSE -f "$FILE" start upstream
watch after "$AFTER"
show end
