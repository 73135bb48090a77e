"""The Dockerfiles, checked without a Docker engine: parsed here and held to the rules.

No engine runs on the development machines, so these tests read each Dockerfile with a
small parser (line continuations, comments, ARG substitution in FROM) and check what
matters for running processors safely: pinned bases, a non-root final USER, the wrapper
as exec-form entry point, one image per processor named in the mission configurations,
and no Airflow in the wrapper image.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests_paths import MISSION_DIR, REPO

DOCKER = REPO / "docker"
WRAPPER_ENTRYPOINT = ["proseo-wrapper"]
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # index of the FROM this belongs to; -1 for global ARGs before the first FROM


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    instructions: tuple[Instruction, ...]
    global_args: dict[str, str]

    def stage(self, index: int = -1) -> list[Instruction]:
        """Instructions of one stage (default: the final one, the image that is shipped)."""
        froms = [i.stage for i in self.instructions if i.keyword == "FROM"]
        wanted = froms[index]
        return [i for i in self.instructions if i.stage == wanted]

    def bases(self) -> list[tuple[str, str, str | None]]:
        """(raw reference, resolved reference, alias) of every FROM."""
        result = []
        for inst in self.instructions:
            if inst.keyword == "FROM":
                tokens = [t for t in inst.arguments.split() if not t.startswith("--")]
                alias = tokens[2] if len(tokens) > 2 and tokens[1].lower() == "as" else None
                result.append((tokens[0], substitute(tokens[0], self.global_args), alias))
        return result

    def final(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.stage() if i.keyword == keyword]


def logical_lines(text: str) -> list[str]:
    """Join continuation lines; drop comments and blank lines (also inside a continuation)."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def substitute(value: str, args: dict[str, str]) -> str:
    """``${NAME}``, ``${NAME:-default}`` and ``$NAME`` as Docker expands them in FROM."""

    def expand(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        return args.get(name) or (match.group(2) or "")

    return _VARIABLE.sub(expand, value)


def parse(text: str, path: Path = Path("Dockerfile")) -> Dockerfile:
    instructions = []
    global_args: dict[str, str] = {}
    stage = -1
    for line in logical_lines(text):
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        elif keyword == "ARG" and stage == -1:
            name, _, default = arguments.strip().partition("=")
            global_args[name] = default.strip().strip('"')
        instructions.append(Instruction(keyword, arguments.strip(), stage))
    return Dockerfile(path, tuple(instructions), global_args)


def load(name: str) -> Dockerfile:
    path = DOCKER / f"Dockerfile.{name}"
    return parse(path.read_text(), path)


def mission_images() -> dict[str, set[str]]:
    """Repository name of every processor image in the mission configs -> its commands."""
    images: dict[str, set[str]] = {}
    for config in sorted(MISSION_DIR.glob("*.yaml")):
        for processor in yaml.safe_load(config.read_text())["processors"].values():
            for version in processor["versions"]:
                if not version.get("image"):  # local facilities need no image
                    continue
                reference = version["image"].split("@")[0]
                repository = reference.rsplit(":", 1)[0] if ":" in reference.rsplit("/", 1)[-1] else reference
                images.setdefault(repository.rsplit("/", 1)[-1], set()).add(version["command"][0])
    return images


PROCESSOR_IMAGES = sorted(mission_images())
ALL = sorted(
    p.name.removeprefix("Dockerfile.") for p in DOCKER.glob("Dockerfile.*") if p.suffix != ".dockerignore"
)


def _user_is_non_root(spec: str) -> bool:
    user = spec.split(":")[0].strip()
    if not user or "$" in user:
        return False
    return int(user) != 0 if user.isdigit() else user != "root"


def _labels(dockerfile: Dockerfile) -> dict[str, str]:
    return dict(t.split("=", 1) for args in dockerfile.final("LABEL") for t in shlex.split(args))


def test_the_parser_joins_continuations_skips_comments_and_expands_args() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=python:3.11.13-slim\n"
        "ARG TAG\n"
        "FROM ${BASE} AS build\n"
        "RUN echo a \\\n"
        "    # a comment inside a continuation\n"
        "\n"
        " && echo b\n"
        "FROM --platform=linux/amd64 registry/${MISSING:-wrapper}:$BASE\n"
        'ENTRYPOINT ["x"]\n'
    )
    dockerfile = parse(text)
    assert [i.keyword for i in dockerfile.instructions] == ["ARG", "ARG", "FROM", "RUN", "FROM", "ENTRYPOINT"]
    assert dockerfile.instructions[3].arguments == "echo a && echo b"
    assert dockerfile.bases() == [
        ("${BASE}", "python:3.11.13-slim", "build"),
        ("registry/${MISSING:-wrapper}:$BASE", "registry/wrapper:python:3.11.13-slim", None),
    ]
    assert dockerfile.final("ENTRYPOINT") == ['["x"]']


