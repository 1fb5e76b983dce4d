#!/bin/bash
# (docs/benchmarks.md "Past 10,000": the page faults and resident memory of the 18,000 storm.)
# The storm without peers, with the server's resident memory at the end of set-up and the last
# seen before it exits, and its minor page faults over the storm and read-back: a storm that needs
# more than `pretouch_mib` faults in fresh pages (tens of thousands) where one inside it faults in
# hundreds. Then the server's and the generator's CPU per attempt and the rate, from figures.json.
# usage: memstorm.sh <sold-out|everyone-wins|human-paced> <outdir> <release-dir-with-hospital-load> [server-bin] [storm args...]
#   e.g. memstorm.sh everyone-wins /tmp/m target/release target/release/hospital --patients 18000 --slots 180
SC=$1; OUT=$2; R=$3; BIN=${4:-$R/hospital}
shift 4 2>/dev/null || shift $#
. "$(cd "$(dirname "$0")" && pwd)/stormlib.sh"
start_storm "$SC" "$OUT" "$R" "$BIN" "$@"
# minflt is field 10 of /proc/<pid>/stat (the server's name holds no spaces).
f0=$(awk '{print $10}' /proc/$PID/stat); r0=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
f1=$f0; r1=$r0
while kill -0 $PID 2>/dev/null; do
  x=$(awk '/VmRSS/{print $2}' /proc/$PID/status 2>/dev/null); y=$(awk '{print $10}' /proc/$PID/stat 2>/dev/null)
  if [ -n "$x" ] && [ -n "$y" ]; then r1=$x; f1=$y; fi
  sleep 0.1
done
wait $LP
grep "hospital booking" "$OUT.log" | head -1
echo "VmRSS at set-up ${r0} KiB, last seen ${r1} KiB; minor faults over the storm and read-back $((f1 - f0))"
python3 -c "
import json; s = json.load(open('$OUT/figures.json'))['systems'][0]
print('server µs', round(s['cpu_us']['server']), 'generator µs', round(s['cpu_us']['generator']), 'attempts/s', round(s['attempts_per_s']))"
