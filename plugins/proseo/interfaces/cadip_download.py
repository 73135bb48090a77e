"""Taking a whole CADIP session: its channels downloaded, then ingested together.

Each channel's blocks are streamed in block order into one file (``Files(<Id>)/$value``,
every block's size checked) with a sidecar giving the L0 product's metadata: validity
DownlinkStart..DownlinkStop, generation the session's PublicationDate, parameters
``session`` and ``channel``. The channels are ingested in one run, so a session is
never ingested half; ingestion is idempotent by identity, so a retry ingests each
channel once. Marking the session taken is the caller's (after this returns).
"""

from __future__ import annotations

import json
from pathlib import Path

from proseo.catalog.describe import SIDECAR_SUFFIX
from proseo.catalog.ingest import Ingestor
from proseo.interfaces.cadip_entity import SessionEntity
from proseo.interfaces.cadip_record import CadipError
from proseo.interfaces.cadip_session import BlockFile, Verdict
from proseo.interfaces.odata_http import ODataHttp, PullError
from proseo.interfaces.prip_entity import odata_time


def fetch_and_ingest(
    http: ODataHttp,
    ingestor: Ingestor,
    source: str,
    root: str,
    scratch: Path,
    product_type: str,
    session: SessionEntity,
    verdict: Verdict,
) -> tuple[dict[int, int | None], list[str]]:
    """Download every channel, ingest them together: product id per channel, the file names."""
    sid = session.session_id
    if session.start is None or session.stop is None:
        raise CadipError(
            "no DownlinkStart/DownlinkStop: no validity for the L0 products", source=source, session=sid
        )
    paths: dict[int, Path] = {}
    try:
        for channel, blocks in verdict.blocks.items():
            paths[channel] = _download_channel(
                http, source, root, scratch, product_type, session, channel, blocks
            )
        result = ingestor.run(list(paths.values()), product_type=product_type)
    finally:
        for path in paths.values():
            path.unlink(missing_ok=True)
            path.with_name(path.name + SIDECAR_SUFFIX).unlink(missing_ok=True)
    if not result.ok:
        bad = "; ".join(
            o.message or o.status for o in result.outcomes if o.status not in ("new", "unchanged")
        )
        raise CadipError(f"not ingested: {bad}", source=source, session=sid)
    by_path = {o.file: o.product_id for o in result.outcomes}
    return {c: by_path.get(str(p)) for c, p in paths.items()}, [p.name for p in paths.values()]


def _download_channel(
    http: ODataHttp,
    source: str,
    root: str,
    scratch: Path,
    product_type: str,
    session: SessionEntity,
    channel: int,
    blocks: list[BlockFile],
) -> Path:
    sid = session.session_id
    target = scratch / f"{sid}_ch{channel:02d}.raw"
    with target.open("wb") as out:
        for block in blocks:
            url = f"{root}/Files({block.id})/$value"
            try:
                _, _, size = http.stream_into(url, out)
            except PullError as exc:
                raise CadipError(exc.detail, source=source, session=sid, file=block.name, url=url) from exc
            if size != block.size:
                raise CadipError(
                    f"{size} bytes received, Size says {block.size}",
                    source=source,
                    session=sid,
                    file=block.name,
                )
    sidecar = {
        "product_type": product_type,
        "start": odata_time(session.start),
        "stop": odata_time(session.stop),
        "generation_time": odata_time(session.published),
        "orbit": session.orbit,
        "parameters": {"session": sid, "channel": channel},
    }
    target.with_name(target.name + SIDECAR_SUFFIX).write_text(json.dumps(sidecar), encoding="utf-8")
    return target
