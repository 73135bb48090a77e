"""``proseo interfaces subscriptions list``: every subscription in the catalogue."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from click.testing import CliRunner

from proseo.catalog import access
from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.cli.main import cli
from proseo.interfaces.subscriptions import create_subscription
from proseo.missions import load_mission

from tests_paths import MISSION_DIR


def test_list_shows_every_owner_s_subscriptions(catalog: Catalog) -> None:
    with catalog.session() as s:
        for name in ("s5p.yaml", "sky.yaml"):
            sync_mission(s, load_mission(MISSION_DIR / name))
        access.grant(s, "alice", "S5P", "viewer", by="test")
        access.grant(s, "bob", "SKY", "viewer", by="test")
        made = [
            create_subscription(s, access.grants_of(s, user), {"FilterParam": text}, datetime.now(UTC)).uuid
            for user, text in (("alice", "Online eq true"), ("bob", "startswith(Name,'SKY')"))
        ]
    run = CliRunner().invoke
    base = ["--catalog", catalog.url, "interfaces", "subscriptions", "list"]
    every = json.loads(run(cli, [*base, "--format", "json"]).output)
    assert [(r["Id"], r["Owner"], r["Mission"], r["SubscriptionType"]) for r in every] == [
        (made[0], "alice", "S5P", "pull"),
        (made[1], "bob", "SKY", "pull"),
    ]
    sky = json.loads(run(cli, [*base, "-m", "SKY", "--format", "json"]).output)
    assert [r["Id"] for r in sky] == [made[1]]
    shown = run(cli, base)
    assert shown.exit_code == 0 and "alice" in shown.output and "bob" in shown.output
