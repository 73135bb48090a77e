"""Onboarding a new mission from the documentation alone, end to end.

GEO (tests/docs/third_mission/) is a geostationary imager: 15-minute full-disk scans on a
grid anchored at :05, one L1 per scan, an hourly L2 that needs the hour's four L1s
(MINCOVER(100)), a daily L3 over the repeat-cycle day. Everything goes through the
documented commands (`proseo`, `python -m proseo.devtools.dagtest`) against a fresh
catalogue and storage, as docs/mission-config.md and docs/processor-contract.md describe:
validate, load, ingest, an order that starts at :30 (the anchor picks the slices), a
day order that reuses its products, both run by the DAG test helper; then the products,
their lineage and their parameters (the processors' footprint) are checked.
"""

import io
import json
import re
import subprocess
import sys
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "third_mission"
MISSION = HERE / "geo.yaml"
FULL_DISK = {
    "type": "Polygon",
    "coordinates": [[[-81.0, -81.0], [81.0, -81.0], [81.0, 81.0], [-81.0, 81.0], [-81.0, -81.0]]],
}
OUT = ["--output-param", "*.satellite=GEO1"]


class Geo:
    """The shell of a mission engineer: the documented commands with one environment."""

    def __init__(self, tmp_path: Path, catalog_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp_path
        for name, value in {
            "PROSEO_CATALOG_URL": catalog_url,
            "PROSEO_DATA": str(tmp_path / "data"),
            "PROSEO_SCRATCH": str(tmp_path / "scratch"),
            "GEO_HOME": str(HERE),
            # A failing step should fail the test at once, not wait for Airflow's retries.
            "PROSEO_TASK_RETRIES": "0",
            "PROSEO_INPUT_POLL_S": "1",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(ROOT)
        (entry,) = entry_points(group="console_scripts", name="proseo")
        self.main = entry.load()

    def proseo(self, *args: str) -> str:
        """`proseo ARGS` in this process (the console script's own entry point): its stdout."""
        out, err = io.StringIO(), io.StringIO()
        code: int | str | None = 0
        with redirect_stdout(out), redirect_stderr(err), pytest.MonkeyPatch.context() as argv:
            argv.setattr(sys, "argv", ["proseo", *args])
            try:
                self.main()
            except SystemExit as exc:
                code = exc.code
        assert code in (0, None), f"proseo {' '.join(args)}: exit {code}\n{out.getvalue()}{err.getvalue()}"
        return out.getvalue()

    def json(self, *args: str) -> dict:
        return json.loads(self.proseo(*args))

    def products(self, product_class: str) -> list[dict]:
        found = self.json(
            "product", "query", "-m", "GEO", "--class", product_class, "--limit", "1000", "--format", "json"
        )
        assert found["total"] == len(found["products"])
        return found["products"]

    def dagtest(self, order: str) -> dict:
        """Run a released order's DAG with dag.test() (docs/mission-config.md, step 4)."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "proseo.devtools.dagtest",
                "--airflow-home",
                str(self.tmp / "airflow"),
                "--dags",
                "dags",
                f"proseo__GEO__{order}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        assert done.returncode == 0 and lines, f"DAG test helper:\n{done.stdout}\n{done.stderr}"
        return json.loads(lines[-1])


def slice_starts(graph: str, product_class: str) -> list[str]:
    """The `HH:MM` starts of the planned steps of a class in `proseo order graph` text."""
    return re.findall(rf"step-\d+\s+{product_class}\s+\d{{4}}-\d\d-\d\d (\d\d:\d\d)", graph)


@pytest.mark.parametrize(
    "catalog_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_geo_mission_from_the_docs(tmp_path: Path, catalog_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # One backend only: the 121 job steps run by dag.test take about a minute, and the
    # catalogue code paths of both backends are covered by the catalogue tests.
    geo = Geo(tmp_path, catalog_url, monkeypatch)

    # Validate and onboard; loading twice is idempotent.
    assert "ok " in geo.proseo("mission", "validate", str(MISSION))
    geo.proseo("db", "upgrade")
    assert "GEO: created revision 1" in geo.proseo("mission", "load", str(MISSION))
    assert "unchanged" in geo.proseo("mission", "load", str(MISSION))

    # Deliveries for the repeat-cycle day 2025-03-01 00:05 .. 03-02 00:05: 96 scans + 1 table.
    inbox = tmp_path / "inbox"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "make_deliveries.py"),
            str(inbox),
            "2025-03-01T00:05:00Z",
            "2025-03-02T00:05:00Z",
        ],
        check=True,
    )
    assert "GEO: 97 new, 0 unchanged, 0 conflicts, 0 errors" in geo.proseo(
        "product", "ingest", "--mission", "GEO", str(inbox)
    )
    assert "GEO: 0 new, 97 unchanged" in geo.proseo("product", "ingest", "--mission", "GEO", str(inbox))
    (calib,) = geo.products("AUX_CALIB")  # read by file_name_pattern with time_format %Y%m%d
    assert (calib["start"], calib["stop"]) == ("2025-02-25T00:00:00Z", "2025-03-10T00:00:00Z")
    assert calib["parameters"] == {"cal_version": 3}

    # An order from 10:30 to 12:30: the hourly grid anchored at :05 gives 10:05, 11:05, 12:05.
    geo.proseo(
        "order",
        "create",
        "-m",
        "GEO",
        "--id",
        "half-past",
        "--class",
        "L2_CLOUD",
        "--start",
        "2025-03-01T10:30:00Z",
        "--stop",
        "2025-03-01T12:30:00Z",
        *OUT,
        "--plan",
    )
    graph = geo.proseo("order", "graph", "-m", "GEO", "half-past")
    assert slice_starts(graph, "L2_CLOUD") == ["10:05", "11:05", "12:05"]
    assert slice_starts(graph, "L1_FDS") == [
        f"{h}:{m}" for h in ("10", "11", "12") for m in ("05", "20", "35", "50")
    ]
    geo.proseo("order", "release", "-m", "GEO", "half-past")
    summary = geo.dagtest("half-past")
    assert (summary["state"], summary["task_instances"]) == ("success", {"success": 15})
    shown = geo.json("order", "show", "-m", "GEO", "half-past", "--format", "json")
    assert (shown["state"], shown["progress"]) == ("COMPLETED", {"COMPLETED": 15})

    # The day: the three hours made above are reused, the other 21 (and their scans) planned.
    geo.proseo(
        "order",
        "create",
        "-m",
        "GEO",
        "--id",
        "day-0301",
        "--class",
        "L3_DAILY",
        "--start",
        "2025-03-01T00:05:00Z",
        "--stop",
        "2025-03-02T00:05:00Z",
        *OUT,
        "--output-param",
        "L3_DAILY.baseline=B01",
        "--plan",
    )
    plan = geo.json("order", "show", "-m", "GEO", "day-0301", "--format", "json")["plan"]
    assert plan["by_class"] == {"L3_DAILY": 1, "L2_CLOUD": 21, "L1_FDS": 84}
    assert plan["waiting_for_input"] == 0
    graph = geo.proseo("order", "graph", "-m", "GEO", "day-0301")
    assert re.search(r"EXISTING\s+input-L2_CLOUD", graph)
    assert not {"10:05", "11:05", "12:05"} & set(slice_starts(graph, "L2_CLOUD"))
    geo.proseo("order", "release", "-m", "GEO", "day-0301")
    summary = geo.dagtest("day-0301")
    assert (summary["state"], summary["task_instances"]) == ("success", {"success": 106})
    shown = geo.json("order", "show", "-m", "GEO", "day-0301", "--format", "json")
    assert (shown["state"], shown["progress"]) == ("COMPLETED", {"COMPLETED": 106})

    # Every planned product made once: 15 + 106 steps, one product each, no slice twice.
    l1, l2, l3 = geo.products("L1_FDS"), geo.products("L2_CLOUD"), geo.products("L3_DAILY")
    assert (len(l1), len(l2), len(l3)) == (96, 24, 1)
    for made, minutes in ((l1, {5, 20, 35, 50}), (l2, {5})):
        assert len({(p["start"], p["stop"]) for p in made}) == len(made)
        assert {int(p["start"][14:16]) for p in made} == minutes
    (daily,) = l3
    assert (daily["start"], daily["stop"]) == ("2025-03-01T00:05:00Z", "2025-03-02T00:05:00Z")
    assert daily["files"][0]["file_name"].startswith(
        "GEO_OPER_L3_DAILY_GEO1_B01_20250301T000500_20250302T000500_"
    )

    # Parameters: the order's output parameters plus the processors' .meta.json; the footprint
    # reported there is the product's footprint (checked, stored, searchable), not a parameter.
    assert daily["footprint"] == FULL_DISK and "footprint" not in daily["parameters"]
    assert daily["parameters"]["hour_count"] == 24
    assert (daily["parameters"]["satellite"], daily["parameters"]["baseline"]) == ("GEO1", "B01")
    assert all(p["footprint"] == FULL_DISK for p in l1 + l2)
    assert all(p["parameters"]["scan_count"] == 4 for p in l2)
    assert all(p["parameters"]["climatology"] is False for p in l2)  # OPTIONAL input absent
    query = geo.json(
        "product", "query", "-m", "GEO", "--class", "L2_CLOUD", "--param", "scan_count=4", "--format", "json"
    )
    assert query["total"] == 24

    # Lineage: L3 <- 24 L2 <- 4 L1 each <- one scan and the calibration table each.
    lineage = geo.json("product", "lineage", "-m", "GEO", str(daily["id"]), "--format", "json")
    nodes = {n["id"]: n for n in lineage["nodes"]}
    inputs: dict[int, list[dict]] = {}
    for edge in lineage["edges"]:
        inputs.setdefault(edge["product"], []).append(nodes[edge["input"]])
    assert Counter(n["product_type"] for n in nodes.values()) == {
        "L3_DAILY": 1,
        "L2_CLOUD": 24,
        "L1_FDS": 96,
        "RAW_FDS": 96,
        "AUX_CALIB": 1,
    }
    assert {p["id"] for p in inputs[daily["id"]]} == {p["id"] for p in l2}
    for hourly in l2:
        scans = inputs[hourly["id"]]
        assert [s["product_type"] for s in scans] == ["L1_FDS"] * 4
        assert min(s["start"] for s in scans) == hourly["start"]
        assert max(s["stop"] for s in scans) == hourly["stop"]
    for scan in l1:
        raw, cal = sorted(inputs[scan["id"]], key=lambda n: n["product_type"], reverse=True)
        assert (raw["product_type"], raw["start"], raw["stop"]) == ("RAW_FDS", scan["start"], scan["stop"])
        assert (cal["product_type"], cal["id"]) == ("AUX_CALIB", calib["id"])

    # The stored files are the processors' bytes, and every step's log is kept.
    stored = Path(daily["files"][0]["url"].removeprefix("file://"))
    body = json.loads(stored.read_text())
    assert len(body["hourly_cloud_fraction"]) == 24
    logs = list((tmp_path / "data" / "GEO" / "logs").glob("*/*/processor.log"))
    assert len(logs) == 15 + 106
