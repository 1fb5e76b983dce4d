#!/bin/bash
# Runs every configuration 3 times (interleaved), fresh data dir under /tmp each time.
set -e
cd "$(dirname "$0")"
OUT=${1:-results.txt}
: > "$OUT"
for run in 1 2 3; do
  for bs in 20 100; do
    for e in redb fjall; do
      D=$(mktemp -d /tmp/enginebench.XXXXXX)
      echo "run=$run $(./target/release/enginebench $e $bs $D 10000)" | tee -a "$OUT"
      rm -rf "$D"
    done
  done
done
