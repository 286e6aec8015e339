"""Rule validation and DST-correct expansion (pure functions, no database)."""

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.scheduling.rules import (
    RuleError,
    RuleSpec,
    expand_rule,
    nominal_period_minutes,
    validate_rule,
)

PARIS = ZoneInfo("Europe/Paris")


def spec(**over):
    base = {
        "rrule": "FREQ=DAILY",
        "start_time": time(17),
        "end_time": time(19),
        "slot_minutes": 60,
        "valid_from": date(2026, 1, 1),
        "valid_until": None,
    }
    return RuleSpec(**{**base, **over})


def window(d1: date, d2: date, tz=PARIS):
    return datetime.combine(d1, time(), tz), datetime.combine(d2, time(), tz)


def local_slots(rule: RuleSpec, tz: ZoneInfo, start: datetime, end: datetime):
    """expand_rule's UTC instants shown in `tz`, as a person reads them."""
    return [(s.astimezone(tz), e.astimezone(tz)) for s, e in expand_rule(rule, tz, start, end)]


def test_nominal_period_wraps_past_midnight():
    assert nominal_period_minutes(time(17), time(19)) == 120
    assert nominal_period_minutes(time(20), time(8)) == 720
    assert nominal_period_minutes(time(0), time(0)) == 24 * 60


def test_17h_stays_17h_across_the_march_change():
    slots = local_slots(spec(), PARIS, *window(date(2027, 3, 27), date(2027, 3, 30)))
    firsts = [s for s, _ in slots if s.hour == 17]
    assert [s.isoformat() for s in firsts] == [
        "2027-03-27T17:00:00+01:00",
        "2027-03-28T17:00:00+02:00",
        "2027-03-29T17:00:00+02:00",
    ]


def test_17h_stays_17h_across_the_october_change():
    slots = local_slots(spec(), PARIS, *window(date(2026, 10, 24), date(2026, 10, 27)))
    assert [s.isoformat() for s, _ in slots if s.hour == 17] == [
        "2026-10-24T17:00:00+02:00",
        "2026-10-25T17:00:00+01:00",
        "2026-10-26T17:00:00+01:00",
    ]


def _night(day: date) -> int:
    rule = spec(start_time=time(20), end_time=time(8), slot_minutes=60)
    start = datetime.combine(day, time(12), PARIS)
    return len(local_slots(rule, PARIS, start, start + timedelta(days=1)))


def test_overnight_period_is_13_hours_when_clocks_go_back():
    assert _night(date(2026, 10, 24)) == 13


def test_overnight_period_is_11_hours_when_clocks_go_forward():
    assert _night(date(2027, 3, 27)) == 11


def test_overnight_period_is_12_hours_on_an_ordinary_night():
    assert _night(date(2026, 11, 24)) == 12


def test_slots_are_consecutive_in_absolute_time():
    rule = spec(start_time=time(20), end_time=time(8), slot_minutes=30)
    start = datetime.combine(date(2026, 10, 24), time(12), PARIS)
    slots = local_slots(rule, PARIS, start, start + timedelta(days=1))
    for (_, end), (next_start, _) in itertools.pairwise(slots):
        assert end == next_start
    assert slots[-1][1].isoformat() == "2026-10-25T08:00:00+01:00"


def test_slots_are_utc_instants_each_one_step_long_when_clocks_go_back():
    rule = spec(start_time=time(20), end_time=time(8), slot_minutes=30)
    start = datetime.combine(date(2027, 10, 30), time(12), PARIS)
    slots = expand_rule(rule, PARIS, start, start + timedelta(days=1))
    assert all(s.tzinfo is UTC and e.tzinfo is UTC for s, e in slots)
    assert all(e - s == timedelta(minutes=30) for s, e in slots)
    assert len(set(slots)) == len(slots) == 26
    assert [s.astimezone(PARIS).isoformat() for s, _ in slots[12:16]] == [
        "2027-10-31T02:00:00+02:00",
        "2027-10-31T02:30:00+02:00",
        "2027-10-31T02:00:00+01:00",
        "2027-10-31T02:30:00+01:00",
    ]


@pytest.mark.parametrize(
    ("zone", "offset"), [("Indian/Reunion", "+04:00"), ("America/Cayenne", "-03:00")]
)
def test_overseas_zones(zone, offset):
    tz = ZoneInfo(zone)
    slots = local_slots(spec(), tz, *window(date(2027, 3, 27), date(2027, 3, 30), tz))
    assert slots and all(s.isoformat().endswith(offset) and s.hour in (17, 18) for s, _ in slots)


