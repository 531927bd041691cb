#!/usr/bin/env bash
# server_10 and worker_10 across three hosts, for a newcomer with root: three network
# namespaces on a bridge of their own (nothing in the root namespace changes), a LAN
# directory on host 1, server_10 --lan on host 2, two worker_10 --lan on host 3, every
# LAN link encrypted with a pre-shared key made for the run. It asks the server for a
# table from host 2, shows what the LAN directory knows, and removes everything on exit.
#
#     sudo bash examples/lan_hosts.sh
set -euo pipefail
[[ $(id -u) == 0 ]] || { echo "needs root (network namespaces): sudo bash $0" >&2; exit 2; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo build --release --quiet --examples -p strata-cli
cargo build --release --quiet -p strata-cli --bin strata
bin="$root/target/release"

run="sl$$"
sw="$run-sw"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    wait 2> /dev/null || true
    for n in "$sw" "$run-h1" "$run-h2" "$run-h3"; do ip netns del "$n" 2> /dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$sw"
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
for i in 1 2 3; do
    h="$run-h$i"
    ip netns add "$h"
    ip -n "$sw" link add "v$i" type veth peer name eth0 netns "$h"
    ip -n "$sw" link set "v$i" master br0 up
    ip -n "$h" addr add "10.78.0.$i/24" dev eth0
    ip -n "$h" link set eth0 up
    ip -n "$h" link set lo up
done

"$bin/strata" key new --psk --out "$work/lan.psk" > /dev/null
export STRATA_LAN_DIRECTORY=10.78.0.1:5400 STRATA_LAN_KEY="$work/lan.psk"
on() { local i=$1; shift; STRATA_RUNTIME_DIR="$work/h$i" ip netns exec "$run-h$i" "$@"; }

on 1 "$bin/strata" directory --lan --listen 0.0.0.0:5400 --key "$work/lan.psk" > "$work/lan.log" 2>&1 &
pids+=($!)
sleep 0.5
on 2 "$bin/examples/server_10" 10.78.0.2:5050 --lan > "$work/server.log" 2>&1 &
pids+=($!)
for w in 1 2; do
    on 3 "$bin/examples/worker_10" --lan > "$work/worker$w.log" 2>&1 &
    pids+=($!)
done
for _ in $(seq 1 50); do
    if on 2 curl -sf 'http://10.78.0.2:5050/Xy?x=2&y=2' > "$work/table" 2> /dev/null; then break; fi
    sleep 0.1
done
echo "host 3's workers:"; cat "$work"/worker*.log
echo "a table asked on host 2, made on host 3:"; cat "$work/table"; echo
echo "the spool on host 2:"; on 2 curl -s 'http://10.78.0.2:5050/SpoolStats'; echo
