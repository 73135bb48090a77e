"""A tiny processor honouring the Generic IPF contract, for the wrapper tests.

Called as ``python ipf_test_processor.py JOB_ORDER``. It reads the Job Order, reads
every input and writes every planned output with content that depends on the inputs
(a ``.SAFE`` name becomes a directory product), plus a ``.meta.json`` beside each.
The dynamic parameter ``behaviour`` switches to the misbehaviours the tests need:
warn (exit 3), fail (exit 130), hang, stubborn (hang and ignore SIGTERM),
leftover (leave a child running), nothing (write no output), symlink (an output
that is a symbolic link). It first creates ``started`` in its working directory, so
a test can prove it never ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from proseo.wrapper.joborder import read_job_order

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def digest_of_inputs(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as src:
            while chunk := src.read(1 << 16):
                digest.update(chunk)
    return digest.hexdigest()


def hang(stubborn: bool) -> None:
    if stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(SLEEPER)
    Path("pids.txt").write_text(f"{os.getpid()} {child.pid}\n")
    print("hanging", flush=True)
    while True:
        time.sleep(1)


def main() -> int:
    Path("started").touch()
    job_order = read_job_order(sys.argv[1])
    behaviour = job_order.parameters.get("behaviour", "ok")
    print(f"processor {job_order.processor} {job_order.version}: behaviour {behaviour}", flush=True)
    print("a line on stderr", file=sys.stderr, flush=True)
    if behaviour in ("hang", "stubborn"):
        hang(behaviour == "stubborn")
    if behaviour == "fail":
        print("fatal: simulated processing failure", file=sys.stderr, flush=True)
        return 130
    inputs = [job_order.resolve(name) for names in job_order.inputs.values() for name in names]
    digest = digest_of_inputs(inputs)
    if behaviour == "nothing":
        return 0
    for output in job_order.outputs:
        target = job_order.resolve(output.file_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        body = f"{output.file_type} {target.name} from {len(inputs)} inputs {digest}\n".encode()
        if behaviour == "symlink":
            target.symlink_to(inputs[0].absolute())
            continue
        if target.name.endswith(".SAFE"):
            (target / "data").mkdir(parents=True)
            (target / "manifest.xml").write_bytes(b"<manifest/>\n" + body)
            (target / "data" / "measurement.bin").write_bytes(body * 100)
        else:
            target.write_bytes(body)
        meta = {"job_order": job_order.path.name if job_order.path else None, "inputs": len(inputs)}
        if behaviour == "contradict":  # reports another orbit than the one planned
            meta["orbit"] = 2
        if behaviour == "footprint":
            meta["footprint"] = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]}
        if behaviour == "bad-footprint":  # a bow tie: its ring crosses itself
            meta["footprint"] = {"type": "Polygon", "coordinates": [[[0, 0], [9, 9], [9, 0], [0, 9], [0, 0]]]}
        target.with_name(target.name + ".meta.json").write_text(json.dumps(meta))
    if behaviour == "leftover":
        child = subprocess.Popen(SLEEPER, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        Path("pids.txt").write_text(f"{child.pid}\n")
    return 3 if behaviour == "warn" else 0


if __name__ == "__main__":
    sys.exit(main())
