"""One storage interface, the same behaviour on a POSIX folder and on S3 (moto over HTTP)."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from proseo.errors import ChecksumMismatch, StorageError, StorageNotFound
from proseo.storage import Storage, hash_file

from tests_storage_helpers import s3_client_for


def _write(path: Path, size: int, seed: int = 0) -> bytes:
    data = hashlib.shake_256(f"{seed}".encode()).digest(size)
    path.write_bytes(data)
    return data


def test_round_trip_with_checksums(storage: Storage, tmp_path: Path) -> None:
    data = _write(tmp_path / "in.bin", 300_000)
    info = storage.put_file(tmp_path / "in.bin", "L0/2025/03/01/in.bin")
    assert info.url == storage.url_for("L0/2025/03/01/in.bin")
    assert (info.size, info.md5, info.sha256) == (
        len(data),
        hashlib.md5(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )
    got = storage.get_file(
        "L0/2025/03/01/in.bin",
        tmp_path / "out" / "x.bin",
        expected_size=len(data),
        expected_md5=info.md5,
        expected_sha256=info.sha256,
    )
    assert got == info
    assert (tmp_path / "out" / "x.bin").read_bytes() == data
    assert storage.checksum("L0/2025/03/01/in.bin") == info
    assert hash_file(tmp_path / "in.bin").sha256 == info.sha256


def test_checksum_mismatch_removes_the_partial_download(storage: Storage, tmp_path: Path) -> None:
    _write(tmp_path / "in.bin", 1000)
    storage.put_file(tmp_path / "in.bin", "a.bin")
    target = tmp_path / "dl" / "a.bin"
    with pytest.raises(ChecksumMismatch, match=r"SHA-256 .* != expected 0+") as info:
        storage.get_file("a.bin", target, expected_sha256="0" * 64)
    assert storage.url_for("a.bin") in str(info.value)
    assert not target.exists() and list(target.parent.iterdir()) == []
    with pytest.raises(ChecksumMismatch, match="size 1000 != expected 999"):
        storage.get_file("a.bin", target, expected_size=999)


def test_missing_objects(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageNotFound, match="no such object"):
        storage.get_file("nope.bin", tmp_path / "x")
    with pytest.raises(StorageNotFound):
        storage.size("nope.bin")
    with pytest.raises(StorageNotFound):
        storage.get_bytes("nope.bin")
    assert not storage.exists("nope.bin")


@pytest.mark.parametrize("key", ["", "/abs/key", "a/../b", "../escape", "a//b", "a/./b", "a\\b", "a\x00b"])
def test_bad_keys_are_refused(storage: Storage, tmp_path: Path, key: str) -> None:
    _write(tmp_path / "in.bin", 10)
    with pytest.raises(StorageError, match="invalid key"):
        storage.put_file(tmp_path / "in.bin", key)


def test_exists_size_list_delete(storage: Storage, tmp_path: Path) -> None:
    _write(tmp_path / "in.bin", 2048)
    for key in ("b/2.bin", "a/1.bin", "a/sub/3.bin"):
        storage.put_file(tmp_path / "in.bin", key)
    assert storage.exists("a/1.bin") and storage.size("a/sub/3.bin") == 2048
    assert list(storage.list()) == ["a/1.bin", "a/sub/3.bin", "b/2.bin"]
    assert list(storage.list("a")) == ["a/1.bin", "a/sub/3.bin"]
    assert list(storage.list("zzz")) == []
    storage.delete("a/1.bin")
    storage.delete("a/1.bin")  # idempotent
    assert not storage.exists("a/1.bin")
    assert list(storage.list()) == ["a/sub/3.bin", "b/2.bin"]


def test_small_objects(storage: Storage) -> None:
    info = storage.put_bytes(b"<Ipf_Job_Order/>", "jobs/1/JobOrder.xml")
    assert info.size == 16 and storage.get_bytes("jobs/1/JobOrder.xml") == b"<Ipf_Job_Order/>"


def test_copy_in_between_backends(storage: Storage, tmp_path: Path, moto_s3, bucket: str) -> None:
    data = _write(tmp_path / "src.bin", 7 * 2**20 + 3)  # more than one 5 MiB block
    local = Storage(f"file://{tmp_path / 'other'}")
    remote = Storage(f"s3://{bucket}/other", options=moto_s3.options(), block_size=5 * 2**20)
    for source in (local, remote):
        source.put_file(tmp_path / "src.bin", "x/src.bin")
        info = storage.copy_in(
            source.url_for("x/src.bin"),
            f"from-{source.protocol}.bin",
            source_options=moto_s3.options() if source is remote else None,
        )
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert storage.checksum(f"from-{source.protocol}.bin").md5 == hashlib.md5(data).hexdigest()
    with pytest.raises(StorageNotFound):
        storage.copy_in(local.url_for("missing.bin"), "y.bin")


def test_put_many_and_get_many(storage: Storage, tmp_path: Path) -> None:
    files = []
    for i in range(20):
        _write(tmp_path / f"f{i}.bin", 10_000 + i, seed=i)
        files.append((tmp_path / f"f{i}.bin", f"many/f{i}.bin"))
    seen: list[int] = []
    infos = storage.put_many(files, workers=6, progress=seen.append)
    assert sum(seen) == sum(10_000 + i for i in range(20))
    assert [i.size for i in infos] == [10_000 + i for i in range(20)]
    back = storage.get_many(
        [
            (k, tmp_path / "back" / Path(k).name, (i.size, i.md5, i.sha256))
            for (_, k), i in zip(files, infos, strict=True)
        ],
        workers=6,
    )
    assert back == infos
    with pytest.raises(ChecksumMismatch):
        storage.get_many([(files[0][1], tmp_path / "bad.bin", (1, None, None))])


def test_a_failed_write_leaves_nothing_under_the_key(storage: Storage, tmp_path: Path) -> None:
    class Exploding:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, n: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise ValueError("source broke mid-copy")
            return b"x" * (6 * 2**20)  # larger than a block: multipart on S3

    with pytest.raises(ValueError, match="mid-copy"):
        storage._write_stream(Exploding(), "half/written.bin", None, None)
    assert not storage.exists("half/written.bin")
    assert list(storage.list()) == []
    if storage.protocol == "file":
        assert not any(Path(storage.root_url.removeprefix("file://")).rglob("*.part-*"))


def _peak_copy(storage: Storage, path: Path, key: str, back: Path) -> int:
    tracemalloc.start()
    try:
        storage.put_file(path, key)
        storage.get_file(key, back)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_the_block_not_the_file(storage: Storage, tmp_path: Path) -> None:
    """Copying 64 MiB peaks no higher than copying 16 MiB: nothing holds a whole file."""
    for mib in (16, 64):
        with (tmp_path / f"{mib}.bin").open("wb") as f:
            for i in range(mib):
                f.write(hashlib.shake_256(str(i).encode()).digest(2**20))
    small = _peak_copy(storage, tmp_path / "16.bin", "16.bin", tmp_path / "16.back")
    big = _peak_copy(storage, tmp_path / "64.bin", "64.bin", tmp_path / "64.back")
    assert big < 64 * 2**20 / 2, f"peak {big / 2**20:.1f} MiB while copying 64 MiB"
    assert big <= small * 1.25 + 2**20, (
        f"peak grew with the file: {small / 2**20:.1f} -> {big / 2**20:.1f} MiB"
    )
    assert os.path.getsize(tmp_path / "64.back") == 64 * 2**20


@pytest.mark.s3
def test_large_uploads_are_multipart(moto_s3, bucket: str, tmp_path: Path) -> None:
    _write(tmp_path / "big.bin", 12 * 2**20)
    store = Storage(f"s3://{bucket}", options=moto_s3.options(), block_size=5 * 2**20)
    store.put_file(tmp_path / "big.bin", "big.bin")
    store.put_file(tmp_path / "big.bin", "again/big.bin")
    etag = s3_client_for(moto_s3).head_object(Bucket=bucket, Key="big.bin")["ETag"].strip('"')
    assert etag.rsplit("-", 1)[-1].isdigit() and "-" in etag  # "<md5 of md5s>-<parts>"
    _write(tmp_path / "small.bin", 1000)
    store.put_file(tmp_path / "small.bin", "small.bin")
    small = s3_client_for(moto_s3).head_object(Bucket=bucket, Key="small.bin")["ETag"].strip('"')
    assert "-" not in small and small == hashlib.md5((tmp_path / "small.bin").read_bytes()).hexdigest()


@pytest.mark.s3
def test_endpoint_and_credentials_from_the_environment(
    moto_s3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_s3.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = Storage(f"s3://{bucket}/env")
    _write(tmp_path / "a.bin", 100)
    store.put_file(tmp_path / "a.bin", "a.bin")
    keys = [o["Key"] for o in s3_client_for(moto_s3).list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["env/a.bin"]


def test_file_roots_must_be_absolute() -> None:
    with pytest.raises(StorageError, match="absolute"):
        Storage("file://relative/dir")
