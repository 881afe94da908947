"""docs/ARITHMETIC.md agrees with the code where it states numbers the code computes."""

from __future__ import annotations

import re
from pathlib import Path

from int4rt import arith

DOC = (Path(__file__).parents[1] / "docs" / "ARITHMETIC.md").read_text()


def test_accumulator_table_matches_bound():
    section = DOC[DOC.index("### §7.2"):]
    rows = re.findall(r"^\| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$", section, re.M)
    first_table = rows[:32]
    assert len(first_table) == 32
    for wb, ab, k, bound, bits in (map(int, row) for row in first_table):
        assert arith.accumulator_bound(k, wb, ab) == bound, (wb, ab, k)
        assert arith.signed_bits(bound) == bits, (wb, ab, k)


def test_every_cited_section_exists():
    """Each ``§N`` or ``§N.M`` cited in the package (not another document's) is a heading here."""
    headings = set(re.findall(r"^#+ (§\d+(?:\.\d+)?)", DOC, re.M))
    cited = set()
    for path in (Path(__file__).parents[1] / "int4rt").rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"(FORMAT|DECODING|VERIFICATION|CONVERT)\.md,? §[\d.]+(?:[–-][\d.]+)?", "",
                      text)
        cited.update(re.findall(r"§\d+(?:\.\d+)?", text))
    missing = sorted(cited - headings)
    assert not missing, f"sections cited in int4rt/ but absent from ARITHMETIC.md: {missing}"
