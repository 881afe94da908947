"""The converter and training tools install as ``int4rt_convert`` / ``int4rt_train`` (pyproject)."""

from __future__ import annotations

import sys
from pathlib import Path

import int4rt_convert
from int4rt.model.config import BUILTIN_CONFIGS, builtin_config_text, load_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the dev extra installs tomli there
    import tomli as tomllib

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


def test_configs_ship_as_package_data_identical_to_the_checkout():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert list(setuptools["package-data"]) == ["int4rt"]
    assert "configs/*.json" in setuptools["package-data"]["int4rt"]
    shipped = sorted(p.name for p in (ROOT / "int4rt" / "configs").glob("*.json"))
    assert shipped == sorted(p.name for p in (ROOT / "configs").glob("*.json"))
    assert shipped == sorted(f"{name}.json" for name in BUILTIN_CONFIGS)
    for name in BUILTIN_CONFIGS:
        text = (ROOT / "configs" / f"{name}.json").read_text(encoding="utf-8")
        assert builtin_config_text(name) == text, name
        assert load_config(name) == load_config(ROOT / "configs" / f"{name}.json")
