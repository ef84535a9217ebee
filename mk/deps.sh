#!/bin/sh
# Installs the Debian packages spillway needs to build and test.
# A no-op when all are present; uses apt-get as root, sudo otherwise, and
# prints the exact command when neither is possible.
set -eu
PKGS="gcc make pkg-config libevent-dev libprotobuf-c-dev protobuf-c-compiler \
libzstd-dev libssl-dev openssl libyaml-dev zlib1g-dev libjson-c-dev libnghttp2-dev \
clang libclang-rt-14-dev valgrind ca-certificates curl"
# node and npm run the OpenTelemetry JS SDK clients of itest_sdk_js; a node
# package that brings its own npm needs no Debian npm.
PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
# Deployment checks (make lint-deploy, make image-test): promtool, docker-compose,
# kubectl (kustomize), podman + runc + mmdebstrap, PyYAML.
PKGS="$PKGS prometheus docker-compose podman runc mmdebstrap python3 python3-yaml"
command -v kubectl >/dev/null 2>&1 || PKGS="$PKGS kubernetes-client"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "deps: missing packages; run as root:" >&2
    echo "  apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Packages such as prometheus start a system service when installed; these are
# tools for the tests, so keep invoke-rc.d from starting anything (exit 101
# from policy-rc.d) unless the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
fi
rc=0
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing || rc=$?
[ "$own_policy" = 1 ] && $SUDO rm -f "$policy"
exit "$rc"
