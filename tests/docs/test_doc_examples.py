"""The examples of docs/mission-config.md and docs/processor-contract.md, run as written.

A block is an example when an HTML comment ``<!-- doc-example: KIND [ARGS] -->`` precedes
it: complete missions are loaded, fragments are merged into the tutorial mission (or the
sample mission ``base=`` names) and loaded, error examples must give exactly the errors
shown, rules are parsed and the policy table is evaluated, the Job Orders are rendered
from the documented job specification, the example processor runs under the real
wrapper, and the tutorial mission runs end to end against the catalogue (both backends).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import Job, JobStep
from proseo.catalog.register import RunIdentity, register_manifest
from proseo.cli.main import cli
from proseo.errors import ConfigError
from proseo.execution.jobspec import build_job_spec
from proseo.execution.local import run_wrapper
from proseo.missions import load_mission
from proseo.missions.yamlsource import load_yaml
from proseo.planning.lifecycle import rollup_order
from proseo.rules.evaluate import evaluate
from proseo.rules.parser import parse, parse_simple
from proseo.rules.policies import Candidate
from proseo.wrapper.joborder import render_job_order
from proseo.wrapper.spec import JobSpec, Manifest

from tests_paths import MISSION_DIR, REPO

DOCS = REPO / "docs"
MISSION_DOC = DOCS / "mission-config.md"
CONTRACT_DOC = DOCS / "processor-contract.md"
#: Where the documentation installs the tutorial; tests move it under tmp_path.
TUTORIAL = "/tmp/tutorial"
BIN = Path(sys.executable).parent

_MARKER = re.compile(r"<!-- doc-example: (?P<kind>[a-z-]+)(?P<args>[^>]*?)\s*-->")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[a-z]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)


@dataclass(frozen=True)
class Example:
    doc: str
    kind: str
    args: tuple[str, ...]
    line: int
    blocks: tuple[str, ...]  # the fenced block after the marker (error examples: two)
    table: tuple[tuple[str, ...], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def _dedent(body: str, indent: str) -> str:
    return "".join(line.removeprefix(indent) for line in body.splitlines(keepends=True))


def examples(path: Path, *kinds: str) -> list[Example]:
    text = path.read_text(encoding="utf-8")
    found = []
    for marker in _MARKER.finditer(text):
        kind = marker.group("kind")
        if kinds and kind not in kinds:
            continue
        line = text.count("\n", 0, marker.start()) + 1
        if kind == "policy-table":
            rows = []
            for row in text[marker.end() :].lstrip("\n").splitlines():
                if not row.startswith("|"):
                    break
                rows.append(tuple(cell.strip() for cell in row.strip("|").split("|")))
            found.append(Example(path.name, kind, (), line, (), tuple(rows[2:])))
            continue
        blocks, pos = [], marker.end()
        for _ in range(2 if kind == "error" else 1):
            fence = _FENCE.search(text, pos)
            assert fence is not None, f"{path.name}:{line}: no code block after the marker"
            blocks.append(_dedent(fence.group("body"), fence.group("indent")))
            pos = fence.end()
        found.append(Example(path.name, kind, tuple(marker.group("args").split()), line, tuple(blocks)))
    assert found or not kinds, f"{path.name} has no {kinds} examples"
    return found


def one(path: Path, kind: str, *args: str) -> str:
    matches = [e for e in examples(path, kind) if e.args[: len(args)] == args]
    assert len(matches) == 1, (kind, args, matches)
    return matches[0].blocks[0]


# --- links ---------------------------------------------------------------------------------

_LINK = re.compile(r"\]\((?P<file>[A-Za-z0-9_./-]*?)(?:#(?P<anchor>[^)\s]+))?\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, blanks to hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("doc", [MISSION_DOC, CONTRACT_DOC, DOCS / "architecture.md", REPO / "README.md"])
def test_links_between_the_pages_resolve(doc: Path) -> None:
    for link in _LINK.finditer(doc.read_text(encoding="utf-8")):
        name, anchor = link.group("file"), link.group("anchor")
        if name.startswith(("http", "mailto")):
            continue
        target = (doc.parent / name) if name else doc
        assert target.is_file(), f"{doc.name}: link to missing {name}"
        if anchor and target.suffix == ".md":
            assert anchor in _anchors(target), f"{doc.name}: no heading #{anchor} in {target.name}"


# --- missions ------------------------------------------------------------------------------


def _data(text: str) -> Any:
    return load_yaml("example.yaml", text=text, expand_env=False).data


def _merge(base: Any, fragment: Any) -> Any:
    """Mappings merge key by key; anything else (lists, scalars) is replaced."""
    if isinstance(base, dict) and isinstance(fragment, dict):
        out = dict(base)
        for key, value in fragment.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return copy.deepcopy(fragment)


def _base(args: tuple[str, ...]) -> Any:
    named = dict(a.split("=", 1) for a in args if "=" in a).get("base", "tutorial")
    if named == "tutorial":
        return _data(one(MISSION_DOC, "mission", "tutorial"))
    return _data((MISSION_DIR / f"{named}.yaml").read_text())


def _load_merged(example: Example, tmp_path: Path) -> Any:
    merged = _merge(_base(example.args), _data(example.blocks[0]))
    return load_mission(tmp_path / "example.yaml", text=yaml.safe_dump(merged, sort_keys=False))


@pytest.mark.parametrize("example", examples(MISSION_DOC, "mission"), ids=lambda e: e.id)
def test_complete_missions_load(example: Example, tmp_path: Path) -> None:
    loaded = load_mission(tmp_path / "example.yaml", text=example.blocks[0])
    assert loaded.config.product_classes


@pytest.mark.parametrize("example", examples(MISSION_DOC, "fragment"), ids=lambda e: e.id)
def test_fragments_validate(example: Example, tmp_path: Path) -> None:
    loaded = _load_merged(example, tmp_path)
    fragment = _data(example.blocks[0])
    for section in ("product_classes", "processors", "facilities", "sources"):
        assert set(fragment.get(section, {})) <= set(getattr(loaded.config, section))


@pytest.mark.parametrize("example", examples(MISSION_DOC, "error"), ids=lambda e: e.id)
def test_error_examples_give_the_errors_shown(
    example: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUTORIAL_STORE", raising=False)
    with pytest.raises(ConfigError) as caught:
        _load_merged(example, tmp_path)
    got = [f"{issue.path}: {issue.message}" for issue in caught.value.issues]
    assert got == example.blocks[1].strip().splitlines()


def test_cli_output_example() -> None:
    block = one(MISSION_DOC, "cli-output").strip().splitlines()
    command, expected = block[0].removeprefix("$ "), block[1:]
    result = subprocess.run(
        [str(BIN / "proseo"), *shlex.split(command)[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 2
    assert (result.stdout + result.stderr).strip().splitlines() == expected


def test_the_tutorial_reads_delivered_names_as_documented(tmp_path: Path) -> None:
    mission = load_mission(tmp_path / "t.yaml", text=one(MISSION_DOC, "mission", "tutorial"))
    name = "TUT_OPER_RAW_SCAN_A_20250301T060000_20250301T120000_20250301T121500.dat"
    assert mission.classes_matching(name) == ["RAW_SCAN"]
    meta = mission.read_file_name("RAW_SCAN", name)
    assert meta is not None
    assert (meta.file_class, dict(meta.parameters or {})) == ("OPER", {"detector": "A"})
    assert (meta.start.isoformat(), meta.stop.isoformat(), meta.generation.isoformat()) == (  # type: ignore[union-attr]
        "2025-03-01T06:00:00+00:00",
        "2025-03-01T12:00:00+00:00",
        "2025-03-01T12:15:00+00:00",
    )


# --- selection rules ---------------------------------------------------------------------


def test_rule_examples_parse_and_round_trip() -> None:
    for example in examples(MISSION_DOC, "rules"):
        for text in example.blocks[0].strip().splitlines():
            rule = parse(text)
            assert parse(str(rule)) == rule, text


def test_policy_table_is_what_the_policies_select() -> None:
    products = json.loads(one(MISSION_DOC, "products"))
    candidates = {
        "CAL_GAIN": [
            Candidate(
                p["id"],
                datetime.fromisoformat(p["start"]),
                datetime.fromisoformat(p["stop"]),
                datetime.fromisoformat(p["generation_time"]),
            )
            for p in products
        ]
    }
    start, stop = (
        datetime.fromisoformat("2025-03-03T00:00:00Z"),
        datetime.fromisoformat("2025-03-04T00:00:00Z"),
    )
    (table,) = examples(MISSION_DOC, "policy-table")
    assert len(table.table) >= 20
    for chain, selects in table.table:
        rule = parse_simple(f"FOR CAL_GAIN SELECT {chain.strip('`')}")
        selection = evaluate(rule, candidates, start, stop)
        if selects.startswith("nothing"):
            assert not selection.chosen and not selection.satisfied, chain
        else:
            assert selection.satisfied, chain
            assert sorted(map(str, selection.ids)) == sorted(selects.split(", ")), chain


# --- the processor contract --------------------------------------------------------------


def _spec_text(root: Path) -> str:
    return one(CONTRACT_DOC, "spec").replace(TUTORIAL, str(root))


def test_job_order_examples_are_what_the_wrapper_writes() -> None:
    spec = JobSpec.model_validate_json(one(CONTRACT_DOC, "spec"))
    assert render_job_order(spec).decode() == one(CONTRACT_DOC, "joborder", "MMFI_1_8")
    gmes = render_job_order(spec.model_copy(update={"dialect": "GMES_1_1"})).decode()
    conf = one(CONTRACT_DOC, "joborder", "GMES_1_1")
    assert conf in gmes
    mmfi = render_job_order(spec).decode()
    procs = mmfi[mmfi.index("  <List_of_Ipf_Procs") :]
    assert gmes.endswith(procs)


def _install(root: Path) -> None:
    """What the documentation's shell example does, with the tutorial under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tutorial_processor.py").write_text(one(CONTRACT_DOC, "processor"))
    script = one(CONTRACT_DOC, "shell").replace(TUTORIAL, str(root))
    subprocess.run(["bash", "-euc", script], cwd=root, check=True, capture_output=True)


