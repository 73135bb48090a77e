"""Delivery points a mission pulls from on a schedule: the ``sources`` section of a mission file.

A ground segment's inputs mostly arrive from other centres' interfaces: a PRIP or an
AUXIP (the ICDs' ``Products`` model) or a CADIP (downlink sessions). Each source names
its kind, its OData root, how often it is asked, which products it is asked for (product
classes of the mission, or a raw ``$filter``) and where its credentials are found: an
Airflow connection id or the names of environment variables, read when a pull runs, so
no secret is ever written into a mission file (nor into its revisions in the catalogue).

The model checks what a single source can say about itself;
:func:`check_sources` checks it against the whole file (classes exist and are input
classes, the raw filter parses) with each problem at its YAML path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from proseo.errors import ConfigIssue
from proseo.missions.base import Model, Name
from proseo.missions.types import Duration

if TYPE_CHECKING:
    from proseo.missions.models import MissionConfig

IssueAt = Callable[[Sequence[Any], str], ConfigIssue]

#: Environment variable names (POSIX portable set).
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Airflow connection ids: letters, digits, '_', '-', '.'.
CONN_ID = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
#: The shortest interval a source may be asked at (a DAG run each time).
MIN_INTERVAL = timedelta(seconds=30)


class SourceKind(StrEnum):
    PRIP = "prip"  # Production Interface delivery point (Products)
    AUXIP = "auxip"  # Auxiliary data interface (same Products model)
    CADIP = "cadip"  # CADU interface: downlink sessions and their files


class Credentials(Model):
    """Where a pull finds its credentials at run time: an Airflow connection, or env names.

    ``connection``: an Airflow connection id (login and password: a password grant; a
    password without a login: a bearer token). Otherwise ``username_env`` and
    ``password_env`` (a password grant on the source's ``oauth2/token``) or
    ``token_env`` (a bearer token) name environment variables of the worker.
    """

    connection: str | None = Field(default=None, pattern=CONN_ID, max_length=250)
    username_env: str | None = Field(default=None, pattern=ENV_NAME, max_length=200)
    password_env: str | None = Field(default=None, pattern=ENV_NAME, max_length=200)
    token_env: str | None = Field(default=None, pattern=ENV_NAME, max_length=200)

    @model_validator(mode="after")
    def _one_way(self) -> Credentials:
        env = [self.username_env, self.password_env, self.token_env]
        if self.connection is not None and any(v is not None for v in env):
            raise ValueError("give either 'connection' or environment variable names, not both")
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("'username_env' and 'password_env' go together")
        if self.token_env is not None and self.username_env is not None:
            raise ValueError("give 'token_env' or 'username_env' + 'password_env', not both")
        if self.connection is None and not any(v is not None for v in env):
            raise ValueError("name a 'connection', 'token_env', or 'username_env' and 'password_env'")
        return self


class SourceSpec(Model):
    """One delivery point pulled on a schedule; its name keys its cursor in the catalogue."""

    kind: SourceKind
    url: str = Field(min_length=1, max_length=1000)
    interval: Duration
    product_types: list[Name] = Field(default_factory=list)
    filter: str | None = Field(default=None, min_length=1, max_length=4000)
    satellite: str | None = Field(default=None, min_length=1, max_length=64)  # cadip: e.g. S1A
    credentials: Credentials
    timeout: Duration = timedelta(seconds=60)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if "@" in urlsplit(url).netloc:  # not echoed: the URL would show the password
            raise ValueError(
                "the URL carries a user name or password (user:password@host): give them under "
                "'credentials' (an Airflow connection or environment variable names), never in the URL"
            )
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
            raise ValueError(f"{url!r} is not the http:// or https:// root of an OData service")
        return url

    @property
    def root(self) -> str:
        """The OData root without a trailing slash (the clients append ``/Products`` etc.)."""
        return self.url.rstrip("/")

    @model_validator(mode="after")
    def _fields_of_kind(self) -> SourceSpec:
        if self.interval < MIN_INTERVAL:
            raise ValueError(f"'interval' must be at least {int(MIN_INTERVAL.total_seconds())} s")
        if self.timeout <= timedelta(0):
            raise ValueError("'timeout' must be positive")
        if self.kind is SourceKind.CADIP:
            if self.satellite is None:
                raise ValueError("a cadip source needs 'satellite' (whose sessions it takes, e.g. S1A)")
            if self.filter is not None or len(self.product_types) > 1:
                raise ValueError(
                    "a cadip source takes the sessions of its 'satellite', as at most one class "
                    "('product_types': the L0 class its channels become), not a 'filter'"
                )
        else:
            if self.satellite is not None:
                raise ValueError(f"'satellite' applies only to a cadip source, not to {self.kind.value}")
            if not self.product_types and self.filter is None:
                raise ValueError(
                    f"{'an' if self.kind is SourceKind.AUXIP else 'a'} {self.kind.value} source needs "
                    "'product_types' or a 'filter': "
                    "which of its products to take"
                )
        return self


def type_filter(product_types: Sequence[str]) -> str:
    """The ICD's productType attribute filter for the given classes (``or`` between them)."""
    terms = [
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' "
        f"and att/OData.CSC.StringAttribute/Value eq '{t}')"
        for t in product_types
    ]
    return terms[0] if len(terms) == 1 else " or ".join(f"({t})" for t in terms)


def odata_filter(spec: SourceSpec) -> str:
    """The whole ``$filter`` of a Products source: its classes and its own filter, both must hold."""
    parts = []
    if spec.product_types:
        parts.append(type_filter(spec.product_types))
    if spec.filter is not None:
        parts.append(spec.filter)
    return " and ".join(f"({p})" for p in parts) if len(parts) > 1 else parts[0]


def check_sources(cfg: MissionConfig, issue: IssueAt, out: list[ConfigIssue]) -> None:
    """Classes a source takes exist and are input classes; a raw filter parses (character named)."""
    for name, src in cfg.sources.items():
        for n, ptype in enumerate(src.product_types):
            if ptype not in cfg.product_classes:
                out.append(issue(("sources", name, "product_types", n), f"unknown product class {ptype!r}"))
            elif (maker := cfg.producer_of(ptype)) is not None:
                out.append(
                    issue(
                        ("sources", name, "product_types", n),
                        f"{ptype} is made here (by processor {maker}): a source delivers input classes only",
                    )
                )
        if src.filter is not None:
            from proseo.interfaces.odata_filter import parse_filter  # only files with a filter pay it
            from proseo.interfaces.odata_lexer import ODataError

            try:
                parse_filter(src.filter)
            except ODataError as exc:
                out.append(issue(("sources", name, "filter"), str(exc)))
