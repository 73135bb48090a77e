"""``proseo rule eval``: rules against a products file and against the catalogue (both backends)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_product import Product, ProductStatus
from proseo.cli.main import cli
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission

from tests_paths import MISSION_DIR

WINDOW_1 = ["--start", "2025-01-03T00:00:00Z", "--stop", "2025-01-04T00:00:00Z"]
WINDOW_2 = ["--start", "2025-01-05T00:00:00Z", "--stop", "2025-01-06T00:00:00Z"]

# The spec's worked example: A, B, C, D of AUX_X, G = generation order.
EXAMPLE = [
    {"id": "A", "start": "2025-01-01T12:00:00Z", "stop": "2025-01-02T12:00:00Z", "gen": 2},
    {"id": "B", "start": "2025-01-01T18:00:00Z", "stop": "2025-01-02T18:00:00Z", "gen": 3},
    {"id": "C", "start": "2025-01-02T22:00:00Z", "stop": "2025-01-03T22:00:00Z", "gen": 4},
    {"id": "D", "start": "2025-01-01T20:00:00Z", "stop": "2025-01-02T20:00:00Z", "gen": 1},
]


def write_products(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(items))
    return path


@pytest.fixture
def example_file(tmp_path: Path) -> Path:
    items = [
        {
            "id": e["id"],
            "product_type": "AUX_X",
            "start": e["start"],
            "stop": e["stop"],
            "generation_time": f"2025-01-10T0{e['gen']}:00:00Z",
            "parameters": {"orbit": 100 + e["gen"], "band": "g" if e["id"] in "AC" else "r"},
        }
        for e in EXAMPLE
    ]
    return write_products(tmp_path / "products.json", items)


def run(*args: str, url: str | None = None) -> Result:
    prefix = ["--catalog", url] if url else []
    return CliRunner().invoke(cli, [*prefix, "rule", "eval", *args], catch_exceptions=False)


def evaluated(*args: str, url: str | None = None) -> dict[str, Any]:
    result = run(*args, url=url)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


# --- products file --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "window", "satisfied", "selected"),
    [
        ("FOR AUX_X SELECT ValIntersect(0, 0)", WINDOW_1, True, ["C"]),
        ("FOR AUX_X SELECT LatestValidity", WINDOW_1, True, ["C"]),
        ("FOR AUX_X SELECT ValIntersect(12 h, 1 d)", WINDOW_1, True, ["B", "D", "C"]),
        ("FOR AUX_X SELECT LatestValCover(0, 0)", WINDOW_1, False, []),
        ("FOR AUX_X SELECT ValIntersect(0, 0) MANDATORY", WINDOW_2, False, []),
        ("FOR AUX_X SELECT ValIntersect(0, 0) OPTIONAL", WINDOW_2, True, []),
        ("FOR AUX_X SELECT ValIntersect(0, 0) OR LatestValidity", WINDOW_2, True, ["C"]),
    ],
)
def test_the_worked_example_from_a_file(
    example_file: Path, rule: str, window: list[str], satisfied: bool, selected: list[str]
) -> None:
    # Exit code 0 whether or not the rule is satisfied; the JSON says which.
    assert evaluated("--rule", rule, "--products", str(example_file), *window) == {
        "satisfied": satisfied,
        "selected": selected,
    }


def test_filters_on_typed_parameters(example_file: Path) -> None:
    assert evaluated(
        "--rule", "FOR AUX_X/orbit:102 SELECT LastCreated", "--products", str(example_file), *WINDOW_1
    )["selected"] == ["A"]
    band_g = evaluated(
        "--rule", "FOR AUX_X/band:g SELECT ValIntersect(2 d, 0)", "--products", str(example_file), *WINDOW_1
    )
    assert band_g["selected"] == ["A", "C"]


def test_several_simple_rules_must_all_be_satisfied(example_file: Path) -> None:
    both = "FOR AUX_X SELECT ValIntersect(0, 0); FOR AUX_X SELECT LatestValCover(0, 0) OPTIONAL"
    assert evaluated("--rule", both, "--products", str(example_file), *WINDOW_1) == {
        "satisfied": True,
        "selected": ["C"],
    }
    one_fails = "FOR AUX_X SELECT LastCreated; FOR AUX_Y SELECT LastCreated"
    out = evaluated("--rule", one_fails, "--products", str(example_file), *WINDOW_1)
    assert out == {"satisfied": False, "selected": ["C"]}


def test_explain_adds_one_entry_per_simple_rule(example_file: Path) -> None:
    rule = "for AUX_X select ValIntersect(0, 0) or LatestValidity; FOR AUX_Y SELECT LastCreated"
    out = evaluated("--rule", rule, "--products", str(example_file), *WINDOW_2, "--explain")
    assert out["satisfied"] is False and out["selected"] == ["C"]
    first, second = out["explanation"]
    assert first == {
        "rule": "FOR AUX_X SELECT ValIntersect(0 D, 0 D) OR LatestValidity MANDATORY",
        "origin": "--rule#1",
        "satisfied": True,
        "selected": ["C"],
        "coverage": 0.0,
        "why": "AUX_X: chose 1 by LatestValidity (coverage 0%)",
    }
    assert second["origin"] == "--rule#2" and second["satisfied"] is False
    assert second["why"] == "not satisfied: AUX_Y: 0 candidates; LastCreated found 0"


def test_else_falls_back_to_another_class(tmp_path: Path) -> None:
    items = [
        {
            "id": 7,
            "product_type": "L1B_RB",
            "start": "2025-01-03T00:00:00Z",
            "stop": "2025-01-03T01:00:00Z",
            "generation_time": "2025-01-03T02:00:00Z",
            "parameters": {},
        }
    ]
    path = write_products(tmp_path / "p.json", items)
    rule = "FOR L1B_RA SELECT ValIntersect(0, 0) ELSE FOR L1B_RB SELECT ValIntersect(0, 0)"
    assert evaluated("--rule", rule, "--products", str(path), *WINDOW_1) == {
        "satisfied": True,
        "selected": [7],
    }


def test_a_rule_that_does_not_parse_shows_offset_expectation_and_caret(example_file: Path) -> None:
    rule = "FOR AUX_X SELECT LatestValidity(0, 0)"
    result = run("--rule", rule, "--products", str(example_file), *WINDOW_1)
    assert result.exit_code == 2 and result.stdout == ""
    assert "character 31: LatestValidity ignores the window and takes no deltas" in result.stderr
    assert "expected OR or ELSE or MANDATORY" in result.stderr
    lines = result.stderr.splitlines()
    at = lines.index(f"  {rule}")
    assert lines[at + 1] == "  " + " " * 31 + "^"


def test_twelve_h_without_a_blank_is_refused(example_file: Path) -> None:
    result = run(
        "--rule", "FOR AUX_X SELECT ValIntersect(12h, 0)", "--products", str(example_file), *WINDOW_1
    )
    assert result.exit_code == 2 and "character 32: unit 'h' must be separated" in result.stderr


def test_a_delta_of_thousands_of_digits_is_one_clean_error(example_file: Path) -> None:
    rule = "FOR AUX_X SELECT ValIntersect(" + "9" * 5000 + " d, 0)"
    result = run("--rule", rule, "--products", str(example_file), *WINDOW_1)
    assert result.exit_code == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "character 30: a delta of 5000 digits is too large (at most 30)" in result.stderr


def _entry(**changes: Any) -> dict[str, Any]:
    base = {
        "id": 1,
        "product_type": "AUX_X",
        "start": "2025-01-03T00:00:00Z",
        "stop": "2025-01-04T00:00:00Z",
        "generation_time": "2025-01-04T00:00:00Z",
        "parameters": {},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("content", "messages"),
    [
        ([_entry(), _entry(id=2, start="yesterday")], ["[1].start: invalid time 'yesterday'"]),
        ([_entry(generation_time=None)], ["[0].generation_time: Field required"]),
        (
            [_entry(), _entry(id=2), _entry(id=3, product_type="")],
            ["[2].product_type: String should have at least 1"],
        ),
        ([_entry(parameters=[1, 2])], ["[0].parameters: Input should be a valid dictionary"]),
        ([_entry(colour="red")], ["[0].colour: Extra inputs are not permitted"]),
        ([_entry(id=[1])], ["[0].id."]),
        ({"id": 1}, ["(top level): Input should be a valid list"]),
        ([_entry(), _entry()], ["[1].id: 1 is used twice"]),
        ([_entry(stop="2025-01-02T00:00:00Z")], ["[0].stop: validity stops before it starts"]),
        (
            [_entry(start="x", stop="y")],
            [
                "[0].start: invalid time 'x'",
                "[0].stop: invalid time 'y'",
            ],  # every problem, not just the first
        ),
    ],
)
def test_invalid_products_files_name_file_index_and_field(
    tmp_path: Path, content: Any, messages: list[str]
) -> None:
    path = write_products(tmp_path / "bad.json", content)
    result = run("--rule", "FOR AUX_X SELECT LastCreated", "--products", str(path), *WINDOW_1)
    assert result.exit_code == 2, result.output
    for message in messages:
        assert f"{path}: {message}" in result.stderr


def test_a_products_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"id": 1,')
    result = run("--rule", "FOR AUX_X SELECT LastCreated", "--products", str(path), *WINDOW_1)
    assert result.exit_code == 2 and f"{path}: not JSON" in result.stderr
    missing = run(
        "--rule", "FOR AUX_X SELECT LastCreated", "--products", str(tmp_path / "none.json"), *WINDOW_1
    )
    assert missing.exit_code == 2 and "none.json" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rule", "FOR A SELECT LastCreated", *WINDOW_1], "give either --products FILE or --mission M"),
        (["--rule", "FOR A SELECT LastCreated", "--mission", "SKY", *WINDOW_1], "--mission needs --class"),
        (["--products", "x.json", *WINDOW_1], "give --rule, or --mission and --class"),
        (
            [
                "--rule",
                "FOR A SELECT LastCreated",
                "--products",
                "x.json",
                "--start",
                "soon",
                "--stop",
                "later",
            ],
            "invalid time 'soon'",
        ),
        (
            [
                "--rule",
                "FOR A SELECT LastCreated",
                "--products",
                "x.json",
                "--start",
                WINDOW_2[1],
                "--stop",
                WINDOW_1[1],
            ],
            "the window stops before it starts",
        ),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2 and message in result.stderr


# --- catalogue ------------------------------------------------------------------------

T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = ["--start", "2025-03-01T00:00:00Z", "--stop", "2025-03-02T00:00:00Z"]


@pytest.fixture
def sky(catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path) -> str:
    """The SKY sample mission loaded, with one night of delivered inputs ingested."""
    url = catalog.url
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["--catalog", url, "mission", "load", str(MISSION_DIR / "sky.yaml")]).exit_code
        == 0
    )
    write_inputs(load_mission(MISSION_DIR / "sky.yaml"), T0, T0 + timedelta(days=1), tmp_path / "in")
    ingested = runner.invoke(cli, ["--catalog", url, "product", "ingest", "-m", "SKY", str(tmp_path / "in")])
    assert ingested.exit_code == 0, ingested.output + ingested.stderr
    return url


def ids_of(catalog: Catalog, product_type: str, **parameters: Any) -> list[int]:
    with catalog.session() as s:
        rows = s.scalars(
            select(Product)
            .join(ProductClass)
            .where(ProductClass.product_type == product_type)
            .order_by(Product.sensing_start)
        ).all()
        return [p.id for p in rows if all(p.parameters.get(k) == v for k, v in parameters.items())]


def test_a_rule_against_the_catalogue(sky: str, catalog: Catalog) -> None:
    out = evaluated(
        "--mission", "SKY", "--class", "CALEXP_R",
        "--rule", "FOR RAW_EXP/filter:r SELECT ValIntersect(0, 0)",
        "--start", "2025-03-01T10:00:00Z", "--stop", "2025-03-01T12:00:00Z",
        url=sky,
    )  # fmt: skip
    r_ids = ids_of(catalog, "RAW_EXP", filter="r")
    assert out["satisfied"] is True and len(out["selected"]) == 3  # exposures at 10:10, 10:50, 11:30
    assert set(out["selected"]) <= set(r_ids)
    (five,) = ids_of(catalog, "RAW_EXP", exposure_id=5)
    by_int = evaluated(
        "--mission",
        "SKY",
        "--class",
        "CALEXP_G",
        "--rule",
        "FOR RAW_EXP/exposure_id:5 SELECT LastCreated",
        *DAY,
        url=sky,
    )
    assert by_int["selected"] == [five]
    by_attribute = evaluated(
        "--mission", "SKY", "--class", "CALEXP_G",
        "--rule", "FOR RAW_EXP/file_class:OPER,filter:g SELECT ValIntersect(0, 0)", *DAY, url=sky,
    )  # fmt: skip
    assert sorted(by_attribute["selected"]) == sorted(ids_of(catalog, "RAW_EXP", filter="g"))


def test_the_target_class_own_rules_apply_without_rule(sky: str, catalog: Catalog) -> None:
    out = evaluated("--mission", "SKY", "--class", "CALEXP_G", *DAY, "--explain", url=sky)
    assert out["satisfied"] is True
    assert [e["origin"] for e in out["explanation"]] == [f"CALEXP_G.selection_rules[{i}]" for i in range(3)]
    raw, bias, flat = (e["selected"] for e in out["explanation"])
    assert sorted(raw) == sorted(ids_of(catalog, "RAW_EXP", filter="g")) and len(raw) == 15
    assert len(bias) == 1 and len(flat) == 1 and flat[0] in ids_of(catalog, "CAL_FLAT", filter="g")
    assert out["selected"] == raw + bias + flat


def test_only_available_products_are_candidates(sky: str, catalog: Catalog) -> None:
    args = ["--mission", "SKY", "--class", "SRC_CAT", "--rule", "FOR REF_CAT SELECT LastCreated", *DAY]
    assert evaluated(*args, url=sky)["selected"] == ids_of(catalog, "REF_CAT")
    with catalog.session() as s:
        s.execute(
            update(Product)
            .values(status=ProductStatus.EVICTED.value)
            .where(Product.id.in_(ids_of(catalog, "REF_CAT")))
        )
    assert evaluated(*args, url=sky) == {"satisfied": False, "selected": []}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--mission", "NOPE", "--class", "X"], 3, "'NOPE' is not in the catalogue"),
        (["--mission", "SKY", "--class", "NOPE"], 3, "has no product class 'NOPE'"),
        (
            ["--mission", "SKY", "--class", "CALEXP_G", "--rule", "FOR RAW_EXPP SELECT LastCreated"],
            3,
            "'RAW_EXPP' (named by the rule)",
        ),
        (["--mission", "SKY", "--class", "CALEXP_G", "--rule", "FOR RAW_EXP SELECT"], 2, "character 18"),
    ],
)
def test_catalogue_errors(sky: str, args: list[str], code: int, message: str) -> None:
    result = run(*args, *DAY, url=sky)
    assert result.exit_code == code and message in result.stderr


def test_the_mode_scopes_the_class_rules(
    catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path
) -> None:
    url = catalog.url
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["--catalog", url, "mission", "load", str(MISSION_DIR / "s5p.yaml")]).exit_code
        == 0
    )
    s5p = load_mission(MISSION_DIR / "s5p.yaml")
    write_inputs(s5p, T0 - timedelta(days=3), T0 + timedelta(days=2), tmp_path / "in", classes={"AUX_CTMFCT"})
    assert (
        runner.invoke(
            cli, ["--catalog", url, "product", "ingest", "-m", "S5P", str(tmp_path / "in")]
        ).exit_code
        == 0
    )
    window = ["--start", "2025-03-01T00:00:00Z", "--stop", "2025-03-01T01:40:00Z"]

    def ctm(*mode: str) -> dict[str, Any]:
        out = evaluated("--mission", "S5P", "--class", "L2__NO2___", *mode, *window, "--explain", url=url)
        assert out["satisfied"] is False  # no L1B inputs in this catalogue
        (entry,) = [e for e in out["explanation"] if "AUX_CTMFCT" in e["rule"]]
        return entry

    offline, nrti = ctm("--mode", "OFFL"), ctm("--mode", "NRTI")
    assert offline["origin"] == "L2__NO2___.selection_rules[4]" and "LatestValCover" in offline["rule"]
    assert nrti["origin"] == "L2__NO2___.selection_rules[5]"
    assert nrti["rule"] == "FOR AUX_CTMFCT SELECT LatestValidity MANDATORY"
    assert offline["satisfied"] and nrti["satisfied"]
    # The forecast covering the window vs the one with the latest validity start.
    starts = ids_of(catalog, "AUX_CTMFCT")
    assert offline["selected"] == [starts[3]] and nrti["selected"] == [starts[-1]]
    assert ctm()["origin"] == "L2__NO2___.selection_rules[4]"  # no mode: the mode-less rule
