#!/usr/bin/env bash
# SET/GET over TLS, Basalt vs redis-server, same settings (appendonly
# everysec, no save points, client certificates required), alternating
# rounds. Prints requests/s and the server's CPU time per 100k requests
# (utime+stime from /proc, clock ticks): the CPU figure is the steadier
# one on a busy, shared machine. Certificates are made with the openssl CLI.
# usage: benches/tls.sh [rounds] [basalt-binary]
set -euo pipefail
# PIN=1: each server on core 0 and redis-benchmark on core 1 (per-core
# figures; Basalt then runs one IO thread). BASALT_ARGS adds server flags.
spin=(); cpin=(); extra=(${BASALT_ARGS:-})
if [[ ${PIN:-0} == 1 ]]; then spin=(taskset -c 0); cpin=(taskset -c 1); extra+=(--io-threads 1); fi
cd "$(dirname "$0")/.."
rounds=${1:-3}
bin=${2:-target/release/basalt-server}
work=$(mktemp -d)
bport=$((29000 + RANDOM % 2000)); rport=$((bport + 1)); btls=$((bport + 2)); rtls=$((bport + 3))
trap 'redis-cli -p $bport shutdown nosave >/dev/null 2>&1; redis-cli -p $rport shutdown nosave >/dev/null 2>&1; rm -rf "$work"' EXIT

cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=bench-ca -keyout ca.key -out ca.crt 2>/dev/null
for n in server client; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=$n \
    -keyout $n.key -out $n.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > $n.ext
  openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile $n.ext -out $n.crt 2>/dev/null
done
cd - >/dev/null
tlsargs=(--tls-cert-file "$work/server.crt" --tls-key-file "$work/server.key" --tls-ca-cert-file "$work/ca.crt")
mkdir -p "$work/b" "$work/r"
"${spin[@]}" "$bin" "${extra[@]}" --port "$bport" --tls-port "$btls" --dir "$work/b" --appendonly yes --appendfsync everysec --save "" "${tlsargs[@]}" >"$work/b.log" 2>&1 &
(cd "$work/r" && "${spin[@]}" redis-server --port "$rport" --tls-port "$rtls" --dir "$work/r" --appendonly yes --appendfsync everysec --save "" "${tlsargs[@]}" >"$work/r.log" 2>&1 &)
for p in $bport $rport; do for _ in $(seq 100); do [[ $(redis-cli -p $p ping 2>/dev/null) == PONG ]] && break; sleep 0.05; done; done
bpid=$(pgrep -f -- "--port $bport --tls-port"); rpid=$(pgrep -f "redis-server.*:$rport")
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
bench() { # port pid extra-args... -> "rps_set rps_get ticks"
  local port=$1 pid=$2; shift 2
  local c0 c1 out
  c0=$(cpu "$pid")
  out=$("${cpin[@]}" redis-benchmark -p "$port" --tls --cacert "$work/ca.crt" --cert "$work/client.crt" --key "$work/client.key" \
    -c 50 -r 100000 -d 64 -t set,get -q "$@" 2>&1 | tr '\r' '\n' | grep -E '^(SET|GET): [0-9.]+ requests per second')
  c1=$(cpu "$pid")
  echo "$(echo "$out" | awk '/^SET/{print $2}') $(echo "$out" | awk '/^GET/{print $2}') $((c1 - c0))"
}
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg), PIN=${PIN:-0}, basalt args: ${extra[*]:-none}"
for args in "-n 200000" "-n 1000000 -P 16"; do
  n=$(echo "$args" | awk '{print $2}')
  echo "redis-benchmark --tls -c 50 -r 100000 -d 64 -t set,get $args"
  echo "round,basalt SET/s,redis SET/s,basalt GET/s,redis GET/s,basalt ticks/100k,redis ticks/100k"
  for i in $(seq "$rounds"); do
    read -r bs bg bt <<<"$(bench "$btls" "$bpid" $args)"
    read -r rs rg rt <<<"$(bench "$rtls" "$rpid" $args)"
    echo "$i,$bs,$rs,$bg,$rg,$((bt * 100000 / (2 * n))),$((rt * 100000 / (2 * n)))"
  done
done
