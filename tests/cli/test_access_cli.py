"""``proseo access``: granting, listing and revoking per-mission roles."""

from __future__ import annotations

import json

from click.testing import CliRunner

from proseo.catalog.access import Role, grants_of
from proseo.catalog.db import Catalog
from proseo.cli.main import cli


def test_grant_list_revoke(catalog: Catalog) -> None:
    run = CliRunner().invoke
    base = ["--catalog", catalog.url, "access"]
    assert run(cli, [*base, "grant", "alice", "operator", "-m", "S5P"]).exit_code == 0
    assert run(cli, [*base, "grant", "bob", "admin", "-m", "*"]).exit_code == 0
    assert run(cli, [*base, "grant", "alice", "viewer", "-m", "S5P"]).exit_code == 0  # replaces
    listed = json.loads(run(cli, [*base, "list", "-m", "S5P", "--format", "json"]).output)
    assert [(r["user"], r["mission"], r["role"]) for r in listed] == [
        ("bob", "*", "admin"),
        ("alice", "S5P", "viewer"),
    ]
    with catalog.session() as s:
        assert grants_of(s, "bob").allows("ANY", Role.ADMIN)
        assert grants_of(s, "alice").role("S5P") is Role.VIEWER and not grants_of(s, "alice").allows(
            "SKY", Role.VIEWER
        )
    assert run(cli, [*base, "revoke", "alice", "-m", "S5P"]).exit_code == 0
    again = run(cli, [*base, "revoke", "alice", "-m", "S5P"])
    assert again.exit_code != 0 and "alice holds no role on mission S5P" in again.output
    bad = run(cli, [*base, "grant", "carol", "owner", "-m", "S5P"])
    assert bad.exit_code == 2 and "owner" in bad.output
