#!/bin/bash
# (docs/benchmarks.md "One read per connection and one middleware": the per-component table.)
# Profiles the hospital server over one storm without peers (perf, DWARF call graphs) and
# prints where its CPU went per attempt, grouped by load-tests/holdprofile.py.
# usage: holdprofile.sh <sold-out|everyone-wins> <outdir> <release-dir-with-hospital-load> [server-bin]
# Needs perf (Debian: linux-perf). One storm's profile has a couple of thousand samples: compare
# builds over several runs, not one.
SC=$1; OUT=$2; R=$3; BIN=${4:-$R/hospital}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/stormlib.sh"
start_storm "$SC" "$OUT" "$R" "$BIN"
# The release comes 3 s after setup (--lead-ms); 7 s covers it and the answers.
perf record -F 1999 --call-graph dwarf,32768 -m 1024 -p "$PID" -o "$OUT/perf.data" -- sleep 7 > /dev/null 2>&1
wait $LP
grep "hospital booking" "$OUT.log" | head -1
perf script -i "$OUT/perf.data" -F comm,tid,time,ip,sym --no-inline 2> /dev/null > "$OUT/perf.txt"
ANCHOR=$([ "$SC" = everyone-wins ] && echo "ScheduleState::hold" || echo "http::booking::book")
python3 "$HERE/holdprofile.py" "$OUT/perf.txt" "$OUT/figures.json" "$ANCHOR"
