#!/usr/bin/env python3
"""Groups a storm's server profile (perf script output: comm, tid, time, ip, sym) by component.

The window is the storm's: from the moment the server got busy before the first sample whose
stack holds the anchor (a hold, or a patient's login check), for the run's duration (figures.json),
so the first requests and the answers going out are in it. Each sample goes to the first group
its stack matches, in the order below; the shares are scaled to the run's server CPU per attempt.
usage: holdprofile.py perf.txt figures.json anchor [--ceiling]
With --ceiling (the storm run with `--ceiling`, so the /healthz ceiling follows it on the same
server), the storm and the ceiling are grouped side by side, with what an attempt costs beyond a
bare request.
"""
import json
import re
import sys

GROUPS = [
    ("store writer thread (fjall batch, journal, fsync)", None),
    ("pipeline task (rows serialised, batch merged, answers released)", r"WritePipeline::start"),
    # A booking without an idempotency key runs these on the request's task (stop 47); a retry,
    # in the account's actor.
    ("the booking's checks (the gate, the person's turn, the real-name rules' read)",
     r"patient::state::book_patient|PatientActor as ractor::actor::Actor>::handle"),
    ("schedule actor (the hold itself)", r"ScheduleActor as ractor::actor::Actor>::handle"),
    ("ractor machinery (mailboxes, calls, name lookups)", r"ractor::"),
    # A thread switched out and back in: at a system call's return when the generator it woke
    # takes the core (the two share it), or parked in epoll_wait or a futex. Before the kernel's
    # groups, whose stacks it is in.
    ("kernel: context switches (preempted at a syscall's return, or parked)", r"finish_task_switch|__schedule\b"),
    ("kernel: connection teardown (shutdown, close, epoll removal)",
     r"__GI___shutdown|__x64_sys_shutdown|__close\b|__x64_sys_close|deregister"),
    ("kernel: sending the answer (with its loopback delivery)", r"__send\b|sys_sendto|__libc_send|tcp_sendmsg"),
    ("kernel: receiving the request", r"__libc_recv|sys_recvfrom"),
    # The bus's tasks are hospital_gateway's too: without this group they counted as HTTP serving.
    ("real-time bus (events logged and fanned out)", r"realtime::bus|realtime::log"),
    ("login check (AccountCaller, the cache)", r"AccountCaller|LoginCache|extract::Caller"),
    ("JSON in and out", r"serde_json|ApiJson"),
    ("HTTP serving: hyper, axum, tower, middleware, the handler and views",
     r"axum::|tower::|tower_http|hyper_util|hyper::|hospital_gateway|serve::"),
    ("tokio (scheduler, poller, timers)", r"tokio::|epoll"),
]


# A frame only the actor tree's shutdown has.
SHUTDOWN = "stop_all_children_and_wait"


def samples(path):
    for block in open(path).read().split("\n\n"):
        lines = block.strip().split("\n")
        if len(lines) < 2:
            continue
        head = lines[0].split()
        frames = [re.sub(r"^\s*[0-9a-f]+ ", "", l.strip()) for l in lines[1:]]
        yield float(head[2].rstrip(":")), head[0], frames


def busy_start(all_samples, anchor, after=0.0):
    """Where the storm holding `anchor` (the first sample after `after` whose stack holds it)
    began: the first 20 ms, within the 0.3 s before that sample and after `after`, in which the
    server's workers took 8 samples or more. (Most of a refusal's samples do not hold its
    handler's frame: the first that does can come a fifth of the storm late, and a window from
    there ran into the set-up of the next storm.)"""
    starts = [t for t, _, fr in all_samples if t > after and any(anchor in f for f in fr)]
    if not starts:
        sys.exit(f"no sample holds {anchor!r}: the storm was not in the profile")
    a = min(starts)
    lo = max(a - 0.3, after)
    busy = sorted(t for t, c, _ in all_samples if lo <= t <= a and c == "tokio-rt-worker")
    return next((t for t in busy if sum(1 for u in busy if t <= u < t + 0.02) >= 8), a) - 0.005


def ceiling_start(all_samples, storm_end):
    """Where the ceiling (measured after the storm on the same server) began. Its handler is too
    small to leave a frame, so: its connections are all accepted before its taps, the storm's
    read-back comes before those, and the first request after the last accept is the ceiling's."""
    accepts = [t for t, _, fr in all_samples if t > storm_end and any("accept4" in f for f in fr)]
    return busy_start(all_samples, "axum::routing::Router", max(accepts, default=storm_end))


def window(all_samples, first, duration):
    """The samples from `first` for `duration`."""
    # Without peers the tool stops the server as soon as the storm is read back, which can be
    # inside the storm's measured duration (its last answers wait on the generator): the window
    # ends where the shutdown begins.
    stops = [t for t, _, fr in all_samples if t > first and any(SHUTDOWN in f for f in fr)]
    last = min([first + duration] + stops)
    return [(c, fr) for t, c, fr in all_samples if first <= t <= last]


def group_counts(window):
    counts = {name: 0 for name, _ in GROUPS}
    counts["other"] = 0
    for comm, frames in window:
        group = "other"
        for name, pattern in GROUPS:
            if pattern is None:
                if comm == "store-writer":
                    group = name
                    break
            elif any(re.search(pattern, f) for f in frames):
                group = name
                break
        counts[group] += 1
    return counts


def main():
    perf, figures, anchor = sys.argv[1], sys.argv[2], sys.argv[3]
    systems = {s["system"]: s for s in json.load(open(figures))["systems"]}
    all_samples = list(samples(perf))
    runs = [("booking", anchor, systems["hospital booking"])]
    if sys.argv[4:] not in ([], ["--ceiling"]):
        sys.exit(__doc__)
    if sys.argv[4:] == ["--ceiling"]:
        if "hospital /healthz" not in systems:
            sys.exit("no /healthz run in figures.json: run the storm with --ceiling")
        runs.append(("/healthz", None, systems["hospital /healthz"]))
    width = max(len(name) for name, _ in GROUPS)
    columns = []
    storm_end = 0.0
    for label, a, run in runs:
        first = busy_start(all_samples, a) if a else ceiling_start(all_samples, storm_end)
        storm_end = first + run["duration_s"]
        w = window(all_samples, first, run["duration_s"])
        per_attempt = run["cpu_us"]["server"]
        counts = group_counts(w)
        print(f"{label}: {len(w)} samples over {run['duration_s']:.2f} s; server {per_attempt:.0f} µs per attempt")
        columns.append({name: per_attempt * k / len(w) for name, k in counts.items()})
    if len(columns) == 1:
        for name, us in columns[0].items():
            print(f"{name:{width}} {100 * us / sum(columns[0].values()):5.1f} % {us:6.1f} µs")
        return
    print(f"{'µs per attempt':{width}} {'booking':>8} {'/healthz':>8} {'beyond':>8}")
    for name in columns[0]:
        b, h = columns[0][name], columns[1][name]
        print(f"{name:{width}} {b:8.1f} {h:8.1f} {b - h:+8.1f}")


if __name__ == "__main__":
    main()
