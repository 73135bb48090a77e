"""When a CADIP downlink session is whole: every channel's blocks and QualityInfo agree.

A session is downlinked on ``NumChannels`` channels; each channel's data arrive as
numbered blocks (Files, ``BlockNumber`` from 1), the last one flagged ``FinalBlock``, and
the station publishes per channel a QualityInfo with the totals it sent (TotalChunks,
TotalVolume). Blocks, final flags and QualityInfo are published independently and late.
Taking a session at the first FinalBlock seen would take a two-channel session with one
channel still arriving; so a session is whole only when, for every channel 1..N, the
final block is in, the blocks are 1..final without a gap, and QualityInfo's totals are
exactly the blocks and bytes that arrived. Anything else leaves it pending with reasons
that say which channel lacks what. Pure functions over the entities' JSON: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from proseo.missions.types import parse_utc

_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class BlockFile:
    """One ``Files`` entity of a session."""

    id: str
    name: str
    channel: int
    block: int
    final: bool
    size: int
    published: datetime | None

    @classmethod
    def of(cls, entity: dict[str, Any]) -> BlockFile:
        """From the entity's JSON; a field missing or of the wrong type is a ValueError naming it."""
        published = entity.get("PublicationDate")
        return cls(
            id=str(_field(entity, "Id", str)),
            name=str(_field(entity, "Name", str)),
            channel=int(_field(entity, "Channel", int)),
            block=int(_field(entity, "BlockNumber", int)),
            final=bool(_field(entity, "FinalBlock", bool)),
            size=int(_field(entity, "Size", int)),
            published=parse_utc(published) if published else None,
        )


@dataclass(frozen=True)
class Quality:
    """A channel's QualityInfo: what the station says it sent."""

    channel: int
    chunks: int
    volume: int

    @classmethod
    def of(cls, entity: dict[str, Any]) -> Quality:
        return cls(
            channel=int(_field(entity, "Channel", int)),
            chunks=int(_field(entity, "TotalChunks", int)),
            volume=int(_field(entity, "TotalVolume", int)),
        )


def _field(entity: dict[str, Any], name: str, kind: type) -> Any:
    value = entity.get(name)
    # bool is an int in Python; a Channel of true is as wrong as one of "1"
    if value is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{name} is {value!r}, expected {kind.__name__}")
    return value


@dataclass
class Verdict:
    """The session's blocks per channel in order, and why it is not whole (empty: whole)."""

    blocks: dict[int, list[BlockFile]]
    reasons: list[str]

    @property
    def whole(self) -> bool:
        return not self.reasons


def latest_blocks(files: list[BlockFile]) -> list[BlockFile]:
    """One file per (channel, block): a retransferred block replaces the earlier one."""
    best: dict[tuple[int, int], BlockFile] = {}
    for f in files:
        old = best.get((f.channel, f.block))
        if old is None or _order(f) >= _order(old):
            best[(f.channel, f.block)] = f
    return sorted(best.values(), key=lambda f: (f.channel, f.block))


def _order(f: BlockFile) -> datetime:
    return f.published or _NEVER


def judge(channels: int, files: list[BlockFile], quality: list[Quality]) -> Verdict:
    """Whether the session is whole; the blocks to take per channel, in block order."""
    reasons: list[str] = []
    if channels < 1:
        return Verdict({}, [f"NumChannels is {channels}"])
    blocks: dict[int, list[BlockFile]] = {c: [] for c in range(1, channels + 1)}
    for f in latest_blocks(files):
        if f.channel not in blocks:
            reasons.append(f"file {f.name}: channel {f.channel} outside 1..{channels}")
        else:
            blocks[f.channel].append(f)
    per_channel: dict[int, list[Quality]] = {}
    for q in quality:
        per_channel.setdefault(q.channel, []).append(q)
    for channel, got in blocks.items():
        reasons += _channel_reasons(channel, got, per_channel.get(channel, []))
    return Verdict(blocks, reasons)


def _channel_reasons(channel: int, got: list[BlockFile], quality: list[Quality]) -> list[str]:
    finals = [f.block for f in got if f.final]
    if not finals:
        return [f"channel {channel}: final block not in yet ({len(got)} blocks so far)"]
    if len(finals) > 1:
        return [f"channel {channel}: several final blocks ({', '.join(map(str, finals))})"]
    final = finals[0]
    numbers = {f.block for f in got}
    out: list[str] = []
    missing = sorted(set(range(1, final + 1)) - numbers)
    if missing:
        out.append(f"channel {channel}: blocks {_ranges(missing)} of 1..{final} not in yet")
    beyond = sorted(n for n in numbers if n > final or n < 1)
    if beyond:
        out.append(f"channel {channel}: blocks {_ranges(beyond)} outside 1..{final} (final block {final})")
    if not quality:
        out.append(f"channel {channel}: no QualityInfo yet")
    elif len(quality) > 1:
        out.append(f"channel {channel}: {len(quality)} QualityInfo entries")
    elif not out:
        q, volume = quality[0], sum(f.size for f in got)
        if (q.chunks, q.volume) != (len(got), volume):
            out.append(
                f"channel {channel}: QualityInfo totals {q.chunks} chunks, {q.volume} bytes; "
                f"arrived {len(got)} chunks, {volume} bytes"
            )
    return out


def _ranges(numbers: list[int]) -> str:
    """``1-3, 7``: sorted numbers as ranges, so a long gap stays one short phrase."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        if n is not None:
            start = prev = n
    return ", ".join(parts)
