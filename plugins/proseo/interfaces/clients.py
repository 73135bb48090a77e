"""Which client pulls a configured source: ONE mapping from source kind, imported lazily.

A mission file's ``sources`` (:mod:`proseo.missions.sources`) name a kind; :data:`CLIENTS`
maps it to the client function and its source type as ``"module:name"`` strings, so a
scheduled pull never branches on the kind and a module is imported only when a source
of its kind runs. A client is a function ``(catalog, mission, source, progress=None)``
returning a report listing the names of the files it ingested as ``products`` (the
CADIP client's report) or else ``taken`` (the PRIP/AUXIP client's
:class:`~proseo.interfaces.pull.PullReport`); the source type takes ``name``, ``root``,
``username``, ``password``, ``token`` and its kind's own fields (:func:`source_object`).
Adding a kind is one module and one line here.

:func:`run_source` reads the source from the mission's latest revision (so a changed
mission file applies at the next pull), pulls, and returns what arrived per product
class: the product ids systematic production is told about; :func:`arrivals_of` reads
the same from the report a failed pull carries (``exc.report``: what it took before
failing). No Airflow in here.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from proseo.catalog.configs import revision_config_of
from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import get_mission, latest_revision
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_product import Product, ProductFile
from proseo.errors import NotFoundError, ProseoError
from proseo.missions.sources import Credentials, SourceKind, SourceSpec, odata_filter


@dataclass(frozen=True)
class Client:
    function: str  # "module:function" of the pull
    source_type: str  # "module:Class" of its source argument


#: source kind -> its client.
CLIENTS: dict[str, Client] = {
    SourceKind.PRIP.value: Client("proseo.interfaces.pull:pull", "proseo.interfaces.pull:Source"),
    SourceKind.AUXIP.value: Client("proseo.interfaces.pull:pull", "proseo.interfaces.pull:Source"),
    SourceKind.CADIP.value: Client(
        "proseo.interfaces.cadip:pull_sessions", "proseo.interfaces.cadip:CadipSource"
    ),
}


class SourceConfigError(ProseoError):
    """A configured source cannot be pulled as configured; names mission and source."""

    exit_code = 2


@dataclass(frozen=True)
class Secret:
    """Credentials as resolved at run time (never stored, never logged)."""

    username: str | None = None
    password: str | None = None
    token: str | None = None

    def __repr__(self) -> str:  # a task log printing it shows no secret
        return f"Secret(username={self.username!r}, password=***, token=***)"


@dataclass
class Arrivals:
    """What one pull brought: the client's report and the product ids per class that arrived."""

    source: str
    report: Any
    by_class: dict[str, list[int]] = field(default_factory=dict)


def _load(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def env_secret(mission: str, name: str, creds: Credentials) -> Secret:
    """Credentials named as environment variables, read now; a variable not set is an error."""

    def read(var: str | None) -> str | None:
        if var is None:
            return None
        value = os.environ.get(var)
        if not value:
            raise SourceConfigError(
                f"mission {mission}: sources.{name}.credentials: environment variable {var} is not set"
            )
        return value

    return Secret(read(creds.username_env), read(creds.password_env), read(creds.token_env))


def configured_source(catalog: Catalog, mission: str, name: str) -> SourceSpec:
    """The source ``name`` of the mission's latest revision."""
    with catalog.session() as s:
        revision = latest_revision(s, get_mission(s, mission).id)
        sources = revision_config_of(revision).sources if revision is not None else {}
    if name not in sources:
        raise NotFoundError(
            f"mission {mission}: no source {name!r} in its latest revision "
            f"(sources: {', '.join(sorted(sources)) or 'none'})"
        )
    return sources[name]


def source_object(name: str, spec: SourceSpec, secret: Secret) -> Any:
    """The client's source argument: common fields plus the kind's own."""
    client = CLIENTS[spec.kind.value]
    kwargs: dict[str, Any] = {
        "name": name,
        "root": spec.root,
        "username": secret.username,
        "password": secret.password,
        "token": secret.token,
    }
    if spec.kind is SourceKind.CADIP:
        kwargs["satellite"] = spec.satellite
        kwargs["product_type"] = spec.product_types[0] if spec.product_types else None
    else:
        kwargs["filter"] = odata_filter(spec)
        kwargs["timeout"] = spec.timeout.total_seconds()
    return _load(client.source_type)(**kwargs)


def arrived(catalog: Catalog, mission: str, names: list[str]) -> dict[str, list[int]]:
    """Product ids per class of the mission's products with these file names."""
    out: dict[str, set[int]] = {}
    with catalog.session() as s:
        mission_id = get_mission(s, mission).id
        for i in range(0, len(names), 500):
            rows = s.execute(
                select(ProductClass.product_type, Product.id)
                .join(Product, Product.product_class_id == ProductClass.id)
                .join(ProductFile, ProductFile.product_id == Product.id)
                .where(Product.mission_id == mission_id, ProductFile.file_name.in_(names[i : i + 500]))
            )
            for product_type, product_id in rows:
                out.setdefault(product_type, set()).add(product_id)
    return {c: sorted(ids) for c, ids in sorted(out.items())}


def run_source(
    catalog: Catalog,
    mission: str,
    name: str,
    secret: Secret,
    *,
    spec: SourceSpec | None = None,
    progress: Callable[[str], None] | None = None,
) -> Arrivals:
    """Pull source ``name`` of ``mission`` once with its kind's client; what arrived, per class."""
    spec = spec or configured_source(catalog, mission, name)
    pull: Callable[..., Any] = _load(CLIENTS[spec.kind.value].function)
    report = pull(catalog, mission, source_object(name, spec, secret), progress=progress)
    return arrivals_of(catalog, mission, name, report)


def arrivals_of(catalog: Catalog, mission: str, name: str, report: Any) -> Arrivals:
    """What a client's report says arrived, per class (also the report a failed pull carries)."""
    # File names ingested: a CADIP report lists them as ``products`` (its ``taken`` are sessions).
    taken = [str(n) for n in getattr(report, "products", None) or getattr(report, "taken", [])]
    return Arrivals(name, report, arrived(catalog, mission, taken) if taken else {})
