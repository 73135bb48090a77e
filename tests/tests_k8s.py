"""Kubernetes manifests checked against the Kubernetes API's models (the client's, generated
from the Kubernetes OpenAPI schema); see tests/deploy/test_kubernetes_manifests.py for what
this catches and what it does not."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client import ApiClient


class _Response:
    """What ApiClient.deserialize reads: a body of JSON text."""

    def __init__(self, data: Any) -> None:
        self.data = json.dumps(data)


def k8s_roundtrip(data: dict[str, Any], kind: str = "V1Pod") -> dict[str, Any]:
    """``data`` read into the model ``kind`` and written back (public ApiClient methods)."""
    client = ApiClient()
    return client.sanitize_for_serialization(client.deserialize(_Response(data), kind))
