#!/usr/bin/env python3
"""Module import graph of a Rust crate, and its cycles.

Usage: scripts/modgraph.py [--edges] [--lines] CRATE_SRC_DIR...
       (e.g. scripts/modgraph.py actors/src store/src gateway/src src)

For each crate (a `src` directory with `lib.rs`) it builds the module tree from the `mod`
declarations (every `cfg`, test modules excluded), then an edge A -> B whenever module A names an
item defined in module B: in a `use` (`crate::`, `super::`, `self::`, a child module's name) or
inline in code (`crate::x::Y`, `super::Y`, `child::Y`). A path is resolved to the module that
*defines* the item, following `pub use` re-exports, so a facade (`lib.rs` re-exporting its
modules, a `mod.rs` re-exporting its children) is not counted as a dependency itself: `pub use`
lines make no edges. Then it prints the strongly connected components with more than one module
(the import circles), and with `--lines`, the line count of every file.

Approximate by design (no macro expansion, no type inference), but it reads what a person reads.
"""

import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(src):
    """Removes comments, string and char literals (keeps line structure roughly)."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
            continue
        m = re.match(r'b?r(#*)"', src[i:])
        if m and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            hashes = m.group(1)
            end = src.find('"' + hashes, i + m.end())
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
            continue
        if c == '"' or (c == "b" and src.startswith('b"', i) and (i == 0 or not src[i - 1].isalnum())):
            i += 2 if c == "b" else 1
            while i < n and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
            i += 1
            out.append('""')
            continue
        if c == "'":
            m = re.match(r"'(\\.|\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|[^\\'])'", src[i:])
            if m:
                i += m.end()
                out.append("' '")
                continue
        out.append(c)
        i += 1
    return "".join(out)


def block_end(src, start):
    """Index just after the `}` matching the `{` at or after `start`."""
    i = src.find("{", start)
    depth = 0
    while i < len(src):
        if src[i] == "{":
            depth += 1
        elif src[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(src)


def drop_test_modules(src):
    out, pos = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{", src):
        if m.start() < pos:
            continue
        out.append(src[pos : m.start()])
        pos = block_end(src, m.start())
    out.append(src[pos:])
    return "".join(out)


class Module:
    def __init__(self, path, file):
        self.path = path  # tuple of names, () = crate root
        self.file = file
        self.children = {}  # name -> Module
        self.items = set()
        self.reexports = {}  # name -> absolute path (tuple)
        self.globs = []  # absolute module paths re-exported with *
        self.refs = []  # absolute paths named by this module
        self.src = ""

    @property
    def name(self):
        return "::".join(self.path) or "(root)"


def child_file(parent_file, is_dir_owner, name):
    base = os.path.dirname(parent_file) if is_dir_owner else os.path.splitext(parent_file)[0]
    for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
        if os.path.exists(cand):
            return cand
    return None


def load(root_file):
    modules = {}

    def visit(path, file):
        m = Module(path, file)
        modules[path] = m
        with open(file, encoding="utf-8") as f:
            m.src = drop_test_modules(strip(f.read()))
        owner = path == () or os.path.basename(file) in ("mod.rs", "lib.rs", "main.rs")
        for d in re.finditer(r"(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", m.src):
            f2 = child_file(file, owner, d.group(1))
            if f2:
                m.children[d.group(1)] = visit(path + (d.group(1),), f2)
        return m

    visit((), root_file)
    return modules


def expand_use(tree):
    """`a::{b, c::{d, self}}` -> [[a,b],[a,c,d],[a,c]] (an alias stays glued on as `x@as@y`)."""
    tree = re.sub(r"\s+", "", tree)

    def parse(s):
        # returns list of segment lists
        depth, parts, cur = 0, [], ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        out = []
        for p in parts:
            b = p.find("{")
            if b >= 0:
                prefix = [x for x in p[:b].split("::") if x]
                inner = p[b + 1 : p.rfind("}")]
                for sub in parse(inner):
                    if sub == ["self"]:
                        out.append(prefix)
                    else:
                        out.append(prefix + sub)
            else:
                out.append([x for x in p.split("::") if x])
        return out

    return parse(tree)


def absolute(mod, segs):
    """Absolute path for `segs` named in `mod`, or None if it is another crate's."""
    if not segs:
        return None
    if segs[0] == "crate":
        return tuple(segs[1:])
    if segs[0] in ("self", "super"):
        base = list(mod.path)
        rest = list(segs)
        while rest and rest[0] in ("self", "super"):
            if rest.pop(0) == "super":
                base = base[:-1]
        return tuple(base + rest)
    if segs[0] in mod.children:
        return tuple(mod.path) + tuple(segs)
    return None