def test_every_processor_image_of_the_missions_has_a_dockerfile() -> None:
    assert set(PROCESSOR_IMAGES) == {
        "s5p-l01b",
        "s5p-l2",
        "s5p-l3",
        "sky-calib",
        "sky-coadd",
        "sky-detect",
        "sky-associate",
    }
    for name, commands in mission_images().items():
        assert (DOCKER / f"Dockerfile.{name}").is_file(), f"no docker/Dockerfile.{name}"
        assert {_labels(load(name))["io.proseo.processor.command"]} == commands


@pytest.mark.parametrize("name", ALL)
def test_the_image_runs_as_a_non_root_user(name: str) -> None:
    users = load(name).final("USER")
    assert users, f"Dockerfile.{name}: the final stage sets no USER"
    assert _user_is_non_root(users[-1]), f"Dockerfile.{name}: last USER is {users[-1]!r}"


@pytest.mark.parametrize("name", ["wrapper", *PROCESSOR_IMAGES])
def test_the_entry_point_is_the_wrapper_in_exec_form(name: str) -> None:
    entrypoints = load(name).final("ENTRYPOINT")
    assert entrypoints and entrypoints[-1].startswith("["), "ENTRYPOINT must be in exec (JSON) form"
    assert json.loads(entrypoints[-1]) == WRAPPER_ENTRYPOINT


def test_the_wrapper_base_is_a_pinned_python_311_slim() -> None:
    dockerfile = load("wrapper")
    for raw, resolved, _ in dockerfile.bases():
        assert raw.startswith("$"), "the Python base is set once, by ARG"
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", resolved), resolved
    assert dockerfile.final("WORKDIR") == ["/work"]
    assert any(re.search(r"chown 10001(:10001)? /work", run) for run in dockerfile.final("RUN"))


def test_the_wrapper_image_installs_no_airflow() -> None:
    runs = [i.arguments for i in load("wrapper").instructions if i.keyword == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    assert installs
    for run in installs:
        assert "[airflow]" not in run and "apache-airflow" not in run
        assert re.search(r"proseo-\*\.whl(\s|$)", run), "the wheel is installed without extras"
    assert any('! python -c "import airflow"' in run for run in runs), "the build checks Airflow is absent"


@pytest.mark.parametrize("name", PROCESSOR_IMAGES)
def test_processor_images_build_on_the_wrapper_through_an_arg(name: str) -> None:
    dockerfile, wrapper = load(name), load("wrapper")
    ((raw, resolved, _),) = dockerfile.bases()
    assert raw in ("${WRAPPER_IMAGE}", "$WRAPPER_IMAGE")
    repository, _, tag = resolved.rpartition(":")
    assert repository == "proseo/wrapper" and tag and tag != "latest"
    assert dockerfile.final("USER")[-1] == wrapper.final("USER")[-1]
    assert f"command -v {name}" in dockerfile.final("RUN")


def test_the_airflow_image_is_the_pinned_airflow_with_the_extra() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (pin,) = [
        r.split("==")[1]
        for r in project["optional-dependencies"]["airflow"]
        if r.startswith("apache-airflow==")
    ]
    dockerfile = load("airflow")
    assert dockerfile.bases()[-1][1] == f"apache/airflow:{pin}-python3.11"
    assert dockerfile.final("USER")[-1] in ("50000", "airflow", "50000:0", "airflow:root")
    assert any("pip install" in run and "[airflow]" in run for run in dockerfile.final("RUN"))
    copied = [shlex.split(c)[-2:] for c in dockerfile.final("COPY")]
    assert ["mission_configs/", "/opt/airflow/mission_configs/"] in copied
    assert ["dags/", "/opt/airflow/dags/"] in copied


@pytest.mark.parametrize("name", ALL)
def test_bases_are_never_floating(name: str) -> None:
    stages = set()
    for _, resolved, alias in load(name).bases():
        if resolved not in stages:
            tag = resolved.split("@")[0].rpartition("/")[2].partition(":")[2]
            assert tag and tag != "latest", f"Dockerfile.{name}: base {resolved!r} floats"
        if alias:
            stages.add(alias)


@pytest.mark.parametrize("name", ALL)
def test_copied_files_exist_and_are_in_the_build_context(name: str) -> None:
    ignore = (DOCKER / f"Dockerfile.{name}.dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]
    assert patterns[0] == "*", "the ignore file is an allow-list"
    allowed = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    for copy in (i.arguments for i in load(name).instructions if i.keyword == "COPY"):
        if "--from=" in copy:
            continue
        *sources, _ = [t for t in shlex.split(copy) if not t.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), f"Dockerfile.{name}: COPY {source} does not exist"
            assert any(source.rstrip("/").startswith(a) for a in allowed), f"{source} is outside the context"
