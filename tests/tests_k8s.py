"""Kubernetes manifests validated against the Kubernetes API's JSON schema, strictly.

The schemas are the upstream OpenAPI definitions of one Kubernetes release turned into JSON
Schema, as the ``kubernetes-validate`` package ships them (one folder per minor release,
``v1.NN.0-local-strict``: every object has ``additionalProperties: false``). Validation
is jsonschema's Draft 2020-12 with every error reported, plus the integer formats
(``int32``/``int64`` ranges) the schema names.

What it catches: unknown, misspelt or misplaced fields, values of the wrong type, missing
required fields (a container without a name, a pod without containers), integers out of
their format's range, and an ``apiVersion``/``kind`` the release does not serve. What it
cannot: the upstream schema carries no enumerations for pod fields (``restartPolicy:
Sometimes`` passes; only the API server refuses it), no syntax of quantities or names, no
Pod Security admission, and not whether the priority class, taints or namespace exist.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

#: The Kubernetes release the manifests are written for: the API of the Kubernetes Python
#: client the cncf.kubernetes provider builds its pods with (client 36.x = Kubernetes 1.36).
#: tests/deploy/test_kubernetes_schema.py keeps the two agreeing.
KUBERNETES_VERSION = "1.36"

_FORMATS = FormatChecker(formats=())
_FORMATS.checks("int32")(lambda v: not isinstance(v, int) or -(2**31) <= v < 2**31)
_FORMATS.checks("int64")(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**63)


class SchemaMissing(LookupError):
    """The package ships no schema for this release or this apiVersion and kind."""


def _schema_file(version: str, name: str) -> dict[str, Any]:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}.0-local-strict"
    path = folder / name
    if not path.is_file():
        raise SchemaMissing(f"kubernetes-validate: no {name} for Kubernetes {version} ({folder})")
    return json.loads(path.read_text())


@cache
def _validator(version: str, api_version: str, kind: str) -> Draft202012Validator:
    """The strict validator of one kind (definitions shared through a registry, as the schema's
    ``$ref: /api/_definitions.json#/...`` expects)."""
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # apps/v1 -> apps-v1
    schema = _schema_file(version, f"{kind.lower()}-{group}.json")
    definitions = Resource.from_contents(_schema_file(version, "_definitions.json"))
    registry = definitions @ (Resource.from_contents(schema) @ Registry())
    return Draft202012Validator(schema, registry=registry, format_checker=_FORMATS)


def schema_errors(manifest: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    """Every way ``manifest`` breaks its kind's strict schema, as ``path: message`` (empty if
    none)."""
    validator = _validator(version, manifest["apiVersion"], manifest["kind"])
    errors = sorted(validator.iter_errors(manifest), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors]
