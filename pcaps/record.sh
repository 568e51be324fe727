#!/bin/sh
# Records the presence flows of the enforcement issue between real peers on
# loopback: sipp phones talking straight to Kamailio (the upstream presence
# server), captured with dumpcap. No proxy is in the path: replaying these puts
# the proxy in front of Kamailio.
#
#   pcaps/record.sh udp   -> pcaps/presence-udp.pcap    (classic pcap)
#   pcaps/record.sh tcp   -> pcaps/presence-tcp.pcapng  (pcapng)
#
# Needs: kamailio + kamailio-presence-modules, sip-tester (sipp), dumpcap (tshark).
# Kamailio listens on 127.0.0.1:5170 so it never meets the one of the peer tests.
set -eu
transport=${1:-udp}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/replay-record.XXXXXX)
port=5170
case "$transport" in
  udp) t=u1; out="$here/presence-udp.pcap"; fmt=-P ;;
  tcp) t=t1; out="$here/presence-tcp.pcapng"; fmt=-n ;;
  *) echo "usage: $0 udp|tcp" >&2; exit 2 ;;
esac

cp -r /usr/share/kamailio/dbtext/kamailio "$work/db"
sed -e "s#/tmp/presence-peers/kamailio-db#$work/db#g" \
    -e "s#127.0.0.1:5070#127.0.0.1:$port#g" \
    "$here/../../shared/peers/kamailio/kamailio.cfg" > "$work/kamailio.cfg"
mkdir -p "$work/run"
kamailio -f "$work/kamailio.cfg" -DD -E -P "$work/run/kamailio.pid" -Y "$work/run" > "$work/kamailio.log" 2>&1 &
kam=$!
cleanup() {
  [ -n "${cap:-}" ] && kill "$cap" 2>/dev/null || true
  kill "$kam" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
sleep 1

dumpcap -q -i lo -f "port $port" "$fmt" -w "$out" > "$work/dumpcap.log" 2>&1 &
cap=$!
sleep 1

s="$here/scenarios"
run() { sipp "127.0.0.1:$port" -t "$t" -i 127.0.0.1 -m 1 -nostdin -timeout 10 -timeout_error "$@" > /dev/null; }
run -sf "$s/publish.xml" -s alice -p 5176
run -sf "$s/watcher.xml" -s bob -key owner alice -key domain example.com -p 5171
run -sf "$s/watcher.xml" -s carol -key owner alice -key domain example.com -p 5172
run -sf "$s/watcher.xml" -s dave -key owner alice -key domain other.org -p 5173
sleep 1
kill "$cap"; wait "$cap" 2>/dev/null || true
cap=
echo "recorded $out"
