"""A stored object is never replaced by other bytes: create-only writes on file:// and S3.

Every test through the ``storage`` fixture runs on a folder and on moto's S3 server
over HTTP. "Nothing rewritten" is checked where each backend can show it: the inode
and modification time on file://, the object's versions in a versioned bucket on S3.
Small objects go up in one PUT, big ones (two blocks and more) as multipart uploads,
whose conditional header sits on CompleteMultipartUpload.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import fsspec
import pytest

from proseo.devtools.s3server import MotoServer
from proseo.errors import ObjectExists, StorageError
from proseo.storage import FileInfo, Storage, noreplace, s3_options
from proseo.storage.backends import atomic_local_write
from proseo.storage.keys import TEMP_MARKER
from proseo.storage.noreplace import KeyTaken
from proseo.storage.s3 import S3Backend

MakeFile = Callable[..., Path]
BLOCK = 5 * 2**20  # the block (S3 part) size of the storage fixtures
SMALL, BIG = 70_000, 2 * BLOCK + 7  # one PUT; a multipart upload of three parts on S3
SIZES = [pytest.param(SMALL, id="small"), pytest.param(BIG, id="multipart")]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _client(storage: Storage) -> Any:
    """An independent boto3 client (not s3fs) on the storage's endpoint, and the bucket."""
    opts = storage.options
    client = boto3.client(
        "s3",
        endpoint_url=opts["endpoint_url"],
        aws_access_key_id=opts["key"],
        aws_secret_access_key=opts["secret"],
        region_name=opts["region"],
    )
    return client


def _bucket_and_prefix(storage: Storage) -> tuple[str, str]:
    bucket, _, prefix = storage.root_url.removeprefix("s3://").partition("/")
    return bucket, prefix


def _root(storage: Storage) -> Path:
    return Path(storage.root_url.removeprefix("file://"))


