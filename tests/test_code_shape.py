"""The code keeps the shape its architecture page promises (docs/architecture.md).

Functions outside ``fastgd/_kernels/`` stay short enough to read in one screen; the
compiled kernels take a few typed bundles, not dozens of positional arguments.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fastgd"
#: most code lines (docstring, comments and blank lines excluded) of a function outside
#: ``_kernels/``, and of a compiled kernel; most parameters of a compiled kernel
MAX_FUNCTION_LINES = 80
MAX_KERNEL_LINES = 140
MAX_KERNEL_PARAMS = 16
#: decorators that make a compiled kernel
KERNEL_DECORATORS = {"kernel", "njit", "jit", "_dev", "cuda.jit"}


def code_lines(node, source_lines):
    """Lines of ``node`` that hold code: no docstring, comment or blank line."""
    skip = set()
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        skip.update(range(body[0].lineno, body[0].end_lineno + 1))
    count = 0
    for n in range(node.lineno, node.end_lineno + 1):
        text = source_lines[n - 1].strip()
        if n in skip or not text or text.startswith("#"):
            continue
        count += 1
    return count


def _decorator_name(dec):
    if isinstance(dec, ast.Call):
        dec = dec.func
    return ast.unparse(dec)


def functions():
    """(path, function node, is a compiled kernel, source lines) for every function."""
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                compiled = any(_decorator_name(d) in KERNEL_DECORATORS
                               for d in node.decorator_list)
                yield path, node, compiled, lines


def _where(path, node):
    return f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"


def test_functions_outside_the_kernels_are_short():
    long = [f"{_where(p, n)}: {code_lines(n, lines)} lines"
            for p, n, compiled, lines in functions()
            if "_kernels" not in p.parts and code_lines(n, lines) > MAX_FUNCTION_LINES]
    assert not long, "functions longer than 80 code lines:\n" + "\n".join(long)


def test_compiled_kernels_are_short_and_take_few_arguments():
    bad = []
    for p, n, compiled, lines in functions():
        if not compiled:
            continue
        n_params = len(n.args.args) + len(n.args.kwonlyargs)
        if code_lines(n, lines) > MAX_KERNEL_LINES or n_params > MAX_KERNEL_PARAMS:
            bad.append(f"{_where(p, n)}: {code_lines(n, lines)} lines, {n_params} params")
    assert not bad, "kernels over 140 code lines or 16 parameters:\n" + "\n".join(bad)


@pytest.mark.parametrize("source, expected", [
    ('def f(a):\n    """Doc\n    string."""\n    # c\n\n    return a\n', 2),
    ("def f(a):\n    x = 1\n    return x\n", 3),
])
def test_code_lines_counts_code_only(source, expected):
    node = ast.parse(source).body[0]
    assert code_lines(node, source.splitlines()) == expected
