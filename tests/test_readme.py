"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_python_example_runs():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_keeps_two_set_up_commands_and_demo_runs_the_default_model():
    root = Path(__file__).parents[1]
    text = (root / "README.md").read_text()
    setup = text.split("## Set-up", 1)[1].split("## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", setup, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block[1].splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    demo = re.search(r"^demo:.*?\n((?:\t.*\n)+)", (root / "Makefile").read_text(), re.M)
    assert demo is not None
    assert "int4rt selftest" in demo[1] and "examples/demo.py" in demo[1]
