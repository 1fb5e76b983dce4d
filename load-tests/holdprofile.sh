#!/bin/bash
# (docs/benchmarks.md "One read per connection and one middleware": the per-component table.)
# Profiles the hospital server over one storm without peers (perf, DWARF call graphs) and
# prints where its CPU went per attempt, grouped by load-tests/holdprofile.py. sold-out also
# measures the /healthz ceiling on the same server after the storm (--ceiling) and prints a
# refusal and a bare request side by side: what a refusal costs beyond /healthz.
# usage: holdprofile.sh <sold-out|everyone-wins|human-paced> <outdir> <release-dir-with-hospital-load> [server-bin]
# Needs perf (Debian: linux-perf). One storm's profile has a couple of thousand samples: compare
# builds over several runs, not one.
SC=$1; OUT=$2; R=$3; BIN=${4:-$R/hospital}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/stormlib.sh"
# What each storm is profiled with: its anchor frame (holdprofile.py: a hold, or a patient's login
# check, which only the booking storm's requests make and whose frame is in every one of its
# stacks that reach it; the booking handler's own frame was in as few as none), and for sold-out the
# ceiling on the same server after the storm. The release comes 3 s after setup (--lead-ms); 7 s
# covers it and the answers; the ceiling's connections open after the read-back and its taps come
# 3 s later: 12 s covers both.
case "$SC" in
  everyone-wins) ANCHOR=ScheduleState::hold; CEILING=(); SECS=7 ;;
  sold-out) ANCHOR=AccountCaller; CEILING=(--ceiling); SECS=12 ;;
  *) ANCHOR=AccountCaller; CEILING=(); SECS=7 ;;
esac
# `--ceiling` means the same to hospital-load (measure it) and to holdprofile.py (group it).
start_storm "$SC" "$OUT" "$R" "$BIN" "${CEILING[@]}"
perf record -F 1999 --call-graph dwarf,32768 -m 1024 -p "$PID" -o "$OUT/perf.data" -- sleep $SECS > /dev/null 2>&1
wait $LP
grep "hospital booking\|hospital /healthz" "$OUT.log" | head -2
perf script -i "$OUT/perf.data" -F comm,tid,time,ip,sym --no-inline 2> /dev/null > "$OUT/perf.txt"
python3 "$HERE/holdprofile.py" "$OUT/perf.txt" "$OUT/figures.json" "$ANCHOR" "${CEILING[@]}"
