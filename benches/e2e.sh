#!/bin/bash
# benches/e2e.sh [--quick] [--rounds N] [--secs S] [--no-tcp] [--only presence-proxy|kamailio] [--profile]
# Environment: PP_BIN (another build), PP_BUSY_POLL_US, PP_RT_PRIO (see below).
#
# End-to-end comparison (issue 7): the same presence traffic through
#   (a) presence-proxy  (100 000 users, 10 % of load pairs blocked, --trust-from), and
#   (b) Kamailio 5.6 -x tlsf on ../shared/peers/kamailio-bench/bench-proxy.cfg (stateless,
#       record-routing, htable of 100 000 blocked pairs, textops rewrite of <basic>open</basic>),
# each pinned to CPU 0 with the load harness (benches/loadgen) on CPU 1, alternating runs.
# Per proxy and round: saturation (fixed window), latency at 50 % of that (fixed rate) and a
# direct baseline at the same rate (no proxy), UDP then TCP (watchers' side); then one fresh
# start per proxy with 100 000 subscriptions left active to read its memory.
# Prints the table (median of rounds); raw JSON lines in target/e2e/results-*.jsonl.
#
# Every process started here is stopped here, by pid.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
KIT=$ROOT/../shared/peers/kamailio-bench
W=$ROOT/target/e2e
QUICK=0; ROUNDS=3; SECS=10; TCP=1; ONLY=""; PROFILE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; ROUNDS=1; SECS=3 ;;
    --rounds) ROUNDS=$2; shift ;;
    --secs) SECS=$2; shift ;;
    --no-tcp) TCP=0 ;;
    --only) ONLY=$2; shift ;;
    --profile) PROFILE=1 ;;
    *) echo "usage: $0 [--quick] [--rounds N] [--secs S] [--no-tcp] [--only presence-proxy|kamailio] [--profile]" >&2; exit 2 ;;
  esac
  shift
done
MEMSUBS=100000
BUSY=${PP_BUSY_POLL_US:-0}   # sip.busy_poll_us of the proxy under test
# PP_RT_PRIO: sip.realtime_priority of the proxy under test; Kamailio then runs under
# `chrt -f` at the same priority (all its processes), so both get the same scheduler.
RT=${PP_RT_PRIO:-0}
KCHRT=""; [ "$RT" -gt 0 ] && KCHRT="chrt -f $RT"
# Ports of this benchmark only (loopback).
KPORT=35060; PPORT=35070; SPORT=35080; WPORT=35061; HPORT=35090
TMO=2000; SATWIN=200
mkdir -p "$W"; OUT=$W/results-$(date +%Y%m%d-%H%M%S).jsonl; : > "$OUT"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# ---- peers and builds ------------------------------------------------------------
if ! command -v kamailio > /dev/null; then
  log "installing kamailio"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kamailio > /dev/null || exit 1
fi
[ -r "$KIT/bench-proxy.cfg" ] || { echo "missing $KIT/bench-proxy.cfg" >&2; exit 1; }
log "building (release)"
[ -n "${PP_BIN:-}" ] || cargo build --release --bin presence-proxy -q || exit 1
# `cargo build --release` rather than `cargo bench --no-run`: same profile as the binary, one build.
LG=$(cargo build --release --bench loadgen --message-format=json 2> /dev/null \
  | grep -o '"executable":"[^"]*loadgen[^"]*"' | cut -d'"' -f4 | tail -1)
[ -x "$LG" ] || { echo "loadgen did not build" >&2; exit 1; }
# PP_BIN: measure another build of presence-proxy (e.g. a branch not merged yet).
PP=${PP_BIN:-$ROOT/target/release/presence-proxy}
"$LG" selftest > /dev/null || { echo "loadgen selftest failed" >&2; exit 1; }

log "generating data (100 000 users)"
"$LG" gen-data --dir "$W/data" --users 100000 > /dev/null || exit 1
rm -rf "$W/ppdata-template"
if ! "$PP" policy --data "$W/ppdata-template" import "$W/data/policy.json" > "$W/import.log" 2>&1; then
  echo "policy import failed:" >&2; cat "$W/import.log" >&2; exit 1
fi
sed -e "s#@DB@#$W/data/kam/db#" -e "s#127.0.0.1:5060#127.0.0.1:$KPORT#g" \
  -e "s#sip:127.0.0.1:5080#sip:127.0.0.1:$SPORT#" "$KIT/bench-proxy.cfg" > "$W/kam.cfg"

# ---- proxies -----------------------------------------------------------------------
PID=""
cleanup() { if [ -n "$PID" ] && kill -0 "$PID" 2> /dev/null; then kill "$PID"; wait "$PID" 2> /dev/null; fi; PID=""; }
trap cleanup EXIT
# A UDP and a TCP socket bound to the port (`ss` needs sock_diag, missing on some VMs).
port_up() { local h; h=$(printf ':%04X ' "$1"); grep -q "$h" /proc/net/udp && grep -q "$h" /proc/net/tcp; }

