"""Mapping files: renaming a checkpoint's tensors to int4rt's reference names.

A mapping file (docs/CONVERT.md §2) is a JSON object::

    {"int4rt_mapping": 1,
     "description": "optional text",
     "rename": [{"from": "encoder.layers.{n}.lstm.{p}_l0{dir}",
                 "to": "encoder.lstm.{p}_l{n}{dir}"}, ...],
     "ignore": ["simple_am_proj.*", ...]}

``{name}`` in ``from`` matches any run of characters without a dot (possibly empty) and is
substituted into ``to``. Rules are tried in order and the first whose ``from`` matches the
whole checkpoint name renames it; a name no rule matches keeps its name. ``ignore`` lists
shell-style patterns (``fnmatch``) of checkpoint tensors to skip.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from int4rt.model.config import JsonObject, strict_json

from .errors import ConvertError

MAPPING_VERSION = 1
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Rule:
    """One ``from`` → ``to`` renaming rule."""

    source: str
    target: str
    pattern: re.Pattern[str]

    def apply(self, name: str) -> str | None:
        """The renamed ``name``, or None when the rule does not match it."""
        match = self.pattern.fullmatch(name)
        if match is None:
            return None
        return _PLACEHOLDER.sub(lambda m: match.group(m.group(1)), self.target)


@dataclass(frozen=True)
class Mapping:
    """Renaming rules and ignore patterns; the default mapping renames nothing."""

    rules: tuple[Rule, ...] = ()
    ignore: tuple[str, ...] = ()
    description: str = ""

    def rename(self, tensors: dict[str, np.ndarray]) -> dict[str, tuple[str, np.ndarray]]:
        """Reference name → (checkpoint name, tensor) of every tensor not ignored."""
        out: dict[str, tuple[str, np.ndarray]] = {}
        for name, value in tensors.items():
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.ignore):
                continue
            target = next((new for new in (rule.apply(name) for rule in self.rules)
                           if new is not None), name)
            if target in out:
                raise ConvertError(f"checkpoint tensors {out[target][0]!r} and {name!r} both map "
                                   f"to {target!r}")
            out[target] = (name, value)
        return out


def compile_rule(source: str, target: str, where: str) -> Rule:
    """A :class:`Rule`; ``where`` names the rule in errors."""
    names = _PLACEHOLDER.findall(source)
    if len(set(names)) != len(names):
        raise ConvertError(f"{where}: a placeholder appears twice in 'from' {source!r}")
    unknown = set(_PLACEHOLDER.findall(target)) - set(names)
    if unknown:
        raise ConvertError(f"{where}: 'to' uses {{{sorted(unknown)[0]}}}, which 'from' lacks")
    parts, last = [], 0
    for match in _PLACEHOLDER.finditer(source):
        parts.append(re.escape(source[last:match.start()]))
        parts.append(f"(?P<{match.group(1)}>[^.]*)")
        last = match.end()
    parts.append(re.escape(source[last:]))
    return Rule(source, target, re.compile("".join(parts)))


def load_mapping(path: str | Path) -> Mapping:
    """Read and check the mapping file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConvertError(f"cannot read mapping file {str(path)!r}: {reason}") from None
    top = JsonObject("", strict_json(text, f"mapping file {str(path)!r}", ConvertError),
                     ConvertError, "mapping")
    top.int("int4rt_mapping", MAPPING_VERSION, MAPPING_VERSION)
    description = top.string("description") if top.has("description") else ""
    rules = []
    if top.has("rename"):
        for entry in top.objects("rename"):
            rules.append(compile_rule(entry.string("from"), entry.string("to"), f"mapping "
                                      f"{entry.name}"))
            entry.done()
    ignore = top.raw("ignore", [])
    if not isinstance(ignore, list) or not all(isinstance(p, str) and p for p in ignore):
        top.fail("ignore", "expected a list of non-empty strings (fnmatch patterns)")
    top.done()
    return Mapping(tuple(rules), tuple(ignore), description)
