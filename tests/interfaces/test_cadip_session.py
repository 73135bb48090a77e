"""When a CADIP session is whole (cadip_session.judge): every channel, not the first final block."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from proseo.interfaces.cadip_session import BlockFile, Quality, judge, latest_blocks

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _f(channel: int, block: int, *, final: bool = False, size: int = 10, minute: int = 0) -> BlockFile:
    return BlockFile(
        f"{channel}-{block}-{minute}",
        f"c{channel}b{block}",
        channel,
        block,
        final,
        size,
        T0 + timedelta(minutes=minute),
    )


def _whole(channel: int, blocks: int) -> list[BlockFile]:
    return [_f(channel, b, final=b == blocks) for b in range(1, blocks + 1)]


def test_two_whole_channels_with_matching_totals_are_whole_blocks_in_order() -> None:
    files = list(reversed(_whole(1, 3) + _whole(2, 2)))
    verdict = judge(2, files, [Quality(1, 3, 30), Quality(2, 2, 20)])
    assert verdict.whole
    assert [f.block for f in verdict.blocks[1]] == [1, 2, 3] and [f.block for f in verdict.blocks[2]] == [
        1,
        2,
    ]


def test_one_channel_final_is_not_enough() -> None:
    verdict = judge(2, [*_whole(1, 2), _f(2, 1)], [Quality(1, 2, 20)])
    assert verdict.reasons == ["channel 2: final block not in yet (1 blocks so far)"]


@pytest.mark.parametrize(
    ("files", "quality", "reason"),
    [
        ([_f(1, 1), _f(1, 4, final=True)], [Quality(1, 4, 40)], "channel 1: blocks 2-3 of 1..4 not in yet"),
        ([*_whole(1, 2), _f(1, 5)], [Quality(1, 3, 30)], "channel 1: blocks 5 outside 1..2 (final block 2)"),
        (_whole(1, 2), [], "channel 1: no QualityInfo yet"),
        (
            _whole(1, 2),
            [Quality(1, 3, 20)],
            "channel 1: QualityInfo totals 3 chunks, 20 bytes; arrived 2 chunks, 20 bytes",
        ),
        (
            [_f(1, 1, final=True), _f(1, 2, final=True)],
            [Quality(1, 2, 20)],
            "channel 1: several final blocks (1, 2)",
        ),
        ([*_whole(1, 1), _f(3, 1)], [Quality(1, 1, 10)], "file c3b1: channel 3 outside 1..1"),
    ],
)
def test_what_keeps_a_channel_pending(files: list[BlockFile], quality: list[Quality], reason: str) -> None:
    assert reason in judge(1, files, quality).reasons


def test_a_retransferred_block_replaces_the_earlier_one() -> None:
    old, new = _f(1, 1, size=7, minute=0), _f(1, 1, size=10, minute=5)
    assert latest_blocks([new, old]) == [new]
    assert judge(1, [old, new, _f(1, 2, final=True)], [Quality(1, 2, 20)]).whole


def test_no_channels_is_never_whole() -> None:
    assert judge(0, [], []).reasons == ["NumChannels is 0"]


def test_an_entity_with_a_wrong_type_is_named() -> None:
    with pytest.raises(ValueError, match="BlockNumber is '1', expected int"):
        BlockFile.of(
            {"Id": "x", "Name": "n", "Channel": 1, "BlockNumber": "1", "FinalBlock": False, "Size": 1}
        )
