"""Checks that the engine's files call each other one way only.

The comment at the top of broker/engine/engine_internal.h lists the
engine's files from the top layer down; each may use a function defined in
a file listed below it, never in one listed above it. This finds every function defined in those files
(the header's inline ones belong to the base, listed last) and every use of
one (a call, or a pointer passed as a callback) in another, and fails on a
use that points up the list.

Run from `make check` (TF_SRCDIR: the source tree), or by hand:
    python3 tests/tools/engine_layers.py [srcdir]
"""
import os
import re
import sys

HEADER = "broker/engine/engine_internal.h"
ENGINE_DIR = "broker/engine"


def layers(srcdir):
    """The engine's files from the top layer down, from the header's
    comment: lines of the form ` *   engine_x.c   what it does`."""
    with open(os.path.join(srcdir, HEADER)) as f:
        text = f.read()
    comment = text[:text.index("*/")]
    order = re.findall(r"^ \*   (engine\w*\.c)\s", comment, re.M)
    if len(order) < 2:
        sys.exit("%s: no list of the engine's layers in its first comment" % HEADER)
    return order


def code_only(text):
    """text without comments, string and character literals (lines kept)."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(\\.|[^"\\\n])*"', '""', text)
    return re.sub(r"'(\\.|[^'\\\n])*'", "''", text)


def functions(code):
    """The functions defined in code: (name, start, end) of each body,
    found as an identifier at the top level followed by a parameter list
    and a brace."""
    found = []
    depth = 0
    for m in re.finditer(r"[A-Za-z_]\w*\s*\(|[{}]", code):
        tok = m.group(0)
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
        elif depth == 0:
            k, parens = m.end() - 1, 0
            while k < len(code):
                parens += {"(": 1, ")": -1}.get(code[k], 0)
                k += 1
                if parens == 0:
                    break
            rest = code[k:]
            if rest.lstrip().startswith("{"):
                start = k + rest.index("{")
                end, braces = start, 0
                while end < len(code):
                    braces += {"{": 1, "}": -1}.get(code[end], 0)
                    end += 1
                    if braces == 0:
                        break
                found.append((tok[:-1].strip(), start, end))
    return found


def uses(code, start, end):
    """Each identifier in code[start:end] that is not a member's name, with
    its line number."""
    for m in re.finditer(r"(\.|->)?\s*\b([A-Za-z_]\w*)", code[start:end]):
        if m.group(1) is None:
            yield m.group(2), code.count("\n", 0, start + m.start(2)) + 1


def main():
    srcdir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "TF_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    order = layers(srcdir)
    rank = {name: len(order) - 1 - i for i, name in enumerate(order)}   # base: 0
    codes, defined_in = {}, {}
    for name in order + [os.path.basename(HEADER)]:
        with open(os.path.join(srcdir, ENGINE_DIR, name)) as f:
            codes[name] = code_only(f.read())
    rank[os.path.basename(HEADER)] = 0   # its inline helpers are the base's
    bodies = {}
    for name, code in codes.items():
        bodies[name] = functions(code)
        for fn, _, _ in bodies[name]:
            defined_in.setdefault(fn, name)
    wrong = []
    for name, code in codes.items():
        for ident, line in (u for _, a, b in bodies[name] for u in uses(code, a, b)):
            home = defined_in.get(ident)
            if home is not None and home != name and rank[home] >= rank[name] \
                    and not (rank[home] == 0 and rank[name] == 0):
                wrong.append("%s/%s:%d: %s uses %s, defined in %s, which is not below it"
                             % (ENGINE_DIR, name, line, name, ident, home))
    for w in sorted(set(wrong)):
        print(w)
    if wrong:
        print("the layers (top down) in %s: %s" % (HEADER, ", ".join(order)))
        return 1
    print("engine layers one way: %s" % " > ".join(order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
