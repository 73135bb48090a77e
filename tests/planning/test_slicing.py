"""Cutting an order's window into slices: orbits, UTC calendar units, fixed time slices."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from proseo.missions.orbits import Orbit
from proseo.missions.types import SlicingType
from proseo.planning import slicing
from proseo.planning.slicing import Slice, SlicingError, make_slices, orbit_range, orbits_in

PERIOD = timedelta(minutes=101)
EPOCH = datetime(2025, 3, 1, tzinfo=UTC)
FIRST = 37000


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_orbits(count: int = 40, epoch: datetime = EPOCH, first: int = FIRST) -> list[Orbit]:
    return [Orbit(first + i, epoch + i * PERIOD, epoch + (i + 1) * PERIOD) for i in range(count)]


ORBITS = make_orbits()


def orbit(number: int) -> Orbit:
    return ORBITS[number - FIRST]


def numbers(slices: list[Slice]) -> list[int | None]:
    return [s.orbit for s in slices]


def bounds(slices: list[Slice]) -> list[tuple[datetime, datetime]]:
    return [(s.start, s.stop) for s in slices]


# --- ORBIT -------------------------------------------------------------------------


class TestOrbitSlicing:
    def test_window_inside_one_orbit_gives_that_orbit(self) -> None:
        o = orbit(37003)
        got = make_slices(
            SlicingType.ORBIT, o.start + timedelta(minutes=10), o.start + timedelta(minutes=20), orbits=ORBITS
        )
        assert got == [Slice(o.start, o.stop, 37003)]

    def test_slices_carry_orbit_bounds_and_numbers(self) -> None:
        start = orbit(37002).start + timedelta(minutes=50)
        stop = orbit(37004).start + timedelta(minutes=1)
        got = make_slices("ORBIT", start, stop, orbits=ORBITS)
        assert numbers(got) == [37002, 37003, 37004]
        assert bounds(got) == [(orbit(n).start, orbit(n).stop) for n in (37002, 37003, 37004)]
        assert [s.label for s in got] == ["orbit 37002", "orbit 37003", "orbit 37004"]

    def test_window_equal_to_an_orbit_excludes_neighbours_that_only_touch_it(self) -> None:
        o = orbit(37010)
        got = make_slices(SlicingType.ORBIT, o.start, o.stop, orbits=ORBITS)
        assert numbers(got) == [37010]

    def test_window_starting_at_an_orbit_end_excludes_that_orbit(self) -> None:
        start = orbit(37005).stop  # == orbit 37006's start
        got = make_slices(SlicingType.ORBIT, start, start + timedelta(minutes=5), orbits=ORBITS)
        assert numbers(got) == [37006]

    def test_window_stopping_at_an_orbit_start_excludes_that_orbit(self) -> None:
        stop = orbit(37008).start
        got = make_slices(SlicingType.ORBIT, stop - timedelta(minutes=5), stop, orbits=ORBITS)
        assert numbers(got) == [37007]

    def test_zero_length_window_takes_the_orbit_holding_it(self) -> None:
        t = orbit(37012).start + timedelta(minutes=33)
        assert numbers(make_slices(SlicingType.ORBIT, t, t, orbits=ORBITS)) == [37012]

    def test_zero_length_window_on_a_boundary_takes_the_orbit_starting_there(self) -> None:
        t = orbit(37012).start
        assert numbers(make_slices(SlicingType.ORBIT, t, t, orbits=ORBITS)) == [37012]

    def test_a_utc_day_takes_every_orbit_touching_it(self) -> None:
        # 1440 min / 101 min: orbits 0..14 start before midnight; 37014 runs into the next day.
        got = make_slices(SlicingType.ORBIT, utc(2025, 3, 1), utc(2025, 3, 2), orbits=ORBITS)
        assert numbers(got) == list(range(37000, 37015))
        assert got[-1].stop > utc(2025, 3, 2)

    def test_window_partly_before_the_first_orbit_starts_at_the_first_orbit(self) -> None:
        got = make_slices(
            SlicingType.ORBIT, EPOCH - timedelta(days=1), EPOCH + timedelta(minutes=1), orbits=ORBITS
        )
        assert numbers(got) == [37000]

    @pytest.mark.parametrize(
        ("start", "stop"),
        [
            (EPOCH - timedelta(days=2), EPOCH - timedelta(days=1)),
            (EPOCH - timedelta(hours=1), EPOCH),  # touches the first orbit only
            (ORBITS[-1].stop, ORBITS[-1].stop + timedelta(hours=1)),  # touches the last one only
            (ORBITS[-1].stop, ORBITS[-1].stop),  # zero length, after the table
            (EPOCH - timedelta(hours=1), EPOCH - timedelta(hours=1)),
        ],
    )
    def test_no_orbit_in_the_window_is_an_error(self, start: datetime, stop: datetime) -> None:
        with pytest.raises(SlicingError, match="no orbit intersects"):
            make_slices(SlicingType.ORBIT, start, stop, orbits=ORBITS)

    def test_mission_without_orbits_is_an_error(self) -> None:
        with pytest.raises(SlicingError, match="needs the mission's orbits"):
            make_slices(SlicingType.ORBIT, utc(2025, 3, 1), utc(2025, 3, 2))
        with pytest.raises(SlicingError, match="needs the mission's orbits"):
            make_slices(SlicingType.ORBIT, utc(2025, 3, 1), utc(2025, 3, 2), orbits=[])


class TestOrbitsIn:
    def test_empty_table(self) -> None:
        assert orbits_in([], utc(2025, 3, 1), utc(2025, 3, 2)) == []

    def test_returns_orbit_objects_in_order(self) -> None:
        got = orbits_in(ORBITS, orbit(37001).start, orbit(37003).stop)
        assert got == [orbit(37001), orbit(37002), orbit(37003)]

    def test_matches_a_brute_force_definition_on_every_boundary(self) -> None:
        """Bisection agrees with the definition for windows built from boundaries and their neighbours."""
        table = make_orbits(8)
        one = timedelta(minutes=1)
        points = sorted(
            {t + d for o in table for t in (o.start, o.stop) for d in (-one, timedelta(0), one)}
            | {o.start + PERIOD / 2 for o in table}
        )
        checked = 0
        for i, start in enumerate(points):
            for stop in points[i:]:
                if stop == start:
                    expected = [o for o in table if o.start <= start < o.stop]
                else:
                    expected = [o for o in table if o.start < stop and o.stop > start]
                assert orbits_in(table, start, stop) == expected, (start, stop)
                checked += 1
        assert checked == len(points) * (len(points) + 1) // 2 > 500


class TestOrbitRange:
    def test_inclusive_range_in_order(self) -> None:
        assert orbit_range(ORBITS, 37002, 37004) == [orbit(37002), orbit(37003), orbit(37004)]

    def test_single_orbit(self) -> None:
        assert orbit_range(ORBITS, 37007, 37007) == [orbit(37007)]

    def test_whole_table(self) -> None:
        assert orbit_range(ORBITS, FIRST, FIRST + len(ORBITS) - 1) == ORBITS

    def test_reversed_range_is_an_error(self) -> None:
        with pytest.raises(SlicingError, match=r"orbit range 37004\.\.37002 is empty"):
            orbit_range(ORBITS, 37004, 37002)

    def test_first_orbit_unknown(self) -> None:
        with pytest.raises(
            SlicingError, match=r"orbit 36999 is not in the mission's orbit table \(known: 37000\.\.37039\)"
        ):
            orbit_range(ORBITS, 36999, 37003)

    def test_last_orbit_unknown(self) -> None:
        with pytest.raises(SlicingError, match=r"orbit 37040 is not in .*known: 37000\.\.37039"):
            orbit_range(ORBITS, 37030, 37040)

    def test_no_orbits_at_all(self) -> None:
        with pytest.raises(SlicingError, match=r"orbit 1 is not in .*known: none"):
            orbit_range([], 1, 2)


# --- calendar slicing ------------------------------------------------------------------


def calendar(kind: str, start: datetime, stop: datetime) -> list[tuple[datetime, datetime]]:
    got = make_slices(kind, start, stop)
    assert all(s.orbit is None for s in got)
    assert all(s.start.tzinfo is UTC and s.stop.tzinfo is UTC for s in got)
    # Calendar slices tile time: each starts where the previous one stopped.
    assert all(a.stop == b.start for a, b in itertools.pairwise(got))
    return bounds(got)


class TestCalendarDay:
    def test_part_of_a_day_gives_the_whole_day(self) -> None:
        assert calendar("CALENDAR_DAY", utc(2025, 3, 1, 10), utc(2025, 3, 1, 12)) == [
            (utc(2025, 3, 1), utc(2025, 3, 2))
        ]

    def test_exactly_one_day_gives_one_slice(self) -> None:
        assert calendar("CALENDAR_DAY", utc(2025, 3, 1), utc(2025, 3, 2)) == [
            (utc(2025, 3, 1), utc(2025, 3, 2))
        ]

    def test_zero_length_window_gives_its_day(self) -> None:
        t = utc(2025, 3, 1, 17, 45)
        assert calendar("CALENDAR_DAY", t, t) == [(utc(2025, 3, 1), utc(2025, 3, 2))]

    def test_one_second_into_the_next_day_adds_that_day(self) -> None:
        got = calendar("CALENDAR_DAY", utc(2025, 3, 1), utc(2025, 3, 2, 0, 0, 1))
        assert got == [(utc(2025, 3, 1), utc(2025, 3, 2)), (utc(2025, 3, 2), utc(2025, 3, 3))]

    def test_days_across_a_month_end(self) -> None:
        got = calendar("CALENDAR_DAY", utc(2025, 2, 27, 12), utc(2025, 3, 2, 6))
        assert [s for s, _ in got] == [utc(2025, 2, 27), utc(2025, 2, 28), utc(2025, 3, 1), utc(2025, 3, 2)]
        assert got[-1][1] == utc(2025, 3, 3)

    def test_days_across_a_year_end(self) -> None:
        got = calendar("CALENDAR_DAY", utc(2024, 12, 31, 23), utc(2025, 1, 1, 1))
        assert got == [(utc(2024, 12, 31), utc(2025, 1, 1)), (utc(2025, 1, 1), utc(2025, 1, 2))]

    def test_leap_day_is_a_slice(self) -> None:
        got = calendar("CALENDAR_DAY", utc(2024, 2, 28, 12), utc(2024, 3, 1, 1))
        assert [s for s, _ in got] == [utc(2024, 2, 28), utc(2024, 2, 29), utc(2024, 3, 1)]

    def test_labels_are_utc_intervals(self) -> None:
        (piece,) = make_slices("CALENDAR_DAY", utc(2025, 3, 1, 5), utc(2025, 3, 1, 6))
        assert piece.label == "2025-03-01T00:00:00Z/2025-03-02T00:00:00Z"

    def test_aware_non_utc_window_is_sliced_on_utc_days(self) -> None:
        plus2 = timezone(timedelta(hours=2))
        # 2025-02-28T23:00Z .. 2025-03-01T01:00Z: touches two UTC days.
        got = make_slices(
            "CALENDAR_DAY", datetime(2025, 3, 1, 1, tzinfo=plus2), datetime(2025, 3, 1, 3, tzinfo=plus2)
        )
        assert bounds(got) == [(utc(2025, 2, 28), utc(2025, 3, 1)), (utc(2025, 3, 1), utc(2025, 3, 2))]


class TestCalendarMonth:
    def test_window_across_two_month_ends(self) -> None:
        got = calendar("CALENDAR_MONTH", utc(2025, 1, 31, 22), utc(2025, 3, 1, 1))
        assert got == [
            (utc(2025, 1, 1), utc(2025, 2, 1)),
            (utc(2025, 2, 1), utc(2025, 3, 1)),
            (utc(2025, 3, 1), utc(2025, 4, 1)),
        ]

    def test_window_ending_on_a_month_boundary_does_not_add_the_next_month(self) -> None:
        got = calendar("CALENDAR_MONTH", utc(2025, 1, 31, 22), utc(2025, 3, 1))
        assert got == [(utc(2025, 1, 1), utc(2025, 2, 1)), (utc(2025, 2, 1), utc(2025, 3, 1))]

    def test_december_rolls_over_into_january(self) -> None:
        got = calendar("CALENDAR_MONTH", utc(2024, 12, 15), utc(2025, 1, 15))
        assert got == [(utc(2024, 12, 1), utc(2025, 1, 1)), (utc(2025, 1, 1), utc(2025, 2, 1))]

    def test_november_is_followed_by_december_of_the_same_year(self) -> None:
        got = calendar("CALENDAR_MONTH", utc(2025, 11, 20), utc(2025, 12, 5))
        assert got == [(utc(2025, 11, 1), utc(2025, 12, 1)), (utc(2025, 12, 1), utc(2026, 1, 1))]

    def test_leap_february_has_29_days(self) -> None:
        ((start, stop),) = calendar("CALENDAR_MONTH", utc(2024, 2, 10), utc(2024, 2, 11))
        assert (start, stop) == (utc(2024, 2, 1), utc(2024, 3, 1))
        assert stop - start == timedelta(days=29)

    def test_common_february_has_28_days(self) -> None:
        ((start, stop),) = calendar("CALENDAR_MONTH", utc(2025, 2, 10), utc(2025, 2, 11))
        assert stop - start == timedelta(days=28)

    def test_a_whole_year_of_months(self) -> None:
        got = calendar("CALENDAR_MONTH", utc(2025, 1, 1), utc(2026, 1, 1))
        assert [s.month for s, _ in got] == list(range(1, 13))
        assert sum((b - a for a, b in got), timedelta(0)) == timedelta(days=365)

    def test_zero_length_window_gives_its_month(self) -> None:
        t = utc(2025, 7, 31, 23, 59)
        assert calendar("CALENDAR_MONTH", t, t) == [(utc(2025, 7, 1), utc(2025, 8, 1))]


class TestCalendarYear:
    def test_part_of_a_year(self) -> None:
        assert calendar("CALENDAR_YEAR", utc(2025, 3, 1), utc(2025, 4, 1)) == [
            (utc(2025, 1, 1), utc(2026, 1, 1))
        ]

    def test_across_a_year_end(self) -> None:
        got = calendar("CALENDAR_YEAR", utc(2024, 6, 1), utc(2026, 1, 1, 0, 0, 1))
        assert got == [
            (utc(2024, 1, 1), utc(2025, 1, 1)),
            (utc(2025, 1, 1), utc(2026, 1, 1)),
            (utc(2026, 1, 1), utc(2027, 1, 1)),
        ]

    def test_stop_on_new_year_does_not_add_the_next_year(self) -> None:
        got = calendar("CALENDAR_YEAR", utc(2024, 6, 1), utc(2026, 1, 1))
        assert [s.year for s, _ in got] == [2024, 2025]

    def test_leap_year_length(self) -> None:
        ((start, stop),) = calendar("CALENDAR_YEAR", utc(2024, 2, 29), utc(2024, 2, 29))
        assert stop - start == timedelta(days=366)


# --- TIME_SLICE ----------------------------------------------------------------------


class TestTimeSlice:
    def test_slices_lie_on_the_grid_from_midnight_not_on_the_window_start(self) -> None:
        start = utc(2025, 3, 1, 10, 17)  # not aligned to any clock boundary
        got = make_slices("TIME_SLICE", start, start + timedelta(hours=6), duration=timedelta(hours=2))
        assert bounds(got) == [(utc(2025, 3, 1, h), utc(2025, 3, 1, h + 2)) for h in (10, 12, 14, 16)]
        assert numbers(got) == [None, None, None, None]

    def test_orders_starting_at_different_times_cut_identical_slices(self) -> None:
        hour = timedelta(hours=1)
        early = make_slices("TIME_SLICE", utc(2025, 3, 1, 0, 30), utc(2025, 3, 1, 4), duration=hour)
        late = make_slices("TIME_SLICE", utc(2025, 3, 1, 1, 50), utc(2025, 3, 1, 5, 10), duration=hour)
        # An hourly mission ordered from 00:30 runs 00:00-01:00, ..., never 00:30-01:30.
        assert bounds(early) == [(utc(2025, 3, 1, h), utc(2025, 3, 1, h + 1)) for h in range(4)]
        assert set(early) & set(late) == {s for s in late if s.start < utc(2025, 3, 1, 4)}
        assert bounds(late)[0] == (utc(2025, 3, 1, 1), utc(2025, 3, 1, 2))

    def test_the_anchor_places_the_grid(self) -> None:
        anchor = utc(2024, 1, 1, 0, 15)  # scans start a quarter past each hour
        got = make_slices(
            "TIME_SLICE",
            utc(2025, 3, 1, 0, 30),
            utc(2025, 3, 1, 2, 15),
            duration=timedelta(hours=1),
            anchor=anchor,
        )
        assert bounds(got) == [
            (utc(2025, 3, 1, 0, 15), utc(2025, 3, 1, 1, 15)),
            (utc(2025, 3, 1, 1, 15), utc(2025, 3, 1, 2, 15)),
        ]
        # A window before the anchor lies on the same grid.
        before = make_slices(
            "TIME_SLICE", utc(2023, 6, 1, 7), utc(2023, 6, 1, 7), duration=timedelta(hours=1), anchor=anchor
        )
        assert bounds(before) == [(utc(2023, 6, 1, 6, 15), utc(2023, 6, 1, 7, 15))]

    def test_a_slice_longer_than_a_day_keeps_its_grid(self) -> None:
        week = timedelta(days=7)
        a = make_slices("TIME_SLICE", utc(2025, 3, 3), utc(2025, 3, 4), duration=week)
        b = make_slices("TIME_SLICE", utc(2025, 3, 5, 12), utc(2025, 3, 6), duration=week)
        assert a == b and len(a) == 1
        assert (a[0].start - slicing.DEFAULT_ANCHOR) % week == timedelta(0)

    def test_last_slice_may_run_past_the_stop(self) -> None:
        start = utc(2025, 3, 1)
        got = make_slices("TIME_SLICE", start, start + timedelta(hours=5), duration=timedelta(hours=2))
        assert len(got) == 3
        assert got[-1].stop == start + timedelta(hours=6)

    def test_half_the_overlap_at_each_end(self) -> None:
        start = utc(2025, 3, 1)
        got = make_slices(
            SlicingType.TIME_SLICE,
            start,
            start + timedelta(hours=3),
            duration=timedelta(hours=1),
            overlap=timedelta(minutes=20),
        )
        ten = timedelta(minutes=10)
        assert bounds(got) == [
            (start + timedelta(hours=h) - ten, start + timedelta(hours=h + 1) + ten) for h in range(3)
        ]
        # Neighbours overlap by the whole overlap.
        assert all(a.stop - b.start == timedelta(minutes=20) for a, b in itertools.pairwise(got))

    def test_zero_length_window_gives_one_slice(self) -> None:
        t = utc(2025, 3, 1, 12)
        got = make_slices("TIME_SLICE", t, t, duration=timedelta(minutes=30))
        assert bounds(got) == [(t, t + timedelta(minutes=30))]

    def test_without_duration_is_an_error(self) -> None:
        with pytest.raises(SlicingError, match="TIME_SLICE needs a slice duration"):
            make_slices("TIME_SLICE", utc(2025, 3, 1), utc(2025, 3, 2))

    @pytest.mark.parametrize("duration", [timedelta(0), timedelta(seconds=-1)])
    def test_non_positive_duration_is_an_error(self, duration: timedelta) -> None:
        with pytest.raises(SlicingError, match="positive slice duration"):
            make_slices("TIME_SLICE", utc(2025, 3, 1), utc(2025, 3, 2), duration=duration)


# --- NONE, common checks ----------------------------------------------------------------


class TestNoneAndCommon:
    def test_none_gives_the_window_itself(self) -> None:
        start, stop = utc(2025, 3, 1, 3), utc(2025, 3, 4, 5)
        assert make_slices("NONE", start, stop, orbits=ORBITS, duration=timedelta(hours=1)) == [
            Slice(start, stop)
        ]

    def test_none_accepts_a_zero_length_window(self) -> None:
        t = utc(2025, 3, 1)
        assert make_slices(SlicingType.NONE, t, t) == [Slice(t, t)]

    @pytest.mark.parametrize("kind", list(SlicingType))
    def test_stop_before_start_is_an_error_for_every_kind(self, kind: SlicingType) -> None:
        start, stop = utc(2025, 3, 2), utc(2025, 3, 1)
        with pytest.raises(SlicingError, match="before it starts") as info:
            make_slices(kind, start, stop, duration=timedelta(hours=1), orbits=ORBITS)
        assert stop.isoformat() in str(info.value)
        assert start.isoformat() in str(info.value)

    def test_unknown_kind_is_refused(self) -> None:
        with pytest.raises(ValueError, match="WEEKLY"):
            make_slices("WEEKLY", utc(2025, 3, 1), utc(2025, 3, 2))

    def test_slicing_error_is_a_value_error(self) -> None:
        assert issubclass(SlicingError, ValueError)

    def test_slice_count_guard(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(slicing, "MAX_SLICES", 5)
        assert len(make_slices("CALENDAR_DAY", utc(2025, 3, 1), utc(2025, 3, 6))) == 5
        with pytest.raises(SlicingError, match="more than 5 slices"):
            make_slices("CALENDAR_DAY", utc(2025, 3, 1), utc(2025, 3, 7))
        with pytest.raises(SlicingError, match="more than 5 slices"):
            make_slices("TIME_SLICE", utc(2025, 3, 1), utc(2025, 3, 1, 6), duration=timedelta(hours=1))

    def test_slices_sort_by_start(self) -> None:
        a = Slice(utc(2025, 3, 2), utc(2025, 3, 3))
        b = Slice(utc(2025, 3, 1), utc(2025, 3, 4))
        assert sorted([a, b]) == [b, a]

    def test_orbit_label_wins_over_times(self) -> None:
        assert Slice(utc(2025, 3, 1), utc(2025, 3, 2), 0).label == "orbit 0"
