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
TCK=$(getconf CLK_TCK)
# One awk over every thread's stat per poll (a `cat` and an `awk` per thread were ~9 % of the two
# cores at this rate). utime and stime are fields 14 and 15, counted from after the `(comm)`
# field, which may hold spaces (the server's thread names hold no ')').
snap() { awk '{i=index($0, ") "); c=substr($0, index($0, "(")+1, i-index($0, "(")-1); n=split(substr($0, i+2), f, " "); if (c=="store-writer") w+=f[12]+f[13]; else o+=f[12]+f[13]} END{print w+0, o+0}' /proc/$PID/task/*/stat 2>/dev/null; }
read w0 o0 <<< "$(snap)"; w1=$w0; o1=$o0
while kill -0 $PID 2>/dev/null; do x=$(snap); if [ -n "$x" ]; then read wx ox <<< "$x"; if [ "$wx" -ge "$w1" ] && [ "$ox" -ge "$o1" ]; then w1=$wx; o1=$ox; fi; fi; sleep 0.05; done
wait $LP
grep "hospital booking" $OUT.log | head -1
echo "server CPU s: writer $(echo "($w1-$w0)/$TCK" | bc -l | cut -c1-5) other $(echo "($o1-$o0)/$TCK" | bc -l | cut -c1-5) load $(cut -d' ' -f1 /proc/loadavg)"
