"""Write the REST API's OpenAPI document: ``python -m proseo.api.openapi > docs/openapi.json``.

The live document needs a token (``/proseo/openapi.json``); the copy in ``docs/`` is the
published one, and a test keeps it equal to what the app serves.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def document() -> dict[str, Any]:
    from proseo.api.app import create_app

    spec = create_app(catalog_url="sqlite://", airflow_url="").openapi()
    spec["servers"] = [{"url": "/proseo", "description": "mounted by Airflow's API server"}]
    return spec


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