def leftovers(storage: Storage) -> list[str]:
    """What a failed write could leave behind: temporary files on file://, open multipart uploads on S3."""
    if storage.protocol == "file":
        return sorted(str(p) for p in _root(storage).rglob("*") if TEMP_MARKER in p.name)
    bucket, _ = _bucket_and_prefix(storage)
    return [u["Key"] for u in _client(storage).list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


@pytest.fixture
def rewrites(storage: Storage) -> Callable[[str], Any]:
    """rewrites(key) -> a token that changes whenever the object under ``key`` is written again.

    The inode and modification time on file://; the object's versions on S3 (the
    bucket is made versioned first, so every PUT or completed upload adds one).
    """
    if storage.protocol == "file":

        def stat(key: str) -> Any:
            st = (_root(storage) / key).stat()
            return st.st_ino, st.st_mtime_ns

        return stat
    client = _client(storage)
    bucket, prefix = _bucket_and_prefix(storage)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return lambda key: [
        v["VersionId"]
        for v in client.list_object_versions(Bucket=bucket, Prefix=f"{prefix}/{key}").get("Versions", [])
    ]


def test_a_new_key_is_written_and_not_reported_as_already_stored(
    storage: Storage, make_file: MakeFile
) -> None:
    src = make_file("in.bin", SMALL)
    info = storage.put_file(src, "L1B/a.bin")
    assert not info.already_stored and info.sha256 == _sha(src.read_bytes())
    assert storage.get_bytes("L1B/a.bin") == src.read_bytes()


@pytest.mark.parametrize("size", SIZES)
def test_the_same_bytes_again_are_already_stored_and_nothing_is_rewritten(
    storage: Storage, make_file: MakeFile, rewrites: Callable[[str], Any], size: int
) -> None:
    src = make_file("in.bin", size, seed=size)
    first = storage.put_file(src, "L1B/a.bin")
    before = rewrites("L1B/a.bin")

    again = storage.put_file(src, "L1B/a.bin")  # a retried job step
    copied = storage.copy_in(f"file://{src}", "L1B/a.bin")  # a repeated ingestion
    (many,) = storage.put_many([(src, "L1B/a.bin")])

    assert [i.already_stored for i in (first, again, copied, many)] == [False, True, True, True]
    assert again == copied == many == first  # the same facts (equality ignores already_stored)
    assert rewrites("L1B/a.bin") == before  # same inode and mtime / still one S3 version
    assert storage.checksum("L1B/a.bin") == first and leftovers(storage) == []


def _refused(call: Callable[[], FileInfo]) -> ObjectExists:
    with pytest.raises(ObjectExists) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("size", SIZES)
def test_other_bytes_are_refused_and_the_stored_object_stays(
    storage: Storage, make_file: MakeFile, rewrites: Callable[[str], Any], size: int
) -> None:
    key = "L1B/2024/03/01/product.nc"
    stored = storage.put_file(make_file("first.bin", size, seed=1), key)
    before = rewrites(key)
    other = make_file("second.bin", size + 1, seed=2)
    other_sha = _sha(other.read_bytes())

    for call in (
        lambda: storage.put_file(other, key),
        lambda: storage.put_many([(other, key)]),
        lambda: storage.copy_in(f"file://{other}", key),
        lambda: storage.put_bytes(other.read_bytes(), key),
    ):
        error = _refused(call)
        message = str(error)
        assert f"key {key!r} in {storage.root_url}" in message
        assert f"stored: sha256 {stored.sha256}, {size} bytes" in message
        assert f"this upload: sha256 {other_sha}, {size + 1} bytes" in message
        assert (error.key, error.root, error.url) == (key, storage.root_url, storage.url_for(key))
        assert isinstance(error, StorageError)

    assert storage.checksum(key) == stored  # unchanged, byte for byte
    assert rewrites(key) == before
    assert leftovers(storage) == []  # no temporary file, no multipart upload left open


def test_replace_is_for_per_try_files_only_and_still_replaces(storage: Storage) -> None:
    storage.put_bytes(b"try 1 log\n", "logs/42/processor.log", replace=True)
    info = storage.put_bytes(b"try 2 log, longer\n", "logs/42/processor.log", replace=True)
    assert storage.get_bytes("logs/42/processor.log") == b"try 2 log, longer\n"
    assert not info.already_stored


def _race(writers: list[Callable[[], FileInfo]]) -> tuple[list[FileInfo], list[BaseException]]:
    """Start every writer at the same moment; their results and errors."""
    go = threading.Barrier(len(writers))
    won: list[FileInfo] = []
    lost: list[BaseException] = []
    lock = threading.Lock()

    def run(write: Callable[[], FileInfo]) -> None:
        go.wait()
        try:
            result = write()
            with lock:
                won.append(result)
        except BaseException as exc:
            with lock:
                lost.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, lost


@pytest.mark.parametrize(
    ("size", "writers"), [pytest.param(SMALL, 8, id="small"), pytest.param(BIG, 3, id="multipart")]
)
def test_concurrent_writers_of_one_key_have_exactly_one_winner(
    race_storage: Storage, make_file: MakeFile, size: int, writers: int
) -> None:
    sources = [make_file(f"w{i}.bin", size, seed=100 + i) for i in range(writers)]
    for _round in range(3):
        key = f"race/{_round}.bin"
        won, lost = _race([lambda src=src, key=key: race_storage.put_file(src, key) for src in sources])

        assert len(won) == 1 and not won[0].already_stored, (won, lost)
        assert len(lost) == writers - 1 and all(isinstance(e, ObjectExists) for e in lost), lost
        assert race_storage.checksum(key) == won[0]  # the winner's bytes, whole
    assert leftovers(race_storage) == []


def test_concurrent_writers_of_the_same_bytes_all_succeed_and_one_wrote(
    race_storage: Storage,
    make_file: MakeFile,
) -> None:
    src = make_file("same.bin", SMALL, seed=7)
    won, lost = _race([lambda: race_storage.put_file(src, "race/same.bin") for _ in range(6)])
    assert lost == [] and len(won) == 6
    assert sorted(i.already_stored for i in won) == [False] + [True] * 5
    assert race_storage.get_bytes("race/same.bin") == src.read_bytes() and leftovers(race_storage) == []


# --- file:// ------------------------------------------------------------------------------

_WRITER = """
import json, os, sys, time
from proseo.errors import ObjectExists
from proseo.storage import Storage
root, key, src, go = sys.argv[1:]
store = Storage(root)
while not os.path.exists(go):
    time.sleep(0.001)
try:
    info = store.put_file(src, key)
    print(json.dumps({"won": info.sha256}))
except ObjectExists as exc:
    print(json.dumps({"refused": exc.stored_sha256}))
"""


def test_concurrent_processes_on_file_storage_have_exactly_one_winner(
    file_storage: Storage, make_file: MakeFile, tmp_path: Path
) -> None:
    sources = [make_file(f"p{i}.bin", SMALL, seed=200 + i) for i in range(4)]
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, file_storage.root_url, "race/p.bin", str(src), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for src in sources
    ]
    time.sleep(1.0)  # let them import and wait at the start line
    go.touch()
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]

    winners = [r["won"] for r in results if "won" in r]
    assert len(winners) == 1, results
    assert [r["refused"] for r in results if "refused" in r] == winners * 3  # all saw the winner's object
    assert file_storage.checksum("race/p.bin").sha256 == winners[0]
    root = Path(file_storage.root_url.removeprefix("file://"))
    assert [p.name for p in root.rglob("*") if TEMP_MARKER in p.name] == []


