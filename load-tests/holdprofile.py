#!/usr/bin/env python3
"""Groups a storm's server profile (perf script output: comm, tid, time, ip, sym) by component.

The window is the storm's: from the first sample whose stack holds the anchor (a hold, or the
booking handler) for the run's duration (figures.json), so the answers going out are in it.
Each sample goes to the first group its stack matches, in the order below; the shares are scaled
to the run's server CPU per attempt. usage: holdprofile.py perf.txt figures.json anchor
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


def main():
    perf, figures, anchor = sys.argv[1], sys.argv[2], sys.argv[3]
    run = json.load(open(figures))["systems"][0]
    duration, per_attempt = run["duration_s"], run["cpu_us"]["server"]
    all_samples = list(samples(perf))
    starts = [t for t, _, fr in all_samples if any(anchor in f for f in fr)]
    if not starts:
        sys.exit(f"no sample holds {anchor!r}: the storm was not in the profile")
    first = min(starts) - 0.02
    # Without peers the tool stops the server as soon as the storm is read back, which can be
    # inside the storm's measured duration (its last answers wait on the generator): the window
    # ends where the shutdown begins.
    stops = [t for t, _, fr in all_samples if t > first and any(SHUTDOWN in f for f in fr)]
    last = min([first + duration + 0.02] + stops)
    window = [(c, fr) for t, c, fr in all_samples if first <= t <= last]
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
    n = len(window)
    print(f"{n} samples over {duration:.2f} s; server {per_attempt:.0f} µs per attempt")
    for name, k in counts.items():
        print(f"{name:70} {100 * k / n:5.1f} % {per_attempt * k / n:6.1f} µs")


if __name__ == "__main__":
    main()
