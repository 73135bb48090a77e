"""Benchmark: stage 1 GiB of inputs through the wrapper, against plain copies of the same files.

For file:// and for moto's S3 server on 127.0.0.1: the wrapper runs a job whose
processor does nothing but write its one small output, so the run is dominated by
stage-in (download, size and checksum verification, atomic placement). The peer
copies the same files plainly, one after the other, with the standard tool of each
kind and no verification, as `cp` or `aws s3 cp` would: shutil.copyfile (an
in-kernel copy) for file://, boto3's download_file (its default multipart transfer,
10 threads per file) for S3. A second, stronger peer runs the same plain copies
8 at a time; it is printed for comparison. Each side runs several rounds,
alternating, and the best round counts (the machine has 2 cores).

On file:// the wrapper stages by hard link (or in-kernel copy across file systems)
and reads every byte to verify size and XXH3-128; on S3 it streams each file once,
verifying size, MD5 and XXH3-128 as the bytes pass. ``--sha256-only`` stages inputs
catalogued without XXH3-128 (before migration 0007): verified by SHA-256 instead.

    .venv/bin/python bench/staging.py [--total-mib 1024] [--files 16] [--rounds 3] [--sha256-only]

The last line is JSON: {"bench": "staging", "file_ratio": a, "s3_ratio": b, ...} with
ratio = wrapper throughput / plain throughput (goal: both at least 0.8). file_ratio is
measured with a warm page cache (files just written: the plain copy is a memory copy
in the kernel); where the bench may drop the page cache (root), file_ratio_cold gives
the same comparison reading from disk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import xxhash

from proseo.devtools.s3server import MotoServer
from proseo.storage import Storage
from proseo.wrapper.job import run_job
from proseo.wrapper.spec import JobSpec, Status

WORKERS = 8
PROCESSOR = (
    "import sys, pathlib, xml.etree.ElementTree as ET\n"
    "root = ET.parse(sys.argv[1]).getroot()\n"
    "for name in root.iter('File_Name'):\n"
    "    if name.text and name.text.startswith('outputs/'):\n"
    "        p = pathlib.Path(name.text); p.parent.mkdir(parents=True, exist_ok=True); p.write_text('ok')\n"
)


def make_inputs(folder: Path, files: int, size: int) -> list[Path]:
    """Distinct pseudo-random files (one random block, a different header per file)."""
    folder.mkdir(parents=True)
    block = os.urandom(min(size, 64 << 20))
    paths = []
    for i in range(files):
        path = folder / f"RAW_{i:04d}.bin"
        with path.open("wb") as out:
            out.write(f"file {i}\n".encode())
            left = size - len(f"file {i}\n")
            while left > 0:
                piece = block[: min(left, len(block))]
                out.write(piece)
                left -= len(piece)
        paths.append(path)
    return paths


def facts(path: Path, fast: bool) -> dict[str, Any]:
    """What the catalogue records of a file (without XXH3-128 unless ``fast``)."""
    md5, sha, xxh = hashlib.md5(), hashlib.sha256(), xxhash.xxh3_128()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            md5.update(chunk)
            sha.update(chunk)
            xxh.update(chunk)
    return {
        "size": path.stat().st_size,
        "md5": md5.hexdigest(),
        "sha256": sha.hexdigest(),
        "xxh128": xxh.hexdigest() if fast else None,
    }


def make_spec(
    storage_url: str, options: dict[str, Any], keys: list[str], info: list[dict[str, Any]], out_url: str
) -> JobSpec:
    t0, t1 = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC)
    return JobSpec.model_validate(
        {
            "job_step_id": 1,
            "mission": "BENCH",
            "processor": "NOOP",
            "version": "1",
            "configuration": "1",
            "file_class": "TEST",
            "tasks": [{"name": "NOOP", "version": "1"}],
            "command": [sys.executable, "-c", PROCESSOR],
            "sensing_start": t0,
            "sensing_stop": t1,
            "inputs": [
                {
                    "product_type": "RAW",
                    "file_name": Path(k).name,
                    "storage": "in",
                    "key": k,
                    "start": t0,
                    "stop": t1,
                    **f,
                }
                for k, f in zip(keys, info, strict=True)
            ],
            "outputs": [
                {"product_type": "OUT", "file_name": "OUT.txt", "key": "OUT/OUT.txt", "start": t0, "stop": t1}
            ],
            "storages": {"in": {"url": storage_url, "options": options}, "out": {"url": out_url}},
            "output_storage": "out",
            "log_key": "logs/1.log",
            "job_order_key": "joborders/1.xml",
            "max_run_time_s": 600,
            "transfer_workers": WORKERS,
        }
    )


def timed(action: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    action()
    return time.perf_counter() - t0


def wrapper_round(spec: JobSpec, scratch: Path) -> float:
    workdir = scratch / f"w-{uuid.uuid4().hex[:8]}"

    def go() -> None:
        manifest = run_job(spec, workdir, echo=False)
        if manifest.status is not Status.SUCCESS:
            raise SystemExit(f"wrapper run failed: {manifest.stage}: {manifest.reason}")

    seconds = timed(go)
    shutil.rmtree(workdir, ignore_errors=True)
    return seconds


def plain_round(items: list[Any], copy: Callable[[Any, Path], object], scratch: Path, workers: int) -> float:
    """Plain copies of every item into a fresh folder, ``workers`` at a time."""
    target = scratch / f"p-{uuid.uuid4().hex[:8]}"
    target.mkdir()
    if workers == 1:
        seconds = timed(lambda: [copy(item, target) for item in items])
    else:
        with ThreadPoolExecutor(workers) as pool:
            seconds = timed(lambda: list(pool.map(lambda item: copy(item, target), items)))
    shutil.rmtree(target, ignore_errors=True)
    return seconds


def drop_caches() -> bool:
    """Write back and drop the page cache (root only), so the next round reads from disk."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def best_of(
    rounds: int,
    wrapper: Callable[[], float],
    plain: Callable[[], float],
    parallel: Callable[[], float],
    *,
    cold: bool = False,
) -> dict[str, float]:
    """Best round of each side; ``cold`` drops the page cache before every single run."""
    w, p, q = [], [], []
    for _ in range(rounds):
        for runs, side in ((p, plain), (q, parallel), (w, wrapper)):
            if cold:
                drop_caches()
            runs.append(side())
    return {"wrapper_s": min(w), "plain_s": min(p), "parallel_s": min(q)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sha256-only", action="store_true", help="inputs catalogued without XXH3-128 (verified by SHA-256)"
    )
    args = parser.parse_args()
    size = args.total_mib * 2**20 // args.files
    work = Path(tempfile.mkdtemp(prefix="proseo_bench_staging_"))
    results: dict[str, dict[str, float]] = {}
    try:
        source = work / "source"
        paths = make_inputs(source, args.files, size)
        info = [facts(p, fast=not args.sha256_only) for p in paths]
        total = sum(i["size"] for i in info)
        scratch = work / "scratch"
        scratch.mkdir()
        out_url = f"file://{work / 'out'}"

        file_spec = make_spec(f"file://{source}", {}, [p.name for p in paths], info, out_url)

        def copy_file(path: Path, target: Path) -> object:
            return shutil.copyfile(path, target / path.name)

        sides = (
            lambda: wrapper_round(file_spec, scratch),
            lambda: plain_round(paths, copy_file, scratch, 1),
            lambda: plain_round(paths, copy_file, scratch, WORKERS),
        )
        results["file"] = best_of(args.rounds, *sides)
        if drop_caches():  # page cache emptied before each run: what multi-GB products see
            results["file (cold cache)"] = best_of(args.rounds, *sides, cold=True)

        with MotoServer(log_file=work / "moto.log") as server:
            options = server.options()
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            client = boto3.client(
                "s3",
                endpoint_url=options["endpoint_url"],
                aws_access_key_id=options["key"],
                aws_secret_access_key=options["secret"],
                region_name=options["region"],
            )
            client.create_bucket(Bucket=bucket)
            store = Storage(f"s3://{bucket}/in", options=options)
            store.put_many([(p, p.name) for p in paths], workers=WORKERS)
            s3_spec = make_spec(f"s3://{bucket}/in", options, [p.name for p in paths], info, out_url)
            keys = [f"in/{p.name}" for p in paths]

            def download(key: str, target: Path) -> object:
                return client.download_file(bucket, key, str(target / Path(key).name))

            results["s3"] = best_of(
                args.rounds,
                lambda: wrapper_round(s3_spec, scratch),
                lambda: plain_round(keys, download, scratch, 1),
                lambda: plain_round(keys, download, scratch, WORKERS),
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mib = total / 2**20
    cold = results.get("file (cold cache)")
    print(
        f"{args.files} files, {mib:.0f} MiB in all, {WORKERS} parallel transfers, best of {args.rounds}, "
        f"verified by {'SHA-256' if args.sha256_only else 'XXH3-128'}",
        file=sys.stderr,
    )
    print(
        f"{'storage':<19}{'wrapper MiB/s':>14}{'plain MiB/s':>13}{'ratio':>7}"
        f"{'8-parallel plain MiB/s':>24}{'ratio':>7}"
    )
    for name, r in results.items():
        print(
            f"{name:<19}{mib / r['wrapper_s']:>14.0f}{mib / r['plain_s']:>13.0f}"
            f"{r['plain_s'] / r['wrapper_s']:>7.2f}{mib / r['parallel_s']:>24.0f}"
            f"{r['parallel_s'] / r['wrapper_s']:>7.2f}"
        )
    print(
        json.dumps(
            {
                "bench": "staging",
                "file_ratio": round(results["file"]["plain_s"] / results["file"]["wrapper_s"], 3),
                "s3_ratio": round(results["s3"]["plain_s"] / results["s3"]["wrapper_s"], 3),
                "file_ratio_cold": round(cold["plain_s"] / cold["wrapper_s"], 3) if cold else None,
                "file_ratio_vs_parallel": round(
                    results["file"]["parallel_s"] / results["file"]["wrapper_s"], 3
                ),
                "s3_ratio_vs_parallel": round(results["s3"]["parallel_s"] / results["s3"]["wrapper_s"], 3),
                "mib": round(mib),
                "files": args.files,
                "verified_by": "sha256" if args.sha256_only else "xxh128",
                "file_mib_s": round(mib / results["file"]["wrapper_s"]),
                "s3_mib_s": round(mib / results["s3"]["wrapper_s"]),
            }
        )
    )


if __name__ == "__main__":
    main()
