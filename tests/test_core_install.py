"""The core installation: ``pip install proseo`` without extras, as the wrapper image has it.

A fresh virtual environment gets the project's wheel and the core dependencies only, at
the lock's versions, installed offline from uv's cache (which ``make install`` has just
filled). The core dependencies are the closure of the project's requirements without
extras (read from the installed metadata), taken from the lock with their hashes: uv
finds a cached wheel offline by its hash, while a plain pin would need the index
(whose answers ``uv pip sync`` does not cache); ``uv pip check`` then proves the closure
complete. The core commands must
work there against a SQLite catalogue and the sample missions, without Airflow and without
httpx; steering an Airflow run must name the extra to install and change nothing.

Marker ``coreinstall``; about 20-40 s: the venv and wheel take ~2 s, each command the
CLI's start-up (~2-4 s on a busy two-core machine).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from proseo.catalog.schema import head_revision
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission

from tests_paths import MISSION_DIR, REPO

pytestmark = pytest.mark.coreinstall

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)")


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    assert found, "uv is missing: make install puts it into .venv/bin"
    return found


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def core_closure(project: str = "proseo") -> set[str]:
    """The canonical names of every distribution the project needs without extras."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    visited: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(project, frozenset())]
    while todo:
        item = todo.pop()
        if item in visited:
            continue
        visited.add(item)
        name, extras = item
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in reqs:
            req = Requirement(text)
            wanted = ["", *sorted(extras)]
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in wanted):
                todo.append((_canonical(req.name), frozenset(req.extras)))
    return {name for name, _ in visited} - {project}


def core_requirements(lock: Path, out: Path) -> Path:
    """The lock's entries (pin and hashes) of the core closure, as a requirements file."""
    wanted = core_closure()
    blocks: list[str] = []
    lines = lock.read_text().splitlines()
    for i, line in enumerate(lines):
        m = PIN.match(line)
        if not m or _canonical(m[1]) not in wanted:
            continue
        block = [line]
        j = i
        while block[-1].rstrip().endswith("\\") and j + 1 < len(lines):
            j += 1
            block.append(lines[j])
        blocks.append("\n".join(block).rstrip().rstrip("\\"))
    assert len(blocks) > 10, f"{lock}: too few core pins"
    out.write_text("\n".join(blocks) + "\n")
    return out


