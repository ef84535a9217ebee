#!/bin/sh
# Checks deploy/Dockerfile for the instructions the image needs (hadolint is
# not in Debian): a Debian 12 build stage and a separate runtime stage, no
# -dev packages in the runtime stage, apt lists removed, a non-root USER,
# the /var/lib/spillway volume, a HEALTHCHECK on /healthz, STOPSIGNAL,
# EXPOSE of 4318, 4317 and 8888, the config copied to /etc/spillway/config.yaml
# (and that file valid and binding 0.0.0.0 on those three ports, the OTLP/gRPC
# receiver included: its section turns it on), an exec-form ENTRYPOINT, no
# ADD of URLs, no :latest. Also .dockerignore keeps .git and build/ out.
# PASS/FAIL lines. Usage: sh testing/deploy/check_dockerfile.sh [SPILLWAY_BIN]
set -u
df=deploy/Dockerfile
sw=${1:-build/spillway}
fails=0
ok() { echo "PASS: dockerfile/$1"; }
bad() { echo "FAIL: dockerfile/$1: $2"; fails=$((fails + 1)); }
[ -f "$df" ] || { bad exists "$df missing"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sw-df.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Join continuation lines, drop comments: one instruction per line.
awk '/^[ \t]*#/ { next }
     { sub(/[ \t]+$/, "") }
     /\\$/ { sub(/\\$/, ""); buf = buf $0 " "; next }
     { print buf $0; buf = "" }' "$df" | grep -v '^[ \t]*$' >"$tmp/all"
# Stages: the runtime stage is everything after the last FROM.
awk 'toupper($1) == "FROM" { n++ } { print > (FILENAME ".stage" n) }' "$tmp/all"
nstages=$(grep -ci '^FROM ' "$tmp/all")
last="$tmp/all.stage$nstages"
first="$tmp/all.stage1"
if [ "$nstages" -ge 2 ] && grep -qiE '^FROM .* AS build' "$first"; then ok multistage
else bad multistage "need a build stage (FROM ... AS build) and a runtime stage, found $nstages FROM"; fi
base=$(sed -n 's/^ARG DEBIAN_IMAGE=//p' "$tmp/all" | head -n 1)
if grep -iE '^FROM ' "$tmp/all" | grep -qE 'latest'; then bad no_latest "a FROM uses :latest"; else ok no_latest; fi
if printf '%s\n' "$base" | grep -qE '(^|/)debian:12'; then ok debian12
else bad debian12 "base image is not debian:12 (ARG DEBIAN_IMAGE=$base)"; fi
if grep -qE 'apt-get install.*-dev' "$first"; then ok build_dev_packages
else bad build_dev_packages "build stage installs no -dev packages"; fi
if grep -qE '^RUN .*apt-get install.*[a-z0-9]-dev( |$)' "$last"; then bad runtime_no_dev "runtime stage installs -dev packages"
else ok runtime_no_dev; fi
if grep -q 'apt-get install' "$last" && ! grep -q 'no-install-recommends' "$last"; then bad runtime_recommends "runtime apt-get install without --no-install-recommends"
elif grep -q 'apt-get install' "$last" && ! grep -q 'rm -rf /var/lib/apt/lists' "$last"; then bad runtime_apt_lists "runtime stage keeps /var/lib/apt/lists"
elif grep -q 'apt-get install' "$last" && ! grep -q 'apt-get clean' "$last"; then bad runtime_apt_cache "runtime stage keeps the downloaded packages (no apt-get clean)"
else ok runtime_apt_clean; fi
if grep -qE '^COPY --from=build ' "$last"; then ok copy_from_build; else bad copy_from_build "runtime stage copies nothing from the build stage"; fi
user=$(grep -iE '^USER ' "$last" | tail -n 1 | awk '{ print $2 }')
case ${user%%:*} in
'') bad user "no USER in the runtime stage" ;;
0 | root) bad user "USER $user is root" ;;
*) ok "user ($user)" ;;
esac
if grep -iE '^VOLUME ' "$last" | grep -q '/var/lib/spillway'; then ok volume; else bad volume "no VOLUME /var/lib/spillway"; fi
if grep -iE '^HEALTHCHECK ' "$last" | grep -q '/healthz'; then ok healthcheck; else bad healthcheck "no HEALTHCHECK on /healthz"; fi
if grep -qiE '^STOPSIGNAL (SIGTERM|SIGINT|15|2)$' "$last"; then ok stopsignal; else bad stopsignal "no STOPSIGNAL SIGTERM/SIGINT"; fi
for p in 4318 4317 8888; do
    if grep -iE '^EXPOSE ' "$last" | grep -qw "$p"; then ok "expose_$p"; else bad "expose_$p" "port $p not exposed"; fi
done
if grep -qiE '^ENTRYPOINT \[' "$last"; then ok entrypoint_exec_form; else bad entrypoint_exec_form "ENTRYPOINT missing or not in exec form"; fi
if grep -qiE '^ADD +(https?|ftp)://' "$tmp/all"; then bad no_add_url "ADD of a URL"; else ok no_add_url; fi
src=$(grep -iE '^COPY ' "$last" | awk '$NF == "/etc/spillway/config.yaml" { print $(NF-1) }' | head -n 1)
if [ -z "$src" ] || [ ! -f "$src" ]; then
    bad config "no COPY of an existing file to /etc/spillway/config.yaml"
else
    ok config_copied
    if "$sw" validate --config "$src" >"$tmp/v" 2>&1; then ok config_valid
    else bad config_valid "$(cat "$tmp/v")"; fi
    if grep -q '0\.0\.0\.0:4318' "$src" && grep -q '0\.0\.0\.0:8888' "$src"; then ok config_binds_all
    else bad config_binds_all "$src does not bind 0.0.0.0:4318 and 0.0.0.0:8888"; fi
    # The gRPC receiver runs only when its section is present: the endpoint
    # must be under receivers.otlp.grpc, not just somewhere in the file.
    py=python3
    [ -x /usr/bin/python3 ] && py=/usr/bin/python3
    eps=$($py testing/deploy/deploy_check.py endpoints "$src" 2>&1)
    if printf '%s\n' "$eps" | grep -qx 'receivers.otlp.grpc=0.0.0.0:4317'; then ok config_grpc
    else bad config_grpc "$src has no receivers.otlp.grpc.endpoint 0.0.0.0:4317 (default of its \${env:...}): $eps"; fi
fi
if [ -f .dockerignore ] && grep -qx '.git' .dockerignore && grep -qx 'build' .dockerignore; then ok dockerignore
else bad dockerignore ".dockerignore must list .git and build"; fi
[ "$fails" = 0 ]