@pytest.fixture
def without_renameat2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel or C library has no renameat2: placement falls back to link(2) + unlink."""
    monkeypatch.setattr(noreplace, "_renameat2", lambda: None)


@pytest.mark.usefixtures("without_renameat2")
def test_link_fallback_is_create_only_and_atomic(file_storage: Storage, make_file: MakeFile) -> None:
    sources = [make_file(f"l{i}.bin", SMALL, seed=300 + i) for i in range(6)]
    won, lost = _race([lambda src=src: file_storage.put_file(src, "link/x.bin") for src in sources])
    assert len(won) == 1 and len(lost) == 5 and all(isinstance(e, ObjectExists) for e in lost)
    root = Path(file_storage.root_url.removeprefix("file://"))
    assert (root / "link/x.bin").stat().st_nlink == 1  # the temporary name is gone
    assert sorted(p.name for p in (root / "link").iterdir()) == ["x.bin"]
    assert file_storage.checksum("link/x.bin") == won[0]


def test_local_create_only_write_keeps_the_existing_file_and_removes_its_temporary(tmp_path: Path) -> None:
    target = tmp_path / "d" / "obj.bin"
    atomic_local_write(io.BytesIO(b"first"), str(target), exclusive=True)
    with pytest.raises(KeyTaken):
        atomic_local_write(io.BytesIO(b"second"), str(target), exclusive=True)
    assert target.read_bytes() == b"first" and os.listdir(target.parent) == ["obj.bin"]


def test_a_directory_under_the_key_is_an_error_not_a_comparison(file_storage: Storage) -> None:
    file_storage.put_bytes(b"x", "dir/inner.bin")
    with pytest.raises(StorageError, match="directory is in the way"):
        file_storage.put_bytes(b"y", "dir")
    assert file_storage.get_bytes("dir/inner.bin") == b"x"


# --- s3:// and other fsspec protocols ----------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("size", SIZES)
def test_s3_conditional_write_is_refused_by_the_server_and_the_upload_aborted(
    moto_s3: MotoServer, bucket: str, s3_client: Any, size: int
) -> None:
    """The backend alone (no look-first): If-None-Match on the PUT or on CompleteMultipartUpload."""
    backend = S3Backend(fsspec.filesystem("s3", **s3_options(moto_s3.options())), block_size=BLOCK)
    s3_client.put_object(Bucket=bucket, Key="k.bin", Body=b"already here")

    with pytest.raises(KeyTaken) as caught:
        backend.write(io.BytesIO(os.urandom(size)), f"{bucket}/k.bin", size_hint=size, exclusive=True)

    cause = caught.value.__cause__
    assert cause is not None and "pre-conditions" in str(cause)  # S3's 412, not a client-side check
    assert s3_client.get_object(Bucket=bucket, Key="k.bin")["Body"].read() == b"already here"
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_other_fsspec_protocols_refuse_other_bytes_too(make_file: MakeFile) -> None:
    store = Storage("memory://create-only-test", block_size=BLOCK)
    store.put_bytes(b"first", "a.bin")
    assert store.put_bytes(b"first", "a.bin").already_stored
    with pytest.raises(ObjectExists):
        store.put_bytes(b"other", "a.bin")
    assert store.get_bytes("a.bin") == b"first"
    store.delete("a.bin")
