#!/bin/sh
# The constant-memory replay bench: generates a capture of SIZE_MB (default 1024)
# and a quarter-size one, replays both (release build) and prints messages per
# second and the peak resident memory of each. Constant memory shows as the same
# peak for both sizes.
#
#   pcaps/bench-big.sh [SIZE_MB]
set -eu
size=${1:-1024}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
work=${TMPDIR:-/tmp}/replay-bench
mkdir -p "$work"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/presence-proxy"
for mb in $((size / 4)) "$size"; do
  cap="$work/big-$mb.pcap"
  [ -s "$cap" ] || python3 "$here/gen_big.py" "$cap" "$mb"
  /usr/bin/time -f "peak RSS %M KiB, %e s wall, %U s user" \
    "$bin" replay "$cap" --policy "$here/presence.policy.json" --upstream 10.0.0.1:5060 \
    --report /dev/null --out /dev/null 2>&1 | grep -E 'messages/s|peak RSS'
done
