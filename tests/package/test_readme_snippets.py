"""The README's Python snippets run as written and print what they claim.

Teachers copy them; a snippet that drifted from the API would be the first
thing a new user meets."""
import contextlib
import io
import os
import re

import pytest

# tests/package/ -> repo root
README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      "README.md")


def _python_blocks():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_python_block_runs_and_prints_its_comments(index):
    code = _python_blocks()[index]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md python block {index}", "exec"), {})
    printed = out.getvalue().splitlines()
    # Every `print(...)  # value` line must print exactly that value.
    expected = re.findall(r"print\(.*\)\s*#\s*(.+?)\s*$", code, flags=re.M)
    assert printed[:len(expected)] == expected, (printed, expected)


def test_readme_has_python_blocks():
    assert _python_blocks(), "README.md lost its Python example"
