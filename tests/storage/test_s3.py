"""What only S3 has: multipart uploads, endpoint and credential configuration, listing caches.

All against moto's server over real HTTP, checked with an independent boto3 client.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from proseo.devtools.s3server import MotoServer, free_port
from proseo.errors import StorageError
from proseo.storage import Storage, s3_options
from proseo.storage.s3 import S3_MAX_PARTS, s3_part_size

pytestmark = pytest.mark.s3
MakeFile = Callable[..., Path]


def _etag(client: Any, bucket: str, key: str) -> str:
    return str(client.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')


def test_large_files_go_up_as_multipart_small_ones_in_one_put(
    moto_s3: MotoServer, bucket: str, s3_client: Any, make_file: MakeFile
) -> None:
    store = Storage(f"s3://{bucket}", options=moto_s3.options(), block_size=5 * 2**20)
    big = make_file("big.bin", 12 * 2**20, seed=12)
    small = make_file("small.bin", 1000)

    info = store.put_file(big, "big.bin")
    store.put_file(small, "small.bin")

    assert _etag(s3_client, bucket, "big.bin").endswith("-3")  # "<md5 of part md5s>-<parts>": 5+5+2 MiB
    assert info.md5 == hashlib.md5(big.read_bytes()).hexdigest()  # our MD5 is of the content, not the ETag
    assert _etag(s3_client, bucket, "small.bin") == hashlib.md5(small.read_bytes()).hexdigest()
    assert s3_client.head_object(Bucket=bucket, Key="big.bin")["ContentLength"] == 12 * 2**20
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # completed


def test_part_size_grows_only_where_10000_parts_would_not_do() -> None:
    block = 16 * 2**20
    assert s3_part_size(block, None) == s3_part_size(block, 10 * 2**30) == block
    assert s3_part_size(block, block * S3_MAX_PARTS) == block
    huge = block * S3_MAX_PARTS + 1
    assert s3_part_size(block, huge) == 17 * 2**20  # the next whole MiB that fits in 10,000 parts
    with pytest.raises(StorageError, match="minimum part size"):
        Storage("s3://bucket", block_size=2**20)


def test_answers_are_never_stale(moto_s3: MotoServer, bucket: str, s3_client: Any) -> None:
    """Other processes change the bucket behind our back; exists/list/size must see it at once."""
    store = Storage(f"s3://{bucket}/p", options={**moto_s3.options(), "use_listings_cache": True})
    assert list(store.list()) == [] and not store.exists("a.bin")  # would be cached if caching were on

    s3_client.put_object(Bucket=bucket, Key="p/a.bin", Body=b"12345")
    assert store.exists("a.bin") and store.size("a.bin") == 5 and list(store.list()) == ["a.bin"]

    s3_client.put_object(Bucket=bucket, Key="p/a.bin", Body=b"123")
    assert store.size("a.bin") == 3

    s3_client.delete_object(Bucket=bucket, Key="p/a.bin")
    assert not store.exists("a.bin") and list(store.list()) == []

    store.put_bytes(b"x", "b.bin")
    assert store.exists("b.bin") and list(store.list()) == ["b.bin"]
    store.delete("b.bin")
    assert not store.exists("b.bin") and list(store.list()) == []


def test_endpoint_credentials_and_region_from_the_environment(
    moto_s3: MotoServer, bucket: str, s3_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_s3.env().items():
        monkeypatch.setenv(name, value)

    store = Storage(f"s3://{bucket}/env")  # no options at all
    store.put_bytes(b"hello", "a.txt")

    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["env/a.txt"] and store.get_bytes("a.txt") == b"hello"


def test_s3_options_translation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://generic:9000")
    assert s3_options({}) == {"endpoint_url": "http://generic:9000", "use_listings_cache": False}
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-specific:9000")
    assert s3_options({})["endpoint_url"] == "http://s3-specific:9000"
    opts = s3_options(
        {
            "endpoint_url": "http://explicit",
            "region": "eu-central-1",
            "key": "k",
            "secret": "s",
            "anon": False,
            "client_kwargs": {"verify": False},
            "version_aware": True,
        }
    )
    assert opts == {
        "endpoint_url": "http://explicit",  # explicit wins over the environment
        "key": "k",
        "secret": "s",
        "anon": False,
        "version_aware": True,  # unknown options pass through to s3fs
        "client_kwargs": {"verify": False, "region_name": "eu-central-1"},
        "use_listings_cache": False,
    }


def test_an_unreachable_endpoint_is_retried_then_given_up(caplog: pytest.LogCaptureFixture) -> None:
    """A real connection failure (nothing listens on the port) through s3fs, aiobotocore and botocore."""
    options = {
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "key": "k",
        "secret": "s",
        "region": "us-east-1",
        "config_kwargs": {"retries": {"max_attempts": 1}},
    }
    store = Storage("s3://bucket/x", options=options, max_retries=2, retry_backoff=0.001)
    store._backend.fs.retries = 1  # s3fs's own per-request retries are a class attribute; keep the test fast

    with (
        caplog.at_level(logging.WARNING, logger="proseo.storage.retry"),
        pytest.raises(StorageError) as caught,
    ):
        store.put_bytes(b"x", "a.bin")

    assert "gave up after 3 attempts: EndpointConnectionError" in str(caught.value)
    assert caught.value.url == "s3://bucket/x/a.bin"
    assert type(caught.value.__cause__).__name__ == "EndpointConnectionError"
    assert [r.getMessage().split("; ")[-1][:9] for r in caplog.records] == ["retry 1/2", "retry 2/2"]