def _wrapper(spec: Path, workdir: Path) -> tuple[int, Manifest, str]:
    done = subprocess.run(
        [str(BIN / "proseo-wrapper"), "run", str(spec), "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=120,
    )
    return done.returncode, Manifest.model_validate_json(done.stdout), done.stderr


def test_the_example_processor_runs_on_the_hand_written_spec(tmp_path: Path) -> None:
    root = tmp_path / "tutorial"
    _install(root)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(_spec_text(root))
    spec = JobSpec.model_validate_json(spec_path.read_text())
    staged = root / "store" / spec.inputs[0].key
    data = staged.read_bytes()
    assert (len(data), hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()) == (
        spec.inputs[0].size,
        spec.inputs[0].md5,
        spec.inputs[0].sha256,
    )
    run_block = one(CONTRACT_DOC, "run-spec").replace(TUTORIAL, str(root))
    assert shlex.split(run_block)[:5] == ["proseo-wrapper", "run", "spec.json", "--workdir", f"{root}/work"]

    code, manifest, stderr = _wrapper(spec_path, root / "work")
    assert (code, manifest.status.value, manifest.stage, manifest.exit_code) == (0, "SUCCESS", "done", 0)
    assert manifest.inputs == [1]
    (product,) = manifest.products
    assert product.metadata["input_count"] == 1
    assert "footprint" not in product.metadata and product.footprint is not None
    assert product.footprint["type"] == "Polygon"
    for line in one(CONTRACT_DOC, "stderr").replace(TUTORIAL, str(root)).strip().splitlines():
        assert line in stderr, line
    assert (root / "store" / "logs/trial/17/processor.log").is_file()

    code, again, stderr = _wrapper(spec_path, root / "work")
    assert code == 0 and again.products == manifest.products
    assert "1 output file(s) already stored with the same bytes" in stderr


@pytest.mark.parametrize(
    ("exit_code", "status", "stage", "reason"),
    [
        (3, "WARNING", "done", "the processor ended with warning exit code 3"),
        (130, "FAILED", "run", "the processor failed with exit code 130"),
    ],
)
def test_the_example_processors_exit_codes(
    tmp_path: Path, exit_code: int, status: str, stage: str, reason: str
) -> None:
    root = tmp_path / "tutorial"
    _install(root)
    spec = json.loads(_spec_text(root))
    spec["dynamic_parameters"]["tutorial_exit_code"] = exit_code
    spec["storages"]["out"] = {"url": f"file://{tmp_path}/out"}
    spec["output_storage"] = "out"
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    code, manifest, _ = _wrapper(tmp_path / "spec.json", root / "work")
    assert (manifest.status.value, manifest.stage, manifest.exit_code, manifest.reason) == (
        status,
        stage,
        exit_code,
        reason,
    )
    assert code == (1 if status == "FAILED" else 0)
    assert bool(manifest.products) is (status != "FAILED")


# --- the tutorial mission, end to end ----------------------------------------------------


def _commands(block: str) -> list[tuple[list[str], str]]:
    """``proseo ...`` commands of a shell block with the output each comment promises."""
    out: list[tuple[list[str], str]] = []
    pending = ""
    for raw in block.splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.startswith("#") and out:
            out[-1] = (out[-1][0], line.lstrip("# ").removesuffix("...").rstrip(", "))
        elif line.startswith("proseo "):
            command, _, comment = line.partition("  #")
            out.append((shlex.split(command)[1:], comment.strip().removesuffix("...").rstrip(", ")))
    return out


def test_the_tutorial_mission_runs_end_to_end(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "tutorial"
    _install(root)  # the processor as $TUTORIAL_HOME/bin/tutorial_processor.py
    monkeypatch.setenv("TUTORIAL_HOME", str(root))
    monkeypatch.setenv("PROSEO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PROSEO_SCRATCH", str(tmp_path / "scratch"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tutorial.yaml").write_text(one(MISSION_DOC, "mission", "tutorial"))
    subprocess.run(["bash", "-euc", one(MISSION_DOC, "deliveries")], cwd=tmp_path, check=True)

    commands = _commands(one(MISSION_DOC, "commands"))
    assert [c[0][:2] for c in commands] == [
        ["mission", "validate"],
        ["mission", "load"],
        ["product", "ingest"],
        ["order", "create"],
    ]
    for args, promised in commands:
        result = CliRunner().invoke(cli, ["--catalog", catalog.url, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert promised in result.output, (args, result.output)

    with catalog.session() as s:
        steps = s.scalars(select(JobStep).order_by(JobStep.depth.desc(), JobStep.id)).all()
        step_ids = [st.id for st in steps]
    assert len(step_ids) == 5

    # The documented way to try one step by hand: spec_of_step.py, then proseo-wrapper.
    script = tmp_path / "spec_of_step.py"
    script.write_text(one(CONTRACT_DOC, "spec-of-step"))
    made = subprocess.run(
        [sys.executable, str(script), str(step_ids[0]), str(tmp_path / "trial")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PROSEO_CATALOG_URL": catalog.url},
    )
    (tmp_path / "spec.json").write_text(made.stdout)
    code, trial, _ = _wrapper(tmp_path / "spec.json", tmp_path / "trial-work")
    assert (code, trial.status.value) == (0, "SUCCESS")
    assert trial.products[0].files[0].url.startswith(f"file://{tmp_path}/trial/L1_SCENE/")

    for step_id in step_ids:  # what each job step's task does, without Airflow
        with catalog.session() as s:
            ctx = build_job_spec(s, step_id)
        assert ctx.spec.processing_station == "local"
        manifest = run_wrapper(ctx, 1)
        assert manifest.status.value == "SUCCESS", (manifest.stage, manifest.reason)
        with catalog.session() as s:
            register_manifest(s, step_id, manifest, run=RunIdentity(task_id=f"step-{step_id}"))
            rollup_order(s, s.scalar(select(Job.order_id).join(JobStep).where(JobStep.id == step_id)))

    shown = CliRunner().invoke(cli, ["--catalog", catalog.url, "order", "show", "-m", "TUT", "day1"])
    assert "COMPLETED" in shown.output and "5 job steps completed" in shown.output, shown.output
    queried = CliRunner().invoke(
        cli,
        [
            "--catalog",
            catalog.url,
            "product",
            "query",
            "--mission",
            "TUT",
            "--class",
            "L2_DAILY",
            "--format",
            "json",
        ],
    )
    (daily,) = json.loads(queried.output)["products"]
    assert daily["parameters"]["input_count"] == 4
    assert daily["footprint"]["type"] == "Polygon" and "footprint" not in daily["parameters"]
