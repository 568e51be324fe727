#!/usr/bin/env bash
# THE test command: every test of the project, including those against real peers
# (sipp, Kamailio, tshark, chromium/chromedriver). Installs the Debian packages of
# the peers when one is missing, fails loudly when a peer cannot run, then runs
# `cargo test --features peers`.
#
#   ./scripts/test-all.sh            # everything
#   ./scripts/test-all.sh --test proxy_torture   # extra arguments go to cargo test
set -euo pipefail

cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

# Debian package -> a command it provides.
declare -A PEERS=(
  [sip-tester]=sipp
  [kamailio]=kamailio
  [kamailio-presence-modules]=
  [tshark]=tshark
  [chromium]=chromium
  [chromium-driver]=chromedriver
  [iproute2]=ip
)

missing=()
for pkg in "${!PEERS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  say "installing missing peers: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
    SUDO="sudo"
  fi
  $SUDO apt-get update
  # tshark asks whether non-root users may capture; answer no, non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
    sip-tester kamailio kamailio-presence-modules tshark chromium chromium-driver iproute2 \
    || die "apt-get install failed"
fi

say "checking that every peer runs"
# `runs CMD... -- PATTERN`: the command prints PATTERN (some exit non-zero after
# printing their version, so only the output counts).
runs() {
  local pattern="${@: -1}" out
  out="$("${@:1:$#-2}" 2>&1 || true)"
  grep -qi -- "$pattern" <<<"$out"
}
runs sipp -v -- "sipp" || die "sipp does not run (package sip-tester)"
runs kamailio -v -- "kamailio" || die "kamailio does not run"
ls /usr/lib/*/kamailio/modules/presence.so >/dev/null 2>&1 \
  || die "kamailio presence module missing (package kamailio-presence-modules)"
runs tshark -v -- "tshark" || die "tshark does not run"
runs chromium --version -- "chromium" || die "chromium does not run"
runs chromedriver --version -- "chromedriver" || die "chromedriver does not run"
runs ip -V -- "ip" || die "ip (iproute2) does not run"
unshare -n true 2>/dev/null || die "cannot create a network namespace (unshare -n): the torture tests need root"

say "cargo test --features peers"
# Library, binary, every tests/*.rs and the doc tests. Benches are not run here
# (`cargo bench`): speed is measured, never asserted. One test thread: the peer
# tests start real processes (Kamailio, sipp, chromium) on loopback, and two of
# them at once on two cores only fight for the CPU. Under that contention
# Kamailio's first NOTIFY (sent on a TCP connection of its own) was seen reaching
# a sipp watcher in the same read as the 200 to its SUBSCRIBE; RFC 6665 §4.1.2.4
# allows that order, but a sipp scenario cannot answer a NOTIFY once the 200 is
# already queued behind it.
RUST_TEST_THREADS="${RUST_TEST_THREADS:-1}" cargo test --features peers "$@"
say "all tests passed"
