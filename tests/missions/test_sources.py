"""The ``sources`` section of a mission file: good sources load, bad ones are located errors.

Each case appends a ``sources`` section to the S5P sample and expects the exact issues,
each at its YAML path and the line of the key in the file.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from proseo.errors import ConfigError
from proseo.interfaces.odata_filter import parse_filter
from proseo.missions import load_mission
from proseo.missions.models import dump_config
from proseo.missions.sources import SourceKind, odata_filter

from tests_paths import MISSION_DIR

GOOD = """
sources:
  aux_centre:
    kind: auxip
    url: https://auxip.example.org/odata/v1/
    interval: 10 min
    product_types: [AUX_MET_TP, AUX_CTMFCT]
    credentials: {connection: auxip_centre}
  partner:
    kind: prip
    url: https://prip.example.org/odata/v1
    interval: PT5M
    filter: "startswith(Name,'S5P_OPER_L0__ODB_1_') and ContentLength gt 0"
    credentials: {username_env: PARTNER_USER, password_env: PARTNER_PASSWORD}
  downlink:
    kind: cadip
    url: https://cadip.example.org/odata/v1
    interval: 1 min
    satellite: S5P
    credentials: {token_env: CADIP_TOKEN}
"""


def _write(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "s5p.yaml"
    path.write_text((MISSION_DIR / "s5p.yaml").read_text() + section)
    return path


def _line(path: Path, text: str) -> int:
    """The 1-based line of the last occurrence of ``text`` (the appended section)."""
    lines = path.read_text().splitlines()
    return max(n for n, line in enumerate(lines, 1) if text in line)


def test_good_sources_load_with_their_filters_and_no_secret(tmp_path: Path) -> None:
    cfg = load_mission(_write(tmp_path, GOOD)).config
    aux, partner, downlink = (cfg.sources[n] for n in ("aux_centre", "partner", "downlink"))
    assert aux.kind is SourceKind.AUXIP and aux.interval == timedelta(minutes=10)
    assert aux.root == "https://auxip.example.org/odata/v1"
    assert partner.interval == timedelta(minutes=5) and downlink.satellite == "S5P"
    # The classes become the ICD's productType filter; it parses like any client's.
    both = odata_filter(aux)
    assert "Value eq 'AUX_MET_TP'" in both and "Value eq 'AUX_CTMFCT'" in both
    parse_filter(both)
    assert odata_filter(partner) == partner.filter
    stored = dump_config(cfg)["sources"]
    assert stored["partner"]["credentials"] == {
        "connection": None,
        "username_env": "PARTNER_USER",
        "password_env": "PARTNER_PASSWORD",
        "token_env": None,
    }


def test_a_file_without_sources_keeps_its_digest(tmp_path: Path) -> None:
    plain = load_mission(MISSION_DIR / "s5p.yaml")
    assert "sources" not in dump_config(plain.config)
    assert load_mission(_write(tmp_path, "\nsources: {}\n")).digest == plain.digest


BAD = [
    (
        """
sources:
  partner:
    kind: prip
    url: https://prip.example.org/odata/v1
    interval: 5 min
    product_types: [L0__ODB_1_, L2__NO2___, NOPE]
    filter: "ContentLength gt 0 and Name eq 'x"
    credentials: {connection: partner}
""",
        [
            ("sources.partner.product_types[1]", "product_types:", "L2__NO2___ is made here (by processor"),
            ("sources.partner.product_types[2]", "product_types:", "unknown product class 'NOPE'"),
            (
                "sources.partner.filter",
                "filter:",
                '$filter: character 31 ("\'"): string literal is not closed',
            ),
        ],
    ),
    (
        """
sources:
  partner:
    kind: prip
    url: ftp://prip.example.org/
    interval: 5 min
    password: secret
    credentials: {username_env: PARTNER_USER}
