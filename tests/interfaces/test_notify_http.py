"""The notification POST shared by subscriptions and the ODIP, against real local servers:
it never raises, never follows a redirect, never shows credentials; and the endpoint check."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from proseo.interfaces.notify_http import Backoff, endpoint_problem, post_json, redacted
from tests_receiver import Garbage, Receiver


@pytest.mark.parametrize(
    "url",
    ["http://[::1/x", "http://a:b:c/", "http://h:99999/", "ftp://h/x", "http:///x", "http://a b/", "h/x"],
)
def test_endpoints_that_cannot_be_posted_to_are_named_at_creation(url: str) -> None:
    assert endpoint_problem(url)


@pytest.mark.parametrize("url", ["http://h/x", "https://u:p@h:8443/x?q=1", "http://[::1]:80/"])
def test_well_formed_endpoints_pass(url: str) -> None:
    assert endpoint_problem(url) is None


def test_a_post_delivers_and_every_failure_is_a_short_error_without_secrets() -> None:
    ok, garbage = Receiver(), Garbage()
    target = Receiver()
    moved = Receiver(redirect_to=target.url)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/x"
    try:
        assert post_json(ok.url, {"a": 1}, "hook", "pw0rd", 5) is None
        assert ok.accepted == [{"a": 1}] and ok.authorizations()[0].startswith("Basic ")
        assert post_json(moved.url, {"a": 1}, "hook", "pw0rd", 5) == "HTTP 302 (redirects are not followed)"
        assert target.posts == []
        errors = [
            post_json(garbage.url, {}, None, None, 5),
            post_json(closed, {}, None, None, 5),
            post_json("http://hook:pw0rd@a:b:c/?token=tok3n", {}, "hook", "pw0rd", 5),
            post_json("http://[::1/x?token=tok3n", {}, None, None, 5),
        ]
        assert all(e and len(e) <= 300 and "pw0rd" not in e and "tok3n" not in e for e in errors), errors
    finally:
        for r in (ok, garbage, target, moved):
            r.close()


def test_redacted_shows_no_userinfo_nor_query() -> None:
    assert redacted("https://u:secret@h:8443/p?token=t") == "https://h:8443/p"
    assert redacted("http://[::1/x") == "<malformed URL>"


def test_back_off_doubles_to_its_cap_even_after_many_attempts() -> None:
    b = Backoff(base=timedelta(seconds=15), cap=timedelta(hours=1))
    assert [b.delay(n).total_seconds() for n in (1, 2, 3)] == [15, 30, 60]
    assert b.delay(10_000) == timedelta(hours=1)
