"""Keys and roots: what is accepted, what is refused, and the URLs they make."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from proseo.errors import StorageError
from proseo.storage import Storage, check_key, hash_file, open_storage
from proseo.storage.keys import parse_root


@pytest.mark.parametrize(
    "key", ["a.nc", "L0/2025/03/01/S5P_OFFL_L1B.nc", "with space/ü.bin", ".hidden", "a..b"]
)
def test_good_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("..", "'..'"),
        ("a/../../b", "'..'"),
        ("a//b", "empty"),
        ("a/./b", "'.'"),
        ("trailing/", "empty"),
        ("win\\path", "backslash"),
        ("tab\there", "control"),
        ("x/.y.proseo-part-abc", "reserved"),
    ],
)
def test_bad_keys_name_the_key_and_the_reason(key: str, why: str) -> None:
    with pytest.raises(StorageError) as caught:
        check_key(key)
    assert repr(key) in str(caught.value) and why in str(caught.value)


@pytest.mark.parametrize(
    ("url", "canonical", "path"),
    [
        ("file:///data/store/", "file:///data/store", "/data/store"),
        ("/data/store", "file:///data/store", "/data/store"),
        ("file:////data//store", "file:///data/store", "/data/store"),
        ("s3://bucket/prefix/", "s3://bucket/prefix", "bucket/prefix"),
        ("s3://bucket", "s3://bucket", "bucket"),
        ("S3://bucket", "s3://bucket", "bucket"),
    ],
)
def test_roots_are_canonical(url: str, canonical: str, path: str) -> None:
    root = parse_root(url)
    assert (root.url, root.path) == (canonical, path)
    assert root.join("a/b.nc") == f"{canonical}/a/b.nc"


@pytest.mark.parametrize(
    "url", ["file://relative/dir", "relative/dir", "s3://", "file:///data/../etc", "", "s3://b/./x"]
)
def test_bad_roots_are_refused(url: str) -> None:
    with pytest.raises(StorageError):
        Storage(url)


def test_the_filesystem_root_itself_joins_cleanly() -> None:
    assert Storage("file:///").url_for("tmp/x") == "file:///tmp/x"


def test_hash_file_streams_and_names_the_file(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB: more than one chunk
    (tmp_path / "f.bin").write_bytes(data)
    info = hash_file(tmp_path / "f.bin")
    assert info.url == f"file://{tmp_path}/f.bin"
    assert (info.size, info.md5, info.sha256) == (
        len(data),
        hashlib.md5(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


def test_open_storage_shares_one_instance_per_url_and_options(tmp_path: Path) -> None:
    a = open_storage(f"file://{tmp_path}/s/")
    assert open_storage(f"file://{tmp_path}/s") is a
    assert open_storage(f"file://{tmp_path}/s", {"fsync": False}) is not a
    assert open_storage(f"file://{tmp_path}/t") is not a
    assert a.root_url == f"file://{tmp_path}/s" and repr(a) == f"Storage('file://{tmp_path}/s')"


def test_file_roots_fsync_unless_told_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))

    Storage(f"file://{tmp_path}/safe").put_bytes(b"x", "a/b.bin")
    assert len(synced) == 2  # the file, then its directory (the rename)

    synced.clear()
    fast = Storage(f"file://{tmp_path}/fast", options={"fsync": False})
    assert fast.put_bytes(b"x", "a/b.bin").size == 1 and fast.get_bytes("a/b.bin") == b"x"
    assert synced == []

    with pytest.raises(StorageError, match=r"unknown options for file:// storage: \['endpoint_url'\]"):
        Storage(f"file://{tmp_path}/x", options={"endpoint_url": "http://typo"})


def test_deferred_durability_flushes_once_per_batch(tmp_path, monkeypatch) -> None:
    """durable=False skips the per-file fsyncs; one sync() makes the whole batch durable."""
    import os

    from proseo.storage import Storage

    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    store = Storage(f"file://{tmp_path / 'root'}")
    store.sync()  # nothing written yet: still fine
    (tmp_path / "in.bin").write_bytes(b"x" * 1000)
    for i in range(5):
        store.put_file(tmp_path / "in.bin", f"batch/{i}.bin", durable=False)
    assert calls == []
    store.sync()
    assert calls == [] and sorted(store.list("batch")) == [f"batch/{i}.bin" for i in range(5)]
    store.put_file(tmp_path / "in.bin", "single.bin")  # the default stays durable per file
    assert len(calls) == 2  # the file and its directory


def test_key_of_is_the_inverse_of_join() -> None:
    root = parse_root("s3://bucket/prefix")
    assert root.key_of(root.join("L0/2025/a.bin")) == "L0/2025/a.bin"
    for outside in ("s3://bucket/other/a.bin", "s3://bucket/prefixed/a.bin", "s3://bucket/prefix/../x"):
        with pytest.raises(StorageError):
            root.key_of(outside)
