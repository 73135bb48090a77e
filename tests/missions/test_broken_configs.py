"""Every broken mission file fails with errors naming file, YAML path and line.

Each file in broken/ states what it must produce in ``# expect: path | line | text``
header lines; the loader must report exactly those issues (and no unrelated ones).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proseo.errors import ConfigError
from proseo.missions import load_mission

BROKEN = sorted((Path(__file__).parent / "broken").glob("*.yaml"))


def expectations(path: Path) -> list[tuple[str, int, str]]:
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("# expect:"):
            where, number, text = (part.strip() for part in line.removeprefix("# expect:").split("|", 2))
            out.append((where, int(number), text))
    return out


def test_there_are_enough_broken_configs() -> None:
    assert len(BROKEN) >= 15
    assert all(expectations(p) for p in BROKEN), "every broken file must declare what it expects"


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_config_is_refused_with_location(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_mission(path)
    issues = info.value.issues
    assert all(issue.file == str(path) for issue in issues)
    for where, line, text in expectations(path):
        matching = [i for i in issues if i.path == where and i.line == line and text in i.message]
        assert matching, f"expected {where} line {line}: {text!r}; got:\n" + "\n".join(map(str, issues))
    # No noise: every reported issue is one the file declares.
    assert len(issues) == len(expectations(path)), "\n".join(map(str, issues))