@dataclass
class CoreEnv:
    bin: Path
    env: dict[str, str]

    def run(
        self, *args: str, check: bool = True, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, f"{' '.join(args)}: {result.stdout}\n{result.stderr}"
        return result

    def proseo(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return self.run("proseo", *args, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def core_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoreEnv]:
    root = tmp_path_factory.mktemp("core")
    uv = _uv()
    quiet = {"capture_output": True, "text": True, "timeout": 300}

    def uv_run(*args: str) -> None:
        result = subprocess.run([uv, *args], **quiet)  # type: ignore[call-overload]
        assert result.returncode == 0, f"uv {' '.join(args)}:\n{result.stdout}\n{result.stderr}"

    # A wheel of the tree as it is now (an install from the directory could reuse a cached build).
    uv_run("build", "--offline", "--quiet", "--wheel", "--out-dir", str(root / "dist"), str(REPO))
    (wheel,) = (root / "dist").glob("proseo-*.whl")
    venv = root / "venv"
    uv_run("venv", "--quiet", "--python", sys.executable, str(venv))
    python = str(venv / "bin" / "python")
    core = core_requirements(REPO / "requirements" / "lock.txt", root / "core.txt")
    uv_run("pip", "install", "--offline", "--quiet", "--no-deps", "--python", python, "-r", str(core))
    uv_run("pip", "install", "--offline", "--quiet", "--no-deps", "--python", python, str(wheel))
    uv_run("pip", "check", "--python", python)  # the closure was complete
    data, scratch = root / "data", root / "scratch"
    data.mkdir()
    scratch.mkdir()
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PROSEO_", "AIRFLOW", "PYTHON", "VIRTUAL_ENV"))
    }
    env = {
        **keep,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "PROSEO_CATALOG_URL": f"sqlite:///{root / 'catalog.db'}",
        "PROSEO_DATA": str(data),
        "PROSEO_SCRATCH": str(scratch),
        "AIRFLOW_HOME": str(root / "airflow-home"),
    }
    yield CoreEnv(venv / "bin", env)


def test_the_core_environment_holds_neither_airflow_nor_the_extras(core_env: CoreEnv) -> None:
    probe = (
        "import importlib.util as u; print([m for m in ('airflow', 'httpx', 'fastapi') if u.find_spec(m)])"
    )
    assert core_env.run("python", "-c", probe).stdout.strip() == "[]"
    assert "proseo-wrapper run" in core_env.run("proseo-wrapper", "--help").stdout


def test_core_commands_work_without_airflow(core_env: CoreEnv, tmp_path: Path) -> None:
    missions = [str(p) for p in sorted(MISSION_DIR.glob("*.yaml"))]
    assert "mission SKY" in core_env.proseo("mission", "validate", *missions).stdout
    assert "migrated" in core_env.proseo("db", "upgrade").stdout
    head = head_revision()
    assert f"{head} (this proseo needs {head})" in core_env.proseo("db", "current").stdout
    assert "SKY: created revision 1" in core_env.proseo("mission", "load", *missions).stdout

    day = datetime(2025, 3, 2, tzinfo=UTC)
    sky = load_mission(MISSION_DIR / "sky.yaml")
    written = write_inputs(sky, day, day + timedelta(days=1), tmp_path / "in")
    ingested = core_env.proseo("product", "ingest", "-m", "SKY", str(tmp_path / "in"))
    assert f"SKY: {len(written)} new" in ingested.stdout

    window = ("--start", "2025-03-02T00:00:00Z", "--stop", "2025-03-03T00:00:00Z")
    query = ("product", "query", "-m", "SKY", "--class", "RAW_EXP", *window, "--format", "json")
    raw = json.loads(core_env.proseo(*query).stdout)["products"]
    assert raw and {p["product_type"] for p in raw} == {"RAW_EXP"}
    # CALEXP_G's own rules; one of them is FOR RAW_EXP/filter:g SELECT ValIntersect(0, 0).
    rule = ("rule", "eval", "-m", "SKY", "--class", "CALEXP_G", *window)
    chosen = json.loads(core_env.proseo(*rule).stdout)
    g_exposures = {p["id"] for p in raw if p["parameters"]["filter"] == "g"}
    assert chosen["satisfied"] is True and g_exposures
    assert g_exposures <= set(chosen["selected"])
    assert not {p["id"] for p in raw} - g_exposures & set(chosen["selected"])
    # Timeliness KPIs: nothing produced yet; with the ingested products, each of them.
    kpi = ("kpi", "timeliness", "-m", "SKY", "--by", "month", "--format", "json")
    assert json.loads(core_env.proseo(*kpi).stdout)["total"] == 0
    assert json.loads(core_env.proseo(*kpi, "--ingested").stdout)["total"] == len(written)

    create = ("order", "create", "-m", "SKY", "--id", "n1", "--class", "SRC_CAT", *window, "--plan")
    assert "planned SKY/n1" in core_env.proseo(*create).stdout
    # Steering the Airflow run needs httpx: the error names the extra, before anything changes.
    airflow = {"PROSEO_AIRFLOW_URL": "http://127.0.0.1:9"}
    refused = core_env.proseo("order", "cancel", "-m", "SKY", "n1", check=False, extra_env=airflow)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "needs the Python package 'httpx'" in refused.stderr
    assert "pip install 'proseo[client]'" in refused.stderr
    # Without PROSEO_AIRFLOW_URL the operation changes the catalogue only; it succeeds, so
    # the refused one above had left the order PLANNED (a cancelled order cannot cancel).
    assert "SKY/n1: FAILED" in core_env.proseo("order", "cancel", "-m", "SKY", "n1").stdout
