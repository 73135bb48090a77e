"""The PRIP's service document, $metadata, OAuth2 token route and downloads (Products(<Id>)/$value).

Tokens come from Airflow's own SimpleAuthManager with the password it generated for its
user; downloads are checked byte for byte against the catalogue's checksums.
"""

from __future__ import annotations

import base64
import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_product import Product, ProductFile

PRIP = "/proseo/prip/odata/v1"


def _admin_password() -> tuple[str, str]:
    """Airflow's generated credentials of its configured user (SimpleAuthManager)."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    passwords = json.loads(Path(SimpleAuthManager.get_generated_password_file()).read_text())
    user, password = next(iter(passwords.items()))
    return user, password


def _product(catalog: Catalog, mission: str) -> tuple[str, str, int, str]:
    with catalog.session() as s:
        uuid, name, size, sha256 = s.execute(
            select(Product.uuid, ProductFile.file_name, ProductFile.size, ProductFile.sha256)
            .join(ProductFile, ProductFile.product_id == Product.id)
            .join(Mission, Mission.id == Product.mission_id)
            .where(Mission.code == mission)
            .order_by(Product.id)
        ).first()
    return uuid, name, size, sha256


def test_service_document_and_metadata(client: Any, token_for: Any) -> None:
    headers = {"Authorization": f"Bearer {token_for('s5p-viewer')}"}
    assert client.get(f"{PRIP}/", headers=headers).json()["value"] == [
        {"name": "Products", "kind": "EntitySet", "url": "Products"},
        {"name": "Subscriptions", "kind": "EntitySet", "url": "Subscriptions"},
    ]
    answer = client.get(f"{PRIP}/$metadata", headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(answer.text)
    ns = {"edm": "http://docs.oasis-open.org/odata/ns/edm"}
    product = root.find(".//edm:EntityType[@Name='Product']", ns)
    assert product is not None
    names = {p.get("Name") for p in product.findall("edm:Property", ns)}
    assert {"Id", "Name", "ContentLength", "Checksum", "ContentDate", "Footprint", "GeoFootprint"} <= names
    assert client.get(f"{PRIP}/$metadata").status_code == 401


def test_password_and_client_credentials_grants_give_working_tokens(client: Any) -> None:
    user, password = _admin_password()
    for form, auth in (
        ({"grant_type": "password", "username": user, "password": password}, None),
        ({"grant_type": "client_credentials", "client_id": user, "client_secret": password}, None),
        ({"grant_type": "client_credentials"}, base64.b64encode(f"{user}:{password}".encode()).decode()),
    ):
        headers = {"Authorization": f"Basic {auth}"} if auth else {}
        answer = client.post(f"{PRIP}/oauth2/token", data=form, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert answer.headers["cache-control"] == "no-store"
        # The token is accepted like any Airflow JWT.
        service = client.get(f"{PRIP}/", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert service.status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password", "username": "admin", "password": "wrong"}, 400, "invalid_grant"),
        (
            {"grant_type": "client_credentials", "client_id": "admin", "client_secret": "x"},
            401,
            "invalid_client",
        ),
        ({"grant_type": "authorization_code", "code": "x"}, 400, "unsupported_grant_type"),
        ({"username": "admin"}, 400, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "admin"}, 400, "invalid_request"),
    ],
)
def test_refused_grants_answer_rfc6749_errors(client: Any, form: dict, status: int, error: str) -> None:
    answer = client.post(f"{PRIP}/oauth2/token", data=form)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error and answer.json()["error_description"]


def test_value_streams_the_file_with_its_checksums_and_ranges(
    client: Any, token_for: Any, world: Catalog
) -> None:
    uuid, name, size, sha256 = _product(world, "S5P")
    headers = {"Authorization": f"Bearer {token_for('s5p-viewer')}"}
    whole = client.get(f"{PRIP}/Products({uuid})/$value", headers=headers)
    assert whole.status_code == 200 and len(whole.content) == size
    assert hashlib.sha256(whole.content).hexdigest() == sha256 == whole.headers["x-checksum-sha256"]
    assert whole.headers["x-checksum-md5"] == hashlib.md5(whole.content).hexdigest()
    assert whole.headers["repr-digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:"
    assert name in whole.headers["content-disposition"]
    part = client.get(f"{PRIP}/Products('{uuid}')/$value", headers={**headers, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{size}"


def test_value_of_an_unseen_or_unknown_product_is_an_odata_error(
    client: Any, token_for: Any, world: Catalog
) -> None:
    uuid = _product(world, "S5P")[0]
    other = {"Authorization": f"Bearer {token_for('sky-admin')}"}
    hidden = client.get(f"{PRIP}/Products({uuid})/$value", headers=other)
    assert (
        hidden.status_code == 404
        and hidden.json()["error"]["message"] == f"Products({uuid}): no such product"
    )
    viewer = {"Authorization": f"Bearer {token_for('s5p-viewer')}"}
    bad = client.get(f"{PRIP}/Products(not-a-uuid)/$value", headers=viewer)
    assert bad.status_code == 400 and "must be a product Id" in bad.json()["error"]["message"]
    assert client.get(f"{PRIP}/Products({uuid})/$value").status_code == 401


def test_value_of_a_file_gone_from_storage_is_404_before_any_byte(
    client: Any, token_for: Any, world: Catalog
) -> None:
    uuid = _product(world, "S5P")[0]
    with world.session() as s:
        url = s.scalars(
            select(ProductFile.storage_url)
            .join(Product, Product.id == ProductFile.product_id)
            .where(Product.uuid == uuid)
        ).one()
    Path(url.removeprefix("file://")).unlink()
    answer = client.get(
        f"{PRIP}/Products({uuid})/$value", headers={"Authorization": f"Bearer {token_for('s5p-viewer')}"}
    )
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "StorageNotFound"


def test_the_rest_api_shows_each_file_s_fast_hash(as_user: Any, world: Catalog) -> None:
    uuid = _product(world, "S5P")[0]
    with world.session() as s:
        expected = s.scalars(
            select(ProductFile.xxh128)
            .join(Product, Product.id == ProductFile.product_id)
            .where(Product.uuid == uuid)
        ).one()
    shown = as_user("s5p-viewer").get(f"/missions/S5P/products/{uuid}").json()
    assert expected and shown["files"][0]["xxh128"] == expected
