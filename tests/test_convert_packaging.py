"""The converter and training tools install as ``int4rt_convert`` / ``int4rt_train`` (pyproject)."""

from __future__ import annotations

from pathlib import Path

import tomllib

import int4rt_convert

ROOT = Path(__file__).parents[1]


def test_every_package_is_listed_and_the_converter_is_mapped():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for init in (ROOT / "int4rt").rglob("__init__.py")}
    missing = found - set(setuptools["packages"])
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert "int4rt_convert" in setuptools["packages"]
    assert setuptools["package-dir"] == {"int4rt_convert": "tools/convert",
                                         "int4rt_train": "tools/train"}
    assert callable(int4rt_convert.convert)
