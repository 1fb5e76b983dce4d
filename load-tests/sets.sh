#!/bin/bash
# (docs/benchmarks.md "Release storm": the production sets of stops 45-48.)
# Runs the three storms with every peer, one after the other, N times (a set is one of each),
# each into <outdir>/<set>-<storm>, with the host's steal ticks per storm (it is a shared VM:
# a storm with thousands of ticks was measured on a busy host), then prints the table
# docs/benchmarks.md gives and how many sets met each target (load-tests/sets.py).
# usage: sets.sh <n> <outdir> <release-dir-with-hospital-load> <server-bin>
# e.g. sets.sh 6 /tmp/sets target/release target/production/hospital
N=$1; OUT=$2; R=$3; BIN=$4
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
steal() { awk '/^cpu /{print $9}' /proc/stat; }
for i in $(seq 1 "$N"); do
  for sc in sold-out everyone-wins human-paced; do
    s0=$(steal)
    "$R/hospital-load" storm --scenario "$sc" --server-bin "$BIN" --out "$OUT/$i-$sc" > "$OUT/$i-$sc.log" 2>&1
    rc=$?
    echo "$(date -u +%H:%M:%S) set $i $sc: exit $rc, steal $(( $(steal) - s0 )) ticks" | tee -a "$OUT/sets.log"
  done
done
python3 "$HERE/sets.py" "$OUT"
