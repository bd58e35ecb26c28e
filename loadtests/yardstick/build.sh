#!/bin/sh
# Build the yardstick's Go node (loadtests/yardstick/centrifuge_node) into loadtests/yardstick/bin/
# against Debian's packaged centrifuge library at a pinned version. Nothing is downloaded:
# the Go sources come from the Debian packages under /usr/share/gocode (GOPATH mode).
#
#   apt-get install -y golang-go golang-github-centrifugal-centrifuge-dev golang-github-gogo-protobuf-dev \
#       golang-github-centrifugal-protocol-dev golang-github-fzambia-eagle-dev \
#       golang-github-igm-sockjs-go-dev golang-github-mna-redisc-dev
#
# (Debian's centrifuge package does not depend on the last four, which it imports.)
set -eu

# The pinned versions: the library, and the protocol package that fixes its wire format
# (loadtests/lean_client.py speaks it).
PINNED="golang-github-centrifugal-centrifuge-dev=0.15.0+git20210306.f435ba2-2
golang-github-centrifugal-protocol-dev=0.3.6-3"
OTHERS="golang-go golang-github-fzambia-eagle-dev golang-github-fzambia-sentinel-dev
golang-github-igm-sockjs-go-dev golang-github-mna-redisc-dev golang-github-gomodule-redigo-dev
golang-github-gorilla-websocket-dev golang-github-google-uuid-dev
golang-github-prometheus-client-golang-dev golang-github-gogo-protobuf-dev"

HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/bin/centrifuge_node"
GOPATH_DEBIAN=/usr/share/gocode

installed() {
    dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null | sed -n 's/^installed //p'
}

fail=0
for pin in $PINNED; do
    package=${pin%%=*}
    want=${pin#*=}
    have=$(installed "$package")
    if [ -z "$have" ]; then
        echo "yardstick: $package is not installed (pinned: $want); see the apt-get line in $0" >&2
        fail=1
    elif [ "$have" != "$want" ]; then
        echo "yardstick: $package is $have, the yardstick is pinned to $want" >&2
        fail=1
    fi
done
for package in $OTHERS; do
    if [ -z "$(installed "$package")" ]; then
        echo "yardstick: $package is not installed; see the apt-get line in $0" >&2
        fail=1
    fi
done
command -v go >/dev/null 2>&1 || { echo "yardstick: no go toolchain (apt-get install golang-go)" >&2; fail=1; }
[ "$fail" = 0 ] || exit 1

mkdir -p "$HERE/bin"
cd "$HERE/centrifuge_node"
# GOPATH mode resolves every import from Debian's tree; GOPROXY=off makes sure nothing is fetched.
env GO111MODULE=off GOPATH="$GOPATH_DEBIAN" GOPROXY=off GOFLAGS= GOCACHE="$HERE/bin/.cache" \
    go build -trimpath -o "$OUT" .
printf 'yardstick: built %s (%s' "$OUT" "$(go version | cut -d' ' -f3)"
for pin in $PINNED; do printf ', %s' "$pin"; done
echo ')'
