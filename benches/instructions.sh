#!/bin/bash
# benches/instructions.sh [--flows N] [--out FILE] [--tcp]
# Environment: PP_BIN (another build of presence-proxy).
#
# User-space instructions per forwarded message of the real proxy binary, counted by
# valgrind's callgrind over the e2e traffic (benches/e2e.sh's 100 000 users, 10 % of
# pairs blocked; UDP, or with --tcp the watchers over TCP): instrumentation is switched on only after start-up, for N flows
# (4 messages each) at 500 flows/s, and off again before shutdown. Unlike CPU time on
# this shared VM, the count does not move with the host's speed, so two builds compare
# within a fraction of a percent: what a user-space change buys, measured alone (the
# kernel's share of each message is e2e.sh's to measure).
# Prints the total, the per-message figure and the 25 functions with the most
# inclusive instructions; the callgrind file is kept for callgrind_annotate.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
W=$ROOT/target/e2e
FLOWS=3000; OUT=$W/callgrind.out; TCPF=""
while [ $# -gt 0 ]; do
  case "$1" in
    --flows) FLOWS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --tcp) TCPF=--tcp ;;
    *) echo "usage: $0 [--flows N] [--out FILE] [--tcp]" >&2; exit 2 ;;
  esac
  shift
done
RATE=500
# Ports of this benchmark only (loopback); e2e.sh's, so the two never run together.
PPORT=35070; SPORT=35080; WPORT=35061; HPORT=35090
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

if ! command -v valgrind > /dev/null; then
  log "installing valgrind"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind > /dev/null || exit 1
fi
[ -n "${PP_BIN:-}" ] || cargo build --release --bin presence-proxy -q || exit 1
PP=${PP_BIN:-$ROOT/target/release/presence-proxy}
LG=$(cargo build --release --bench loadgen --message-format=json 2> /dev/null \
  | grep -o '"executable":"[^"]*loadgen[^"]*"' | cut -d'"' -f4 | tail -1)
[ -x "$LG" ] || { echo "loadgen did not build" >&2; exit 1; }

mkdir -p "$W"
if [ ! -d "$W/ppdata-template" ]; then
  log "generating data (100 000 users)"
  "$LG" gen-data --dir "$W/data" --users 100000 > /dev/null || exit 1
  "$PP" policy --data "$W/ppdata-template" import "$W/data/policy.json" > "$W/import.log" 2>&1 \
    || { cat "$W/import.log" >&2; exit 1; }
fi
DATA=$(mktemp -d)
cp -a "$W/ppdata-template/." "$DATA/"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2> /dev/null; wait 2> /dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" "$PP" --listen 127.0.0.1:$PPORT \
  --upstream udp:127.0.0.1:$SPORT --data "$DATA" --http 127.0.0.1:$HPORT --trust-from > "$W/instructions.log" 2>&1 &
PID=$!
h=$(printf ':%04X ' $PPORT)
for _ in $(seq 1 300); do grep -q "$h" /proc/net/udp && break; sleep 0.2; done
grep -q "$h" /proc/net/udp || { echo "proxy did not start under valgrind" >&2; tail "$W/instructions.log" >&2; exit 1; }
sleep 3   # let start-up work (table load, sled open) finish before counting
callgrind_control -i on "$PID" > /dev/null 2>&1 || exit 1
"$LG" run --server 127.0.0.1:$SPORT --watcher 127.0.0.1:$WPORT --target 127.0.0.1:$PPORT $TCPF --rate $RATE \
  --window $RATE --count "$FLOWS" --duration-s $((FLOWS / RATE + 1)) --timeout-ms 5000 > "$W/instructions-load.txt" 2>&1
callgrind_control -i off "$PID" > /dev/null 2>&1
kill -TERM "$PID"; wait "$PID"; PID=""
summary=$(tail -1 "$W/instructions-load.txt")
echo "$summary" | grep -q 'timeouts 0' || { echo "flows timed out: $summary" >&2; exit 1; }
total=$(callgrind_annotate "$OUT" 2> /dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
msgs=$((FLOWS * 4))
echo "presence-proxy: $PP ($(git rev-parse --short HEAD 2> /dev/null))"
echo "load: $summary"
echo "instructions: $total for $msgs forwarded messages = $((total / msgs)) per message"
echo "inclusive instructions per message, top 25 (functions of the binary, and malloc/free):"
# callgrind_annotate lists a function once per source file its (inlined) code came
# from; the largest of those inclusive figures is the function's own.
callgrind_annotate --inclusive=yes "$OUT" 2> /dev/null | grep -E '^ *[0-9,]+ \(' \
  | awk -v m=$msgs '{ n = $1; gsub(",", "", n); n = n + 0; f = $0; sub(/ \[[^]]*\]$/, "", f); sub(/^[^(]*\([^)]*\) +/, "", f); sub(/^[^:]*:/, "", f); sub(/ \([0-9,]+x\)$/, "", f)
      if (f ~ /^presence_proxy::|^(malloc|free|realloc)$/ && n > best[f]) best[f] = n }
    END { for (f in best) printf "%8d  %s\n", best[f] / m, f }' | sort -rn | head -25
