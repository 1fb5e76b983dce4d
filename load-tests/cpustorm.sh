#!/bin/bash
# (docs/benchmarks.md "Release storm": the A/B runs of 2026-11-30 use it.)
# The storm without peers, with the server's CPU seconds from the end of setup to its exit
# (the storm itself plus the tool's read-back), split into the store-writer thread and the rest.
# usage: cpustorm.sh <sold-out|everyone-wins|human-paced> <outdir> <release-dir-with-hospital-load> [server-bin [storm args...]]
# (e.g. `--spread-ms 1000` after the server binary: the storm's other options go to hospital-load.)
# Noisy under load: run A and B alternately, several times each, and give every run.
SC=$1; OUT=$2; R=$3; BIN=${4:-$R/hospital}
shift $(( $# < 4 ? $# : 4 ))
. "$(cd "$(dirname "$0")" && pwd)/stormlib.sh"
start_storm "$SC" "$OUT" "$R" "$BIN" "$@"
# One awk over every thread's files per poll (a `cat` and an `awk` per thread were ~9 % of the two
# cores at this rate): the thread's name from its stat (the field in parentheses, which may hold
# spaces; the server's thread names hold no ')'), and its time on a CPU from its schedstat, in
# nanoseconds (stat's utime and stime are in ticks of 10 ms, and the store writer's share of a
# storm is 15-20 of them: too coarse to compare two builds' writers).
snap() { awk '
  FILENAME ~ /\/stat$/ { d = FILENAME; sub(/\/stat$/, "", d); i = index($0, ") "); comm[d] = substr($0, index($0, "(") + 1, i - index($0, "(") - 1); next }
  { d = FILENAME; sub(/\/schedstat$/, "", d); ns[d] = $1 }
  END { for (d in ns) { if (comm[d] == "store-writer") w += ns[d]; else o += ns[d] }; printf "%.0f %.0f\n", w, o }' /proc/$PID/task/*/stat /proc/$PID/task/*/schedstat 2>/dev/null; }
read w0 o0 <<< "$(snap)"; w1=$w0; o1=$o0
while kill -0 $PID 2>/dev/null; do x=$(snap); if [ -n "$x" ]; then read wx ox <<< "$x"; if [ "$wx" -ge "$w1" ] && [ "$ox" -ge "$o1" ]; then w1=$wx; o1=$ox; fi; fi; sleep 0.05; done
wait $LP
grep "hospital booking" $OUT.log | head -1
echo "server CPU s: writer $(echo "($w1-$w0)/1000000000" | bc -l | cut -c1-6) other $(echo "($o1-$o0)/1000000000" | bc -l | cut -c1-6) load $(cut -d' ' -f1 /proc/loadavg)"
