"""Deployment settings: one typed object, read from ``PROSEO_*`` once per process.

Every component (scheduler, DAG processor, workers, triggerer, API server, CLI, the
wrapper in a pod) reads its deployment settings through :func:`get_settings` instead
of ``os.environ``, so a value is parsed and checked once, a bad one is reported with
its variable name, and the README's table (``docs/settings.md``) lists them all.

Values that belong to a mission (storage roots such as ``${PROSEO_DATA}``) stay in the
mission file's ``${VAR}`` expansion; test- and bench-only switches stay in the tests.
Importing this module imports no Airflow.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from proseo.errors import ProseoError

PREFIX = "PROSEO_"


class SettingsError(ProseoError):
    """A ``PROSEO_*`` variable has a value that cannot be used; names the variable."""

    exit_code = 2


class Settings(BaseSettings):
    """What a deployment sets; each field is the variable ``PROSEO_<FIELD>`` in upper case."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    catalog_url: str | None = Field(
        None,
        description="Catalogue database URL (SQLAlchemy). Default: SQLite `proseo_catalog.db` "
        "in `$AIRFLOW_HOME` (or `~/airflow`).",
    )
    dag_shards: int = Field(
        4,
        ge=1,
        le=1024,
        description="Number of DAG-factory shards; must equal the number of "
        "`dags/proseo_orders_NN.py` files (the factory warns when it does not).",
    )
    task_retries: int = Field(2, ge=0, le=100, description="Airflow retries of every job-step task.")
    task_retry_delay_s: float = Field(60.0, ge=0, description="Seconds between two tries of a job-step task.")
    input_poll_s: float = Field(
        30.0, gt=0, description="Seconds between two catalogue polls of the input trigger."
    )
    odip_poll_s: float = Field(
        15.0,
        ge=1,
        description="Seconds between two looks of the ODIP watcher (in the triggerer) for production-order "
        "notifications owed and orders left queued; the `proseo_odip` DAG runs only when it finds some.",
    )
    systematic: bool = Field(
        True,
        description="Run the missions' triggers (systematic production: the trigger DAGs exist); "
        "off for a deployment that makes only what is ordered (the on-demand demo).",
    )
    trigger_scan_s: float = Field(
        300.0,
        ge=10,
        description="Seconds between two scans of each mission's data triggers for arrivals no Asset "
        "event announced (CLI ingestion) and for settled slices; also how often orbit triggers look.",
    )
    campaign_pass_s: float = Field(
        300.0,
        ge=10,
        description="Seconds between two passes over the running reprocessing campaigns (each pass "
        "releases the next units up to the campaign's window; proseo_campaigns DAG).",
    )
    subscription_max_attempts: int = Field(
        8,
        ge=1,
        le=100,
        description="POSTs of one PRIP subscription notification before it is marked failed "
        "(proseo_subscriptions DAG); retries back off exponentially.",
    )
    subscription_retry_s: float = Field(
        30.0,
        ge=1,
        description="Seconds before the first retry of a notification POST; each further retry "
        "waits twice as long, at most PROSEO_SUBSCRIPTION_RETRY_CAP_S.",
    )
    subscription_retry_cap_s: float = Field(
        3600.0,
        ge=1,
        description="Longest wait between two POSTs of one subscription notification.",
    )
    subscription_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Timeout of one notification POST to a subscriber's endpoint.",
    )
    wrapper_launch: Literal["fork", "exec"] | None = Field(
        None,
        description="How the local backend starts the wrapper: `fork` (default where the OS can) "
        "or `exec` (a fresh `proseo-wrapper` process).",
    )
    scratch: Path | None = Field(
        None, description="Where the wrapper makes its working directory when none is given (pod: /work)."
    )
    airflow_url: str | None = Field(
        None,
        description="Airflow's base URL for steering order runs (suspend, resume, cancel, retry). "
        "The only source of that address: never taken from a request.",
    )
    airflow_token: str | None = Field(None, description="Airflow JWT for the CLI's steering calls.")
    airflow_user: str | None = Field(None, description="Airflow user for the CLI's steering calls.")
    airflow_password: str | None = Field(None, description="Password of `PROSEO_AIRFLOW_USER`.")
    pickup_root: Path | None = Field(
        None,
        description="Root of the pickup directories: each mission's deliveries land in "
        "`<root>/<MISSION CODE>/` and are ingested as they complete (one `proseo_pickup__<MISSION>` "
        "DAG per mission in the catalogue). Unset: no pickup.",
    )
    pickup_settle_s: float = Field(
        30.0,
        ge=0,
        description="Seconds a delivered file's size and modification time must stay unchanged "
        "before it counts as complete (temporary names `*.part`, `*.tmp`, `.*` never do).",
    )
    pickup_poll_s: float = Field(
        10.0, gt=0, description="Seconds between two looks of the pickup trigger into a mission's directory."
    )
    max_request_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="Largest request body the REST API accepts (bytes)."
    )

    @field_validator("catalog_url", "airflow_url", "airflow_token", "airflow_user", "airflow_password")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("wrapper_launch", mode="before")
    @classmethod
    def _launch_case(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @field_validator("scratch", "pickup_root", mode="before")
    @classmethod
    def _empty_path(cls, value: object) -> object:
        return value or None

    def resolved_catalog_url(self) -> str:
        """The catalogue URL: ``catalog_url``, else SQLite next to Airflow's own database."""
        from proseo.catalog.db import normalize_url

        if self.catalog_url:
            return normalize_url(self.catalog_url)
        home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
        return f"sqlite:///{home / 'proseo_catalog.db'}"


def load_settings() -> Settings:
    """Read the environment now (tests, or a process that changed it on purpose)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{PREFIX}{str(e['loc'][0]).upper() if e['loc'] else '?'}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None


@cache
def get_settings() -> Settings:
    """The process's settings, read on first use and kept."""
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment call this)."""
    get_settings.cache_clear()


def _kind(annotation: Any) -> str:
    """A field's type as a reader wants it: ``str``, ``fork or exec``, ``path``, optional marked."""
    args = get_args(annotation)
    if get_origin(annotation) is Literal:
        return " or ".join(f"`{a}`" for a in args)
    if args and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_kind(a) for a in inner) + " (optional)"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def settings_table() -> str:
    """The settings as a Markdown table (docs/settings.md is generated from it)."""
    lines = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        kind = _kind(field.annotation)
        default = "" if field.default is None else f"`{field.default}`"
        lines.append(f"| `{PREFIX}{name.upper()}` | {kind} | {default} | {field.description or ''} |")
    return "\n".join(lines) + "\n"


def settings_doc() -> str:
    """The whole of ``docs/settings.md`` (regenerate: ``python -m proseo.settings > docs/settings.md``)."""
    return (
        "# Deployment settings\n\n"
        "Every proseo process (scheduler, DAG processor, workers, triggerer, API server, CLI, the\n"
        "wrapper in a pod) reads these `PROSEO_*` environment variables once, through\n"
        "`proseo.settings.get_settings()`; a value that does not fit is refused with the\n"
        "variable's name. Generated from `proseo.settings.settings_table()`: regenerate with\n"
        "`python -m proseo.settings > docs/settings.md`.\n\n"
        "Not listed here: variables a mission file expands itself (`${PROSEO_DATA}`, ...),\n"
        "`PROSEO_JOB_SPEC` (how a pod receives its job spec) and `PROSEO_IPF_LOG_TIMESTAMPS`\n"
        "(read by the sample processors, which import nothing of proseo).\n\n" + settings_table()
    )


if __name__ == "__main__":
    print(settings_doc(), end="")
