#!/usr/bin/env python3
"""The table docs/benchmarks.md gives for sets of the three storms (load-tests/sets.sh), and how
many sets met each of issue 13's targets, from each storm's figures.json.

usage: sets.py <outdir>   (the storms in <outdir>/<set>-<storm>/)

A row per storm, in the order they ran: the hospital's rate (attempts/s; for everyone-wins,
successful holds/s, the measure of its targets), its ratios to `/healthz`, durable Redis-Lua and
PostgreSQL in the same run, the server's CPU per attempt (booking / `/healthz`) and the booking's
p99. The targets met are the tool's own, as each run's figures.json records them (`targets`,
from the report's `target_checks`: written by hospital-load since stop 48), and every system's
read-back correct. Last, the mean, standard deviation, lowest and highest of each ratio over the
sets.
"""
import glob
import json
import os
import statistics
import sys

STORMS = ("sold-out", "everyone-wins", "human-paced")


def rate(system, storm):
    # Everyone wins: what counts is the holds that succeeded, per second.
    if storm == "everyone-wins":
        return system["ok"] / system["duration_s"]
    return system["attempts_per_s"]


def main():
    out = sys.argv[1]
    runs = []
    for d in glob.glob(os.path.join(out, "*-*")):
        name = os.path.basename(d)
        storm = next((s for s in STORMS if name.endswith("-" + s)), None)
        figures = os.path.join(d, "figures.json")
        if storm and os.path.isfile(figures):
            runs.append((storm, json.load(open(figures))))
    if not runs:
        sys.exit(f"no storm's figures.json under {out}")
    runs.sort(key=lambda r: r[1]["started_at"])
    met = {}
    # storm -> peer -> the ratio of every set, for their mean and spread.
    ratios = {}
    print("| storm, start | booking /s | ÷ /healthz | ÷ durable Redis | ÷ PostgreSQL | server µs: booking / /healthz | p99 ms | read-back |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for storm, f in runs:
        s = {x["system"]: x for x in f["systems"]}
        b = s["hospital booking"]
        ratio = {peer: rate(b, storm) / rate(s[peer], storm) for peer in ("hospital /healthz", "redis durable", "postgres") if peer in s}
        cpu = [s[k]["cpu_us"]["server"] if s.get(k, {}).get("cpu_us") else None for k in ("hospital booking", "hospital /healthz")]
        correct = all(v["ok"] for v in f["verdicts"])
        if "targets" not in f:
            sys.exit(f"{storm} of {f['started_at']}: no targets in its figures.json (a hospital-load before stop 48)")
        checks = [(t["target"], t["met"]) for t in f["targets"]] + [("read-back correct", correct)]
        for target, ok in checks + [("all of the above", all(ok for _, ok in checks))]:
            n = met.setdefault((storm, target), [0, 0])
            n[0] += ok
            n[1] += 1
        for peer, x in ratio.items():
            ratios.setdefault(storm, {}).setdefault(peer, []).append(x)
        cells = [f"{x:.2f}x" if x is not None else "" for x in (ratio.get(p) for p in ("hospital /healthz", "redis durable", "postgres"))]
        cpu_cell = " / ".join(f"{c:.0f}" if c is not None else "-" for c in cpu)
        start = f["started_at"][11:16]
        print(f"| {storm} {start} | {rate(b, storm):,.0f} | {' | '.join(cells)} | {cpu_cell} | {b['p99_ms']:.1f} | {'yes' if correct else 'NO'} |")
    print()
    for (storm, target), (ok, n) in met.items():
        print(f"{storm:14} {target:42} met in {ok} of {n}")
    # Whether a target is met in most sets or nearly all of them is a matter of the ratio's mean
    # and its spread between sets (docs/benchmarks.md, stop 51: "What 'reliably' takes").
    print()
    for storm, by_peer in ratios.items():
        for peer, xs in by_peer.items():
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            print(f"{storm:14} ÷ {peer:18} mean {statistics.mean(xs):.3f}  sd {sd:.3f}  "
                  f"min {min(xs):.3f}  max {max(xs):.3f}  ({len(xs)} sets)")


if __name__ == "__main__":
    main()
