#!/usr/bin/env python3
"""A storm's server instructions per attempt against the /healthz ceiling's (instrstorm.sh).

Reads the two callgrind dumps of one `hospital-load storm --callgrind` run (the storm, then the
ceiling), and prints per attempt: the total, each crate's own instructions (a function's self
cost goes to the crate its name starts with; C code to the allocator or libc), and the functions
whose self cost grew most beyond a bare request. usage: instrstorm.py <outdir> [top]
"""
import glob
import json
import re
import subprocess
import sys

LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([\d.]+%\)\s+)?(\S.*)$")


def dump_of(out, phase):
    """The dump whose trigger names `phase`."""
    for f in sorted(glob.glob(f"{out}/callgrind.out.*")):
        with open(f, errors="replace") as fh:
            head = fh.read(4096)
        if re.search(rf"^desc: Trigger: .*{phase}", head, re.M):
            return f
    sys.exit(f"no callgrind dump of {phase} in {out} (see {out}.log)")


def self_costs(path):
    """function -> instructions, and the dump's total."""
    # (--auto=no: no annotated source, whose lines look like the function list's.)
    text = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", "--auto=no", path],
                          capture_output=True, text=True, check=True).stdout
    total, fns, body = None, {}, False
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        rest = m.group(2)
        if "PROGRAM TOTALS" in rest:
            total = n
            continue
        # "file:function [object]": the function, without its file and object.
        fn = re.sub(r"\s+\[[^\]]*\]$", "", rest)
        fn = fn.split(":", 1)[1] if ":" in fn and not fn.startswith("<") and "::" not in fn.split(":", 1)[0] else fn
        fns[fn] = fns.get(fn, 0) + n
        body = True
    if total is None or not body:
        sys.exit(f"callgrind_annotate printed no totals for {path}")
    return total, fns


def crate(fn):
    """The crate (or C library) a function's own instructions belong to: for a trait's method
    on a type of no crate (`<F as axum::handler::Handler<..>>::call`), the trait's."""
    f = fn.lstrip("<&*").replace("mut ", "").replace("dyn ", "")
    if re.match(r"_?mi_", f):
        return "mimalloc"
    head, sep, rest = f.partition(" as ")
    if sep and "::" not in head.split("<", 1)[0]:
        f = rest
    if "::" not in f:
        return "libc and other C"
    return f.split("::", 1)[0]


def attempts(out):
    figures = json.load(open(f"{out}/figures.json"))
    n = {s["system"]: s["attempts"] for s in figures["systems"]}
    return n["hospital booking"], n["hospital /healthz"]


def main():
    out = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    nb, nc = attempts(out)
    tb, fb = self_costs(dump_of(out, "booking"))
    tc, fc = self_costs(dump_of(out, "healthz"))
    print(f"user-space instructions per attempt (callgrind): storm {nb} attempts, /healthz {nc}")
    print(f"{'':44} {'storm':>9} {'/healthz':>9} {'beyond':>9}")
    print(f"{'total':44} {tb / nb:9.0f} {tc / nc:9.0f} {tb / nb - tc / nc:+9.0f}")
    groups = {}
    for fns, n, i in ((fb, nb, 0), (fc, nc, 1)):
        for fn, c in fns.items():
            groups.setdefault(crate(fn), [0.0, 0.0])[i] += c / n
    print("\nby crate (self cost)")
    for g, (b, c) in sorted(groups.items(), key=lambda kv: -max(kv[1])):
        if max(b, c) >= 50:
            print(f"{g[:44]:44} {b:9.0f} {c:9.0f} {b - c:+9.0f}")
    if "sha2" in groups:
        print("(sha2: valgrind's CPU has no SHA extensions, so the token's hash runs sha2's portable code\n"
              " here; natively it takes the SHA-NI instructions where the CPU has them)")
    print(f"\nthe {top} functions whose self cost grew most beyond /healthz")
    diff = {fn: fb.get(fn, 0) / nb - fc.get(fn, 0) / nc for fn in set(fb) | set(fc)}
    for fn, d in sorted(diff.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{d:+9.0f}  {fn[:150]}")


main()
