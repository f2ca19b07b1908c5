#!/usr/bin/env python3
"""Fails when a C++ block of README.md and the example that compiles it have drifted apart.

Every ```cpp block of README.md must appear verbatim in an example under docs/examples/:
either as a whole marked region of some example file,

    // [readme:NAME]
    ...the block...
    // [/readme:NAME]

(compared without leading and trailing blank lines, and without the indentation that all of the
region's lines share, so that a block may sit inside a function body), or, for the examples that
are a README block in full (fan_out.cpp, hello_http.cpp), as consecutive lines anywhere in an
example file. A marked region that no README block matches is listed as a note, not a failure.

usage: readme_blocks_check.py README.md EXAMPLES_DIR
"""
import pathlib
import re
import sys
import textwrap

FENCE = re.compile(r"^```cpp[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
OPEN = re.compile(r"^[ \t]*// \[readme:([A-Za-z0-9_.-]+)\][ \t]*$")
CLOSE = re.compile(r"^[ \t]*// \[/readme:([A-Za-z0-9_.-]+)\][ \t]*$")


def trim(text):
    """Without leading and trailing blank lines, and without trailing whitespace on lines."""
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def readme_blocks(readme):
    """(line number, code) of every ```cpp block."""
    text = readme.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, trim(m.group(1))) for m in FENCE.finditer(text)]


def regions(path, problems):
    """{name: code} of the marked regions of one example file."""
    found = {}
    current = None
    body = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        opened, closed = OPEN.match(line), CLOSE.match(line)
        if opened:
            if current is not None:
                problems.append(f"{path}:{number}: [readme:{opened.group(1)}] inside "
                                f"[readme:{current}]")
            current, body = opened.group(1), []
        elif closed:
            if closed.group(1) != current:
                problems.append(f"{path}:{number}: [/readme:{closed.group(1)}] closes "
                                f"{'nothing' if current is None else '[readme:' + current + ']'}")
            elif current in found:
                problems.append(f"{path}:{number}: a second [readme:{current}] region")
            else:
                found[current] = trim(textwrap.dedent("\n".join(body)))
            current = None
        elif current is not None:
            body.append(line)
    if current is not None:
        problems.append(f"{path}: [readme:{current}] is never closed")
    return found


def contains_lines(haystack, needle):
    """True if the lines of `needle` are consecutive whole lines of `haystack`."""
    return ("\n" + trim(haystack) + "\n").find("\n" + needle + "\n") != -1


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    readme, examples = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    problems = []
    files = sorted(p for p in examples.iterdir() if p.suffix in (".cpp", ".hpp", ".h"))
    marked = {}  # name -> (file, code)
    for path in files:
        for name, code in regions(path, problems).items():
            if name in marked:
                problems.append(f"{path}: [readme:{name}] is also in {marked[name][0]}")
            marked[name] = (path, code)
    blocks = readme_blocks(readme)
    if not blocks:
        problems.append(f"{readme}: no ```cpp block found")
    used = set()
    for line, code in blocks:
        names = [name for name, (_, region) in marked.items() if region == code]
        if names:
            used.update(names)
            print(f"{readme}:{line}: block matches [readme:{names[0]}] in "
                  f"{marked[names[0]][0].name}")
            continue
        whole = [p for p in files if contains_lines(p.read_text(encoding="utf-8"), code)]
        if whole:
            print(f"{readme}:{line}: block is in {whole[0].name}")
            continue
        first = code.split("\n", 1)[0]
        problems.append(f"{readme}:{line}: the ```cpp block starting {first!r} is in no example "
                        f"under {examples} (mark it // [readme:NAME] ... // [/readme:NAME])")
    # Not a failure: a region may be meant for a block still being written, or for another page.
    for name in sorted(set(marked) - used):
        print(f"note: {marked[name][0].name}: [readme:{name}] matches no ```cpp block of "
              f"{readme.name}")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"readme_blocks_check: all {len(blocks)} C++ blocks of {readme.name} are examples")


if __name__ == "__main__":
    main()
