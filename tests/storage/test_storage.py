"""One storage interface, the same behaviour on a POSIX folder and on S3 (moto over HTTP).

Every test here runs twice through the parametrised ``storage`` fixture.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import xxhash
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.registry import register_implementation

from proseo.devtools.s3server import MotoServer
from proseo.errors import ChecksumMismatch, StorageError, StorageNotFound
from proseo.storage import FileInfo, Storage, hash_file

MakeFile = Callable[..., Path]


def _facts(data: bytes) -> tuple[int, str, str, str]:
    """Size, MD5, SHA-256 and XXH3-128 by the reference implementations."""
    return (
        len(data),
        hashlib.md5(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
        xxhash.xxh3_128_hexdigest(data),
    )


def _all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_round_trip_checksums_match_hashlib(storage: Storage, make_file: MakeFile, tmp_path: Path) -> None:
    src = make_file("in.bin", 3 * 2**20 + 17)
    data = src.read_bytes()
    key = "L0/2025/03/01/in.bin"

    info = storage.put_file(src, key)

    assert info.url == storage.url_for(key) == f"{storage.root_url}/{key}"
    assert (info.size, info.md5, info.sha256, info.xxh128) == _facts(data)
    out = tmp_path / "down" / "deeper" / "in.bin"  # parent directories are created
    got = storage.get_file(
        key, out, expected_size=len(data), expected_md5=info.md5.upper(), expected_sha256=info.sha256
    )
    assert got == info
    assert out.read_bytes() == data
    assert storage.checksum(key) == info
    local = hash_file(out)
    assert (local.size, local.md5, local.sha256, local.xxh128) == _facts(data)
    assert local.url == f"file://{out}"


def test_empty_and_small_objects(storage: Storage) -> None:
    assert storage.put_bytes(b"", "empty.bin") == FileInfo(storage.url_for("empty.bin"), *_facts(b""))
    assert storage.get_bytes("empty.bin") == b"" and storage.size("empty.bin") == 0
    storage.put_bytes(b"<Ipf_Job_Order/>", "jobs/1/JobOrder.xml")
    info = storage.put_bytes(b"<Ipf_Job_Order>v2</Ipf_Job_Order>", "jobs/1/JobOrder.xml", replace=True)
    assert storage.get_bytes("jobs/1/JobOrder.xml") == b"<Ipf_Job_Order>v2</Ipf_Job_Order>"
    assert (info.size, info.md5) == _facts(b"<Ipf_Job_Order>v2</Ipf_Job_Order>")[:2]


def test_checksum_mismatch_leaves_no_partial_download(
    storage: Storage, make_file: MakeFile, tmp_path: Path
) -> None:
    info = storage.put_file(make_file("in.bin", 100_000), "a.bin")
    target = tmp_path / "dl" / "a.bin"

    with pytest.raises(ChecksumMismatch) as caught:
        storage.get_file("a.bin", target, expected_sha256="0" * 64)
    message = str(caught.value)
    assert storage.url_for("a.bin") in message and caught.value.url == storage.url_for("a.bin")
    assert f"SHA-256 {info.sha256} != expected {'0' * 64}" in message
    assert _all_files(tmp_path / "dl") == []  # neither the file nor its temporary name

    with pytest.raises(ChecksumMismatch, match=r"size 100000 != expected 99999; MD5 .* != expected x"):
        storage.get_file("a.bin", target, expected_size=99_999, expected_md5="x")

    target.write_bytes(b"previous version")  # a failed download does not clobber what was there
    with pytest.raises(ChecksumMismatch):
        storage.get_file("a.bin", target, expected_size=1)
    assert target.read_bytes() == b"previous version"
    assert _all_files(tmp_path / "dl") == ["a.bin"]


def test_missing_objects_raise_storage_not_found(storage: Storage, tmp_path: Path) -> None:
    url = storage.url_for("no/such.bin")
    for call in (
        lambda: storage.get_file("no/such.bin", tmp_path / "x" / "such.bin"),
        lambda: storage.get_bytes("no/such.bin"),
        lambda: storage.size("no/such.bin"),
        lambda: storage.checksum("no/such.bin"),
    ):
        with pytest.raises(StorageNotFound) as caught:
            call()
        assert caught.value.url == url and "no such object" in str(caught.value)
    assert not storage.exists("no/such.bin")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs/key",
        "../escape.bin",
        "a/../../escape.bin",
        "a//b",
        "a/./b",
        "a/",
        "a\\b",
        "a\x00b",
        "a/.x.proseo-part-0123",
    ],
)
def test_bad_keys_are_refused_before_touching_storage(
    storage: Storage, make_file: MakeFile, tmp_path: Path, key: str
) -> None:
    src = make_file("in.bin", 10)
    for call in (
        lambda: storage.put_file(src, key),
        lambda: storage.put_bytes(b"x", key),
        lambda: storage.get_file(key, tmp_path / "out.bin"),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
        lambda: storage.url_for(key),
    ):
        with pytest.raises(StorageError, match="invalid key") as caught:
            call()
        assert repr(key) in str(caught.value)
    assert list(storage.list()) == []
    assert not (tmp_path / "escape.bin").exists() and not (tmp_path / "out.bin").exists()


def test_exists_size_list_delete(storage: Storage) -> None:
    for key, n in (("b/2.bin", 2), ("a/1.bin", 1), ("a/sub/3.bin", 3), ("ab.bin", 4)):
        storage.put_bytes(b"x" * n, key)

    assert storage.exists("a/1.bin") and not storage.exists("a")  # a "directory" is no object
    for call in (lambda: storage.size("a"), lambda: storage.get_bytes("a")):
        with pytest.raises(StorageNotFound):
            call()
    assert [storage.size(k) for k in ("a/1.bin", "a/sub/3.bin", "ab.bin")] == [1, 3, 4]
    assert list(storage.list()) == ["a/1.bin", "a/sub/3.bin", "ab.bin", "b/2.bin"]
    assert list(storage.list("a")) == list(storage.list("a/")) == ["a/1.bin", "a/sub/3.bin"]
    assert list(storage.list("a/sub/3.bin")) == ["a/sub/3.bin"]
    assert list(storage.list("zzz")) == []
    with pytest.raises(StorageError, match="invalid key"):
        storage.list("../")

    storage.delete("a/1.bin")
    storage.delete("a/1.bin")  # idempotent
    storage.delete("never/was.bin")
    storage.delete("a")  # names no object: nothing to do, and a/sub/3.bin stays
    assert not storage.exists("a/1.bin")
    assert list(storage.list()) == ["a/sub/3.bin", "ab.bin", "b/2.bin"]


def test_copy_in_between_file_and_s3_both_ways(
    storage: Storage, make_file: MakeFile, moto_s3: MotoServer, bucket: str, tmp_path: Path
) -> None:
    src = make_file("src.bin", 7 * 2**20 + 3, seed=7)  # more than one 5 MiB part on S3
    facts = _facts(src.read_bytes())
    others = {
        "file": Storage(f"file://{tmp_path}/other"),
        "s3": Storage(f"s3://{bucket}/other", options=moto_s3.options(), block_size=5 * 2**20),
    }
    for name, other in others.items():
        other.put_file(src, "x/src.bin")
        options = moto_s3.options() if name == "s3" else None
        # into the storage under test ...
        info = storage.copy_in(other.url_for("x/src.bin"), f"from-{name}.bin", source_options=options)
        assert (info.size, info.md5, info.sha256, info.xxh128) == facts
        assert storage.checksum(f"from-{name}.bin") == info
        # ... and back out of it
        back = other.copy_in(
            storage.url_for(f"from-{name}.bin"),
            "back.bin",
            source_options=moto_s3.options() if storage.protocol == "s3" else None,
        )
        assert (back.size, back.sha256) == facts[::2]
        assert other.get_file("back.bin", tmp_path / f"back-{name}.bin").sha256 == facts[2]

    missing = others["file"].url_for("missing.bin")
    with pytest.raises(StorageNotFound) as caught:
        storage.copy_in(missing, "y.bin")
    assert caught.value.url == missing and not storage.exists("y.bin")


def test_put_many_and_get_many(storage: Storage, make_file: MakeFile, tmp_path: Path) -> None:
    sizes = [1_000 * (i + 1) + i for i in range(20)]
    items = [(make_file(f"f{i}.bin", size, seed=i), f"many/{i % 3}/f{i}.bin") for i, size in enumerate(sizes)]
    calls: list[int] = []
    threads: set[str] = set()
    inside = {"now": 0, "max": 0}

    def progress(n: int) -> None:  # would see overlap if calls were not serialised
        inside["now"] += 1
        inside["max"] = max(inside["max"], inside["now"])
        threads.add(threading.current_thread().name)
        time.sleep(0.0005)
        calls.append(n)
        inside["now"] -= 1

    infos = storage.put_many(items, workers=6, progress=progress)

    assert [i.size for i in infos] == sizes  # in the order of the items
    assert [i.url for i in infos] == [storage.url_for(k) for _, k in items]
    assert sum(calls) == sum(sizes) and inside["max"] == 1 and len(threads) > 1
    assert len(list(storage.list("many"))) == 20

    calls.clear()
    wanted: list[tuple[str, Path, Any]] = [
        (
            key,
            tmp_path / "back" / Path(key).name,
            info if i % 3 == 0 else (info.size, info.md5, info.sha256) if i % 3 == 1 else None,
        )
        for i, ((_, key), info) in enumerate(zip(items, infos, strict=True))
    ]
    back = storage.get_many(wanted, workers=6, progress=progress)
    assert sum(calls) == sum(sizes) and inside["max"] == 1
    for i, (got, info) in enumerate(zip(back, infos, strict=True)):
        # Expecting an XXH3-128 (a whole FileInfo) spares SHA-256; otherwise every digest is there.
        assert got == (dataclasses.replace(info, sha256="") if i % 3 == 0 else info)
    for (src, _), (_, local, _) in zip(items, wanted, strict=True):
        assert local.read_bytes() == src.read_bytes()

    with pytest.raises(ChecksumMismatch, match="size"):
        storage.get_many([(items[0][1], tmp_path / "bad.bin", (1, None, None))])
    assert not (tmp_path / "bad.bin").exists()
    assert storage.put_many([]) == [] and storage.get_many([]) == []


def test_put_many_stops_at_the_first_failure(storage: Storage, make_file: MakeFile, tmp_path: Path) -> None:
    good = make_file("good.bin", 100)
    items = [(good, "x/0.bin"), (tmp_path / "missing.bin", "x/1.bin")] + [
        (good, f"x/{i}.bin") for i in range(2, 30)
    ]
    with pytest.raises(FileNotFoundError, match=r"missing\.bin"):
        storage.put_many(items, workers=1)
    stored = list(storage.list("x"))
    assert "x/0.bin" in stored and "x/1.bin" not in stored
    assert len(stored) <= 3  # the rest was cancelled, not copied after the failure


class BrokenMemoryFS(MemoryFileSystem):
    """An in-memory source whose files fail with EIO after ``fail_after`` bytes (a dying disk)."""

    protocol = "brokenmem"
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    fail_after = 0

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        f = super()._open(path, mode, **kwargs)
        return _FailsAfter(f, self.fail_after) if "r" in mode else f


class _FailsAfter:
    """Reads from ``f`` until ``limit`` bytes, then EIO (memory files are shared: wrap, don't patch)."""

    def __init__(self, f: Any, limit: int) -> None:
        self._f, self._left = f, limit

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            raise OSError(errno.EIO, "Input/output error")
        data = bytes(self._f.read(self._left if n < 0 else min(n, self._left)))
        self._left -= len(data)
        return data

    def close(self) -> None:
        pass

    def __enter__(self) -> _FailsAfter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


register_implementation("brokenmem", BrokenMemoryFS, clobber=True)


def test_a_failed_copy_leaves_nothing_under_the_key(
    storage: Storage, make_file: MakeFile, s3_client: Any, tmp_path: Path
) -> None:
    BrokenMemoryFS.store.clear()
    BrokenMemoryFS.fail_after = 11 * 2**20  # two full 5 MiB parts reach S3 before the source dies
    BrokenMemoryFS().pipe_file("/src/big.bin", make_file("big.bin", 12 * 2**20).read_bytes())
    previous = storage.put_bytes(b"the previous version", "half/written.bin")

    with pytest.raises(StorageError, match="Input/output error") as caught:
        storage.copy_in("brokenmem:///src/big.bin", "half/written.bin")
    assert isinstance(caught.value.__cause__, OSError) and caught.value.__cause__.errno == errno.EIO

    assert storage.checksum("half/written.bin") == previous  # the old object is intact
    with pytest.raises(StorageError):
        storage.copy_in("brokenmem:///src/big.bin", "half/new.bin")
    assert not storage.exists("half/new.bin")
    assert list(storage.list()) == ["half/written.bin"]
    if storage.protocol == "file":
        root = Path(storage.root_url.removeprefix("file://"))
        assert _all_files(root) == ["half/written.bin"]  # no temporary files left behind
    else:
        bucket = storage.root_url.removeprefix("s3://").split("/")[0]
        assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # aborted


def _peak(action: Any) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_far_below_the_file_size(storage: Storage, make_file: MakeFile, tmp_path: Path) -> None:
    size = 64 * 2**20
    src = make_file("big.bin", size, seed=64)
    storage.put_bytes(b"warm-up", "warm")  # one-time costs (botocore loads the S3 model) not counted
    storage.get_bytes("warm")

    up = _peak(lambda: storage.put_file(src, "big.bin"))
    down = _peak(lambda: storage.get_file("big.bin", tmp_path / "big.back"))

    assert up < size / 4, f"upload peaked at {up / 2**20:.1f} MiB of Python memory for 64 MiB"
    assert down < size / 4, f"download peaked at {down / 2**20:.1f} MiB of Python memory for 64 MiB"
    assert hash_file(tmp_path / "big.back").sha256 == hash_file(src).sha256


# --- zero-copy staging on file:// ------------------------------------------------------


def test_link_staging_verifies_every_byte_and_shares_the_inode(
    file_storage: Storage, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    src = make_file("a.bin", 3 * 2**20 + 7)
    stored = file_storage.put_file(src, "in/a.bin")
    target = tmp_path / "work" / "inputs" / "a.bin"
    info = file_storage.get_file(
        "in/a.bin",
        target,
        expected_size=stored.size,
        expected_md5=stored.md5,
        expected_sha256=stored.sha256,
        link=True,
    )
    assert info.sha256 == stored.sha256 and info.size == stored.size
    assert info.md5 == ""  # SHA-256 alone verifies when it is expected
    stored_path = Path(file_storage.url_for("in/a.bin").removeprefix("file://"))
    assert os.stat(target).st_ino == os.stat(stored_path).st_ino


def test_link_staging_refuses_a_corrupt_object_and_leaves_nothing(
    file_storage: Storage, make_file: Callable[..., Path], tmp_path: Path
) -> None:
    src = make_file("b.bin", 2**20)
    stored = file_storage.put_file(src, "in/b.bin")
    target = tmp_path / "work" / "b.bin"
    with pytest.raises(ChecksumMismatch, match="SHA-256"):
        file_storage.get_file("in/b.bin", target, expected_sha256="0" * 64, link=True)
    assert not target.exists() and list(target.parent.iterdir()) == []
    with pytest.raises(StorageNotFound):
        file_storage.get_file("in/none.bin", target, expected_sha256=stored.sha256, link=True)
    # Only an MD5 to check: MD5 is computed and compared.
    with pytest.raises(ChecksumMismatch, match="MD5"):
        file_storage.get_file("in/b.bin", target, expected_md5="0" * 32, link=True)


def test_link_staging_copies_when_links_are_impossible(
    file_storage: Storage, make_file: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_file("c.bin", 2**20 + 1)
    stored = file_storage.put_file(src, "in/c.bin")

    def no_links(*_args: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "elsewhere" / "c.bin"
    file_storage.get_file("in/c.bin", target, expected_sha256=stored.sha256, link=True)
    assert target.read_bytes() == src.read_bytes()
    stored_path = Path(file_storage.url_for("in/c.bin").removeprefix("file://"))
    assert os.stat(target).st_ino != os.stat(stored_path).st_ino