start() {   # start KIND → PID, TARGET
  case "$1" in
    kamailio)
      $KCHRT taskset -c 0 kamailio -f "$W/kam.cfg" -DD -E -m 256 -M 32 -x tlsf > "$W/kam.log" 2>&1 &
      PID=$!; TARGET=127.0.0.1:$KPORT
      for _ in $(seq 1 150); do
        grep -q 'entries loaded' "$W/kam.log" && port_up $KPORT && [ "$(pgrep -P $PID | wc -l)" -ge 5 ] && break
        sleep 0.2
      done ;;
    presence-proxy)
      rm -rf "$W/ppdata"; cp -a "$W/ppdata-template" "$W/ppdata"
      printf '[sip]\nbusy_poll_us = %s\nrealtime_priority = %s\n' "$BUSY" "$RT" > "$W/pp.toml"
      taskset -c 0 "$PP" --config "$W/pp.toml" --listen 127.0.0.1:$PPORT --upstream udp:127.0.0.1:$SPORT --data "$W/ppdata" --http 127.0.0.1:$HPORT \
        --trust-from > "$W/pp.log" 2>&1 &
      PID=$!; TARGET=127.0.0.1:$PPORT
      for _ in $(seq 1 150); do port_up $PPORT && break; sleep 0.2; done ;;
  esac
  kill -0 "$PID" 2> /dev/null && port_up "${TARGET#*:}" || { echo "$1 did not start" >&2; tail "$W"/*.log >&2; exit 1; }
  "$LG" idle --pid "$PID" --max-s 20
}

load() {   # load KIND PHASE ROUND ARGS... : one harness run on CPU 1
  local kind=$1 phase=$2 round=$3; shift 3
  taskset -c 1 "$LG" run --server 127.0.0.1:$SPORT --watcher 127.0.0.1:$WPORT --timeout-ms $TMO \
    --kind "$kind" --phase "$phase" --round "$round" --out "$OUT" "$@" >&2
}
last() { tail -1 "$OUT" | grep -o "\"$1\":[0-9.e+-]*" | head -1 | cut -d: -f2; }

kinds() {   # alternate the order every round
  local k="presence-proxy kamailio"; [ $(($1 % 2)) -eq 1 ] && k="kamailio presence-proxy"
  for x in $k; do [ -z "$ONLY" ] || [ "$ONLY" = "$x" ] && echo "$x"; done
}

for r in $(seq 1 "$ROUNDS"); do
  for kind in $(kinds "$r"); do
    log "round $r: $kind"
    start "$kind"
    trs=udp; [ $TCP = 1 ] && trs="udp tcp"
    for tr in $trs; do
      tflag=""; [ $tr = tcp ] && tflag=--tcp
      load "$kind" sat "$r" --target "$TARGET" $tflag --pid "$PID" --window $SATWIN --count 5000000 --duration-s "$SECS"
      sat=$(last flows_per_s); rate=$(awk -v s="$sat" 'BEGIN { r = s / 2; if (r < 100) r = 100; printf "%d", r }')
      load "$kind" lat "$r" --target "$TARGET" $tflag --pid "$PID" --rate "$rate" --window 100000 --spin \
        --count $((rate * SECS)) --duration-s "$SECS"
      [ $tr = udp ] && urate=$rate
    done
    cleanup
    # the same offered rate without a proxy: the path the proxy's latency is added to
    load direct "base-$kind" "$r" --direct --rate "$urate" --window 100000 --spin --count $((urate * SECS)) --duration-s "$SECS"
  done
done

for kind in $(kinds 0); do
  log "memory: $kind with $MEMSUBS subscriptions"
  start "$kind"
  load "$kind" mem 0 --target "$TARGET" --pid "$PID" --window $SATWIN --count $MEMSUBS --duration-s 120
  cleanup
done

if [ $PROFILE = 1 ] && command -v perf > /dev/null; then
  # Where each proxy's CPU goes at saturation over UDP: perf samples of all its processes.
  for kind in $(kinds 0); do
    log "profile: $kind"
    start "$kind"
    pids=$(pgrep -P "$PID" | tr '\n' ',')$PID
    perf record -F 2999 -g -o "$W/perf-$kind.data" -p "$pids" > /dev/null 2>&1 &
    PERF=$!
    load "$kind" profile 0 --target "$TARGET" --pid "$PID" --window $SATWIN --count 5000000 --duration-s "$SECS"
    kill -INT $PERF; wait $PERF
    perf report -i "$W/perf-$kind.data" --no-children --sort dso,symbol --percent-limit 0.7 --stdio \
      2> /dev/null | grep -E '^ +[0-9]' > "$W/perf-$kind.txt"
    perf report -i "$W/perf-$kind.data" --no-children --sort dso --stdio 2> /dev/null | grep -E '^ +[0-9]' \
      >> "$W/perf-$kind.txt"
    log "profile of $kind: $W/perf-$kind.txt"
    cleanup
  done
fi

log "results: $OUT"
echo "machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(uname -r); load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: benches/e2e.sh $([ $QUICK = 1 ] && echo --quick) (rounds $ROUNDS, $SECS s per run); presence-proxy: $PP; PP_BUSY_POLL_US=$BUSY PP_RT_PRIO=$RT"
echo "kamailio: $(kamailio -v 2> /dev/null | head -1)"
"$LG" table "$OUT"