def test_validity_bounds_are_inclusive():
    rule = spec(valid_from=date(2026, 12, 2), valid_until=date(2026, 12, 4))
    slots = local_slots(rule, PARIS, *window(date(2026, 12, 1), date(2026, 12, 10)))
    assert sorted({s.date() for s, _ in slots}) == [date(2026, 12, d) for d in (2, 3, 4)]


def test_count_counts_from_valid_from():
    rule = spec(rrule="FREQ=DAILY;COUNT=3", valid_from=date(2026, 12, 1))
    slots = local_slots(rule, PARIS, *window(date(2026, 12, 2), date(2026, 12, 10)))
    assert sorted({s.date() for s, _ in slots}) == [date(2026, 12, 2), date(2026, 12, 3)]


def test_until_in_the_rrule_is_honoured():
    rule = spec(rrule="FREQ=DAILY;UNTIL=20261203", valid_from=date(2026, 12, 1))
    slots = local_slots(rule, PARIS, *window(date(2026, 12, 1), date(2026, 12, 10)))
    assert max(s.date() for s, _ in slots) == date(2026, 12, 3)


def test_weekly_byday():
    rule = spec(rrule="RRULE:FREQ=WEEKLY;BYDAY=MO,TH")
    slots = local_slots(rule, PARIS, *window(date(2026, 11, 30), date(2026, 12, 7)))
    assert sorted({s.strftime("%a") for s, _ in slots}) == ["Mon", "Thu"]


def test_window_clips_slots_that_start_before_it():
    start = datetime(2026, 12, 1, 18, 0, tzinfo=PARIS)
    slots = local_slots(spec(), PARIS, start, start + timedelta(hours=3))
    assert [s.hour for s, _ in slots] == [18]


def test_overnight_period_started_the_day_before_the_window_is_included():
    rule = spec(start_time=time(20), end_time=time(8))
    start = datetime(2026, 12, 2, 6, 0, tzinfo=PARIS)
    slots = local_slots(rule, PARIS, start, start + timedelta(hours=3))
    assert [s.hour for s, _ in slots] == [6, 7]


def test_window_in_another_zone_is_converted():
    start = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # 17:00 in Paris
    slots = local_slots(spec(), PARIS, start, start + timedelta(hours=2))
    assert [s.isoformat() for s, _ in slots] == [
        "2026-12-01T17:00:00+01:00",
        "2026-12-01T18:00:00+01:00",
    ]


def _error(**over) -> RuleError:
    with pytest.raises(RuleError) as info:
        validate_rule(spec(**over), max_slots=2000, horizon_days=14)
    return info.value


def test_valid_rule_passes():
    validate_rule(spec(rrule="FREQ=WEEKLY;BYDAY=MO,TU"), max_slots=2000, horizon_days=14)


@pytest.mark.parametrize("bad", ["FREQ=SOMETIMES", "hello", "FREQ=DAILY;BYDAY=XX", ""])
def test_unparsable_rrule(bad):
    assert _error(rrule=bad).field == "rrule"


def test_dtstart_is_refused():
    error = _error(rrule="DTSTART:20260101T080000\nRRULE:FREQ=DAILY")
    assert error.field == "rrule" and "DTSTART" in error.message


def test_sub_daily_frequency_is_refused():
    assert _error(rrule="FREQ=HOURLY").field == "rrule"


def test_byhour_is_refused():
    assert "BYHOUR" in _error(rrule="FREQ=DAILY;BYHOUR=8").message


def test_slot_length_must_divide_the_period():
    error = _error(slot_minutes=25)
    assert error.field == "slot_minutes" and "120" in error.message
    validate_rule(spec(slot_minutes=20), max_slots=2000, horizon_days=14)
    assert (
        len(
            local_slots(spec(slot_minutes=20), PARIS, *window(date(2026, 12, 1), date(2026, 12, 2)))
        )
        == 6
    )


def test_validity_end_before_start():
    assert _error(valid_until=date(2025, 1, 1)).field == "valid_until"


def test_times_must_be_whole_minutes():
    assert _error(start_time=time(17, 0, 30)).field == "start_time"


def test_too_many_slots():
    error = _error(start_time=time(0), end_time=time(0), slot_minutes=5)
    assert error.field == "rrule" and "at most 2000" in error.message