""",
        [
            ("sources.partner.url", "url:", "'ftp://prip.example.org/' is not the http:// or https:// root"),
            ("sources.partner.password", "password:", "unknown key 'password'"),
            ("sources.partner.credentials", "credentials:", "'username_env' and 'password_env' go together"),
        ],
    ),
    (
        """
sources:
  partner:
    kind: prip
    url: https://reader:s3cret@prip.example.org/odata/v1
    interval: 5 min
    product_types: [L0__ODB_1_]
    credentials: {connection: partner}
""",
        [
            (
                "sources.partner.url",
                "url: https://reader:s3cret@",
                "the URL carries a user name or password (user:password@host): give them under 'credentials'",
            ),
        ],
    ),
    (
        """
sources:
  often:
    kind: auxip
    url: http://auxip.example.org
    interval: 10 s
    product_types: [AUX_MET_TP]
    credentials: {token_env: TOKEN}
  what:
    kind: auxip
    url: http://auxip.example.org
    interval: 1 h
    credentials: {connection: c, token_env: TOKEN}
  downlink:
    kind: cadip
    url: http://cadip.example.org
    interval: 1 min
    product_types: [AUX_MET_TP]
    credentials: {token_env: bad-name}
""",
        [
            ("sources.often", "often:", "'interval' must be at least 30 s"),
            ("sources.what.credentials", "credentials: {connection: c", "give either 'connection' or"),
            (
                "sources.downlink.credentials.token_env",
                "credentials: {token_env: bad",
                "should match pattern",
            ),
        ],
    ),
    (
        """
sources:
  what:
    kind: auxip
    url: http://auxip.example.org
    interval: 1 h
    credentials: {connection: c}
  downlink:
    kind: cadip
    url: http://cadip.example.org
    interval: 1 min
    product_types: [AUX_MET_TP]
    credentials: {token_env: T}
  twice:
    kind: prip
    url: http://a.example.org
    interval: 1 h
    filter: "true"
    credentials: {token_env: T}
  twice:
    kind: prip
    url: http://b.example.org
    interval: 1 h
    filter: "true"
    credentials: {token_env: T}
""",
        [
            ("sources.twice", "  twice:", "duplicate key"),
        ],
    ),
    (
        """
sources:
  what:
    kind: auxip
    url: http://auxip.example.org
    interval: 1 h
    credentials: {connection: c}
  downlink:
    kind: cadip
    url: http://cadip.example.org
    interval: 1 min
    product_types: [AUX_MET_TP]
    credentials: {token_env: T}
""",
        [
            ("sources.what", "what:", "an auxip source needs 'product_types' or a 'filter'"),
            ("sources.downlink", "downlink:", "needs 'satellite'"),
        ],
    ),
    (
        """
sources:
  downlink:
    kind: cadip
    url: http://cadip.example.org
    interval: 1 min
    satellite: S5P
    product_types: [L0__ODB_1_, L0__ODB_2_]
    credentials: {token_env: T}
""",
        [("sources.downlink", "downlink:", "at most one class")],
    ),
]


@pytest.mark.parametrize(
    "section, expected",
    BAD,
    ids=["crossref", "fields", "userinfo", "limits", "names", "kinds", "cadip-class"],
)
def test_bad_sources_are_located_errors(
    tmp_path: Path, section: str, expected: list[tuple[str, str, str]]
) -> None:
    path = _write(tmp_path, section)
    with pytest.raises(ConfigError) as info:
        load_mission(path)
    issues = info.value.issues
    report = "\n".join(map(str, issues))
    for where, key_text, message in expected:
        line = _line(path, key_text)
        assert [i for i in issues if i.path == where and i.line == line and message in i.message], (
            f"expected {where} line {line}: {message!r}; got:\n{report}"
        )
    assert len(issues) == len(expected), report


def test_a_password_in_the_url_is_refused_and_not_repeated(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD[2][0])
    with pytest.raises(ConfigError) as info:
        load_mission(path)
    assert "s3cret" not in str(info.value) and "sources.partner.url" in str(info.value)