def collect(modules):
    for m in modules.values():
        s = m.src
        for d in re.finditer(
            r"(?:pub(?:\([^)]*\))?\s+)?(?:(?:async|unsafe|const|extern\s+\"\")\s+)*(?:fn|struct|enum|trait|type|const|static|union)\s+("
            + IDENT
            + ")",
            s,
        ):
            m.items.add(d.group(1))
        for d in re.finditer(r"macro_rules!\s*(" + IDENT + ")", s):
            m.items.add(d.group(1))
        # use statements
        for u in re.finditer(r"(?:^|[;{}\]\s])(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", s):
            is_pub = bool(u.group(1))
            raw = u.group(2)
            # drop `as Alias` (keeping the alias for re-exports)
            entries = []
            for segs in expand_use(re.sub(r"\s+as\s+", "@as@", raw)):
                alias = None
                if segs and "@as@" in segs[-1]:
                    last, alias = segs[-1].split("@as@")
                    segs = segs[:-1] + [last]
                entries.append((segs, alias))
            for segs, alias in entries:
                a = absolute(m, segs)
                if a is None:
                    continue
                if is_pub:
                    if segs[-1] == "*":
                        m.globs.append(a[:-1])
                    else:
                        m.reexports[alias or segs[-1]] = a
                else:
                    m.refs.append(a[:-1] if segs[-1] == "*" else a)
        # inline paths in code (outside use statements)
        code = re.sub(r"(?:pub(?:\([^)]*\))?\s+)?use\s+[^;]+;", ";", s)
        heads = ["crate", "super", "self"] + list(m.children)
        for p in re.finditer(r"(?<![A-Za-z0-9_:])((?:" + "|".join(heads) + r")(?:::" + IDENT + r")+)", code):
            a = absolute(m, p.group(1).split("::"))
            if a is not None:
                m.refs.append(a)


def resolve(modules, path, seen=None):
    """The module defining what `path` names (a module itself, or the item's module)."""
    seen = seen or set()
    if path in seen:
        return None
    seen.add(path)
    cur = modules[()]
    for i, seg in enumerate(path):
        if seg in cur.children:
            cur = cur.children[seg]
            continue
        if seg in cur.items:
            return cur.path
        if seg in cur.reexports:
            return resolve(modules, cur.reexports[seg] + tuple(path[i + 1 :]), seen)
        for g in cur.globs:
            r = resolve(modules, g + (seg,), seen)
            if r is not None and r != g:
                return r
        return cur.path  # an enum variant, a method, or something unknown: this module
    return cur.path


def graph(modules):
    edges = defaultdict(set)
    for m in modules.values():
        for ref in m.refs:
            t = resolve(modules, ref)
            if t is not None and t != m.path and t in modules:
                edges[m.path].add(t)
    return edges


def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in nodes:
        if v not in index:
            strong(v)
    return [c for c in out if len(c) > 1]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    show_edges = "--edges" in sys.argv
    show_lines = "--lines" in sys.argv
    total_cycles = 0
    for d in args:
        root = os.path.join(d, "lib.rs")
        modules = load(root)
        collect(modules)
        edges = graph(modules)
        comps = sccs(sorted(modules), edges)
        total_cycles += len(comps)
        name = lambda p: "::".join(p) or "(root)"
        print(f"## {d}: {len(modules)} modules, {sum(len(v) for v in edges.values())} edges, {len(comps)} circle(s)")
        for c in comps:
            members = sorted(c)
            inside = [(a, b) for a in members for b in sorted(edges.get(a, ())) if b in c]
            print(f"  circle of {len(c)}: " + ", ".join(name(x) for x in members))
            for a, b in inside:
                print(f"      {name(a)} -> {name(b)}")
        if show_edges:
            for a in sorted(edges):
                print(f"  {name(a)} -> " + ", ".join(name(b) for b in sorted(edges[a])))
        if show_lines:
            for p in sorted(modules, key=lambda p: modules[p].file):
                with open(modules[p].file, encoding="utf-8") as f:
                    print(f"  {sum(1 for _ in f):6d} {modules[p].file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
