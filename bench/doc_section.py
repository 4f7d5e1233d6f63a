"""Replaces one level-2 section of a Markdown file (docs/BENCHMARKS.md), or appends it.

Each bench script imports this from its report step: the section runs from its `## ` heading to
the next level-2 heading or the end of the file; nothing else in the file changes.
"""
import os
import re


def write(path, title, section):
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as out:
        out.write(text)
