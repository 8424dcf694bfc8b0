#!/usr/bin/env bash
# SET/GET as an ACL user, Basalt vs redis-server, same settings (appendonly
# yes, appendfsync everysec, no save points; default user off, user
# `bench` limited to keys `key:*` and to everything but @dangerous),
# alternating rounds. Prints requests/s and the server's CPU time per 100k
# requests (utime+stime from /proc, clock ticks).
# usage: benches/acl.sh [rounds] [basalt-binary]
set -euo pipefail
# PIN=1: each server on core 0 and redis-benchmark on core 1 (per-core
# figures; Basalt then runs one IO thread). BASALT_ARGS adds server flags.
spin=(); cpin=(); extra=(${BASALT_ARGS:-})
if [[ ${PIN:-0} == 1 ]]; then spin=(taskset -c 0); cpin=(taskset -c 1); extra+=(--io-threads 1); fi
cd "$(dirname "$0")/.."
rounds=${1:-3}
bin=${2:-target/release/basalt-server}
work=$(mktemp -d)
bport=$((31000 + RANDOM % 2000)); rport=$((bport + 1))
auth=(--user bench -a benchpw --no-auth-warning)
trap 'redis-cli -p $bport "${auth[@]}" shutdown nosave >/dev/null 2>&1; redis-cli -p $rport "${auth[@]}" shutdown nosave >/dev/null 2>&1; rm -rf "$work"' EXIT
printf 'user default off\nuser bench on >benchpw ~key:* resetchannels +@all -@dangerous +shutdown +ping\n' > "$work/users.acl"
mkdir -p "$work/b" "$work/r"
"${spin[@]}" "$bin" "${extra[@]}" --port "$bport" --dir "$work/b" --appendonly yes --appendfsync everysec --save "" --aclfile "$work/users.acl" >"$work/b.log" 2>&1 &
(cd "$work/r" && "${spin[@]}" redis-server --port "$rport" --dir "$work/r" --appendonly yes --appendfsync everysec --save "" --aclfile "$work/users.acl" >"$work/r.log" 2>&1 &)
for p in $bport $rport; do for _ in $(seq 100); do [[ $(redis-cli -p $p "${auth[@]}" ping 2>/dev/null) == PONG ]] && break; sleep 0.05; done; done
bpid=$(pgrep -f -- "--port $bport --dir"); rpid=$(pgrep -f "redis-server.*:$rport")
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
bench() { # port pid extra-args... -> "rps_set rps_get ticks"
  local port=$1 pid=$2; shift 2
  local c0 c1 out
  c0=$(cpu "$pid")
  out=$("${cpin[@]}" redis-benchmark -p "$port" --user bench -a benchpw -c 50 -r 100000 -d 64 -t set,get -q "$@" 2>&1 \
    | tr '\r' '\n' | grep -E '^(SET|GET): [0-9.]+ requests per second')
  c1=$(cpu "$pid")
  echo "$(echo "$out" | awk '/^SET/{print $2}') $(echo "$out" | awk '/^GET/{print $2}') $((c1 - c0))"
}
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg), PIN=${PIN:-0}, basalt args: ${extra[*]:-none}"
for args in "-n 200000" "-n 1000000 -P 16"; do
  n=$(echo "$args" | awk '{print $2}')
  echo "redis-benchmark --user bench -c 50 -r 100000 -d 64 -t set,get $args"
  echo "round,basalt SET/s,redis SET/s,basalt GET/s,redis GET/s,basalt ticks/100k,redis ticks/100k"
  for i in $(seq "$rounds"); do
    read -r bs bg bt <<<"$(bench "$bport" "$bpid" $args)"
    read -r rs rg rt <<<"$(bench "$rport" "$rpid" $args)"
    echo "$i,$bs,$rs,$bg,$rg,$((bt * 100000 / (2 * n))),$((rt * 100000 / (2 * n)))"
  done
done
