"""Verification by XXH3-128 where it is expected, by SHA-256 where it is not, and never by nothing.

Stage-in verifies every byte with the fastest digest the catalogue has: XXH3-128 for
files catalogued since migration 0007, SHA-256 for older ones. These tests change one
byte of a stored object behind the storage's back (same size, so only a digest can
notice) and check that both ways refuse it, on file:// (zero-copy staging and plain
download) and on S3 (streamed download), and that a refused file leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import xxhash

from proseo.errors import ChecksumMismatch
from proseo.storage import FileInfo, Storage
from proseo.storage.hashing import ALL, Digests, for_download, for_staging, hash_local, verify

MakeFile = Callable[..., Path]
KEY = "L0/2025/03/01/in.bin"


def _flip_one_byte(storage: Storage, key: str, at: int) -> bytes:
    """Replace the object under ``key`` by the same bytes with one bit flipped at ``at``."""
    data = bytearray(storage.get_bytes(key))
    data[at] ^= 0x01
    storage.put_bytes(bytes(data), key, replace=True)
    return bytes(data)


def _stored(storage: Storage, make_file: MakeFile) -> tuple[FileInfo, bytes]:
    src = make_file("in.bin", 3 * 2**20 + 11, seed=3)
    return storage.put_file(src, KEY), src.read_bytes()


def test_every_write_records_xxh128_beside_md5_and_sha256(storage: Storage, make_file: MakeFile) -> None:
    info, data = _stored(storage, make_file)
    assert info.xxh128 == xxhash.xxh3_128_hexdigest(data) == xxhash.xxh128_hexdigest(data)
    assert (info.md5, info.sha256) == (hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())
    assert storage.checksum(KEY) == info


@pytest.mark.parametrize("link", [False, True], ids=["download", "link"])
def test_fast_path_verifies_by_xxh128_and_skips_sha256(
    storage: Storage, make_file: MakeFile, tmp_path: Path, link: bool
) -> None:
    info, data = _stored(storage, make_file)
    target = tmp_path / "work" / "inputs" / "in.bin"
    got = storage.get_file(
        KEY,
        target,
        expected_size=info.size,
        expected_md5=info.md5,
        expected_sha256=info.sha256,
        expected_xxh128=info.xxh128,
        link=link,
    )
    assert target.read_bytes() == data
    assert got.xxh128 == info.xxh128 and got.sha256 == ""  # SHA-256 was not computed
    zero_copy = link and storage.protocol == "file"
    assert got.md5 == ("" if zero_copy else info.md5)  # a stream still checks MD5 (S3's ETag)


@pytest.mark.parametrize("link", [False, True], ids=["download", "link"])
@pytest.mark.parametrize("catalogued", ["xxh128", "sha256 only"])
def test_one_changed_byte_fails_both_ways_and_leaves_nothing(
    storage: Storage, make_file: MakeFile, tmp_path: Path, link: bool, catalogued: str
) -> None:
    info, data = _stored(storage, make_file)
    changed = _flip_one_byte(storage, KEY, at=len(data) // 2)
    assert len(changed) == info.size and changed != data
    target = tmp_path / "work" / "inputs" / "in.bin"
    fast = catalogued == "xxh128"
    with pytest.raises(ChecksumMismatch) as caught:
        storage.get_file(
            KEY,
            target,
            expected_size=info.size,
            expected_md5=info.md5,
            expected_sha256=info.sha256,
            expected_xxh128=info.xxh128 if fast else None,
            link=link,
        )
    message = str(caught.value)
    assert storage.url_for(KEY) in message and "size" not in message
    assert ("XXH3-128" in message) is fast and ("SHA-256" in message) is not fast
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_staging_computes_only_the_fastest_expected_digest() -> None:
    assert for_staging("m" * 32, "s" * 64, "x" * 32) == Digests(md5=False, sha256=False, xxh128=True)
    assert for_staging("m" * 32, "s" * 64, None) == Digests(md5=False, sha256=True, xxh128=False)
    assert for_staging("m" * 32, None, None) == Digests(md5=True, sha256=False, xxh128=False)
    assert for_staging(None, None, None) == ALL
    assert for_download("x" * 32) == Digests(md5=True, sha256=False, xxh128=True)
    assert for_download(None) == ALL


def test_a_pass_that_computed_none_of_the_expected_digests_fails(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    only_md5 = hash_local(path, "file:///a.bin", digests=Digests(md5=True, sha256=False, xxh128=False))
    assert (only_md5.size, only_md5.sha256, only_md5.xxh128) == (3, "", "")
    with pytest.raises(ChecksumMismatch, match="none of the expected checksums was computed"):
        verify(only_md5, size=3, xxh128=xxhash.xxh3_128_hexdigest(b"abc"))
    verify(only_md5, size=3, md5=hashlib.md5(b"abc").hexdigest(), xxh128="0" * 32)  # MD5 was checked
    with pytest.raises(ChecksumMismatch, match="MD5"):
        verify(only_md5, md5="0" * 32)
