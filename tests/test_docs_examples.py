"""The user guide's examples run and print what the pages say they print.

Every ```python block of ``docs/*.md`` is executed with ``exec`` in a fresh namespace
(no subprocess). When such a block is followed directly by a ```text block, that block
is the block's expected standard output: numbers are compared to the precision they
are printed with (one unit in the last printed digit; integers exactly), everything
else token by token, whitespace ignored. Blocks that import torch are skipped when
PyTorch is not installed.

To see what the blocks print now (after changing an example)::

    python tests/test_docs_examples.py            # every page
    python tests/test_docs_examples.py schedules  # pages whose name contains this
"""

import contextlib
import importlib.util
import io
import math
import pathlib
import re
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?\b(?:nan|inf)\b")
TOKEN = re.compile(NUMBER.pattern + r"|[^\s\d.+-]+|[.+-]")
NEEDS_TORCH = re.compile(r"^\s*(?:import torch|from torch\b)", re.MULTILINE)


def _examples():
    """(page, line, code, expected stdout or None) of every python block."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        blocks = list(FENCE.finditer(text))
        for i, m in enumerate(blocks):
            if m.group(1) != "python":
                continue
            expected = None
            if i + 1 < len(blocks):
                nxt = blocks[i + 1]
                if nxt.group(1) == "text" and text[m.end():nxt.start()].strip() == "":
                    expected = nxt.group(2)
            line = text.count("\n", 0, m.start()) + 2  # first line of code
            found.append((page.name, line, m.group(2), expected))
    return found


def _run(page, line, code):
    """Execute one block in a fresh namespace; return what it printed."""
    buf = io.StringIO()
    namespace = {"__name__": "__docs_example__"}
    with contextlib.redirect_stdout(buf):
        exec(compile(code, f"{DOCS / page}:{line}", "exec"), namespace)  # noqa: S102
    return buf.getvalue()


def _ulp(token):
    """One unit in the last printed digit of a number token (0 for an integer)."""
    mant, _, exp = token.lower().partition("e")
    if "." not in mant and not exp:
        return 0.0
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    return 10.0 ** (int(exp or 0) - decimals)


def _same_number(got, want):
    g, w = float(got), float(want)
    if math.isnan(w):
        return math.isnan(g)
    if math.isinf(w):
        return g == w
    return abs(g - w) <= 1.01 * _ulp(want) + 1e-12 * abs(w)


def _assert_same_output(got, want):
    got_t, want_t = TOKEN.findall(got), TOKEN.findall(want)
    ok = len(got_t) == len(want_t)
    if ok:
        for g, w in zip(got_t, want_t):
            if NUMBER.fullmatch(w) and NUMBER.fullmatch(g):
                ok = _same_number(g, w)
            else:
                ok = g == w
            if not ok:
                break
    assert ok, f"the example printed\n{got}\nbut the page shows\n{want}"


EXAMPLES = _examples()


def test_every_page_has_examples():
    # the maths, the measurements and the contributors' pages hold no user examples
    pages = {p.name for p in DOCS.glob("*.md")} - {
        "semantics.md", "benchmarks.md", "architecture.md", "performance-notes.md"}
    assert pages <= {e[0] for e in EXAMPLES}


def test_relative_links_resolve():
    link = re.compile(r"\]\(([^)#:\s]+\.md)(?:#[^)]*)?\)")
    for page in DOCS.glob("*.md"):
        for target in link.findall(page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"


@pytest.mark.parametrize(
    "page, line, code, expected", EXAMPLES,
    ids=[f"{e[0][:-3]}:{e[1]}" for e in EXAMPLES],
)
def test_docs_example(page, line, code, expected):
    if NEEDS_TORCH.search(code) and importlib.util.find_spec("torch") is None:
        pytest.skip("example needs PyTorch")
    out = _run(page, line, code)
    if expected is not None:
        _assert_same_output(out, expected)


if __name__ == "__main__":  # pragma: no cover - a maintenance helper
    wanted = sys.argv[1] if len(sys.argv) > 1 else ""
    for page, line, code, expected in EXAMPLES:
        if wanted in page:
            print(f"===== {page}:{line}" + ("" if expected is None else " (has output)"))
            print(_run(page, line, code), end="")
