"""Due-time computation in the subscriber's own time zone, across DST changes."""

import datetime as dt

import pytest

from digests.schedule import Schedule, current_slot, lookback, next_slot, period_label

UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_weekly_default_is_monday_eight_local():
    berlin = Schedule("weekly", 0, 8, "Europe/Berlin")  # 2026-11-30 is a Monday; Berlin is UTC+1
    assert not current_slot(berlin, at(2026, 11, 30, 6, 59)).is_due(at(2026, 11, 30, 6, 59))
    slot = current_slot(berlin, at(2026, 11, 30, 7, 0))
    assert slot.is_due(at(2026, 11, 30, 7, 0))
    assert (slot.period, slot.due_at) == ("2026-W49", at(2026, 11, 30, 7, 0))


def test_missed_tick_is_caught_up_later_in_the_same_period():
    tokyo = Schedule("weekly", 0, 8, "Asia/Tokyo")
    tuesday = at(2026, 12, 1, 12, 0)
    slot = current_slot(tokyo, tuesday)
    assert slot.is_due(tuesday) and slot.period == "2026-W49"
    assert slot.due_at == at(2026, 11, 29, 23, 0)  # Monday 08:00 in Tokyo is Sunday 23:00 UTC


def test_period_is_the_local_week_not_the_utc_week():
    # Sunday 2026-11-29 18:00 UTC is already Monday 08:00 on Kiritimati (UTC+14).
    kiritimati = Schedule("weekly", 0, 8, "Pacific/Kiritimati")
    slot = current_slot(kiritimati, at(2026, 11, 29, 18, 0))
    assert slot.period == "2026-W49" and slot.is_due(at(2026, 11, 29, 18, 0))
    # The same instant is still week 48 (Sunday morning) in Pago Pago (UTC-11).
    assert current_slot(Schedule("weekly", 0, 8, "Pacific/Pago_Pago"), at(2026, 11, 29, 18, 0)).period == "2026-W48"


def test_half_hour_zones():
    kolkata = Schedule("weekly", 3, 8, "Asia/Kolkata")  # Thursday 08:00 IST = 02:30 UTC
    assert current_slot(kolkata, at(2026, 11, 26, 2, 30)).due_at == at(2026, 11, 26, 2, 30)
    assert not current_slot(kolkata, at(2026, 11, 26, 2, 29)).is_due(at(2026, 11, 26, 2, 29))


def test_daily_is_weekdays_only():
    daily = Schedule("daily", 0, 8, "America/New_York")
    friday, saturday = at(2026, 11, 27, 14, 0), at(2026, 11, 28, 14, 0)
    assert current_slot(daily, friday).is_due(friday) and current_slot(daily, friday).period == "2026-11-27"
    assert current_slot(daily, saturday).due_at is None
    assert next_slot(daily, saturday).period == "2026-11-30"  # Monday


def test_dst_spring_forward_skipped_hour_sends_once_after_the_jump():
    # 2027-03-14 02:00 does not exist in New York (clocks jump 02:00 EST -> 03:00 EDT).
    sunday_2am = Schedule("weekly", 6, 2, "America/New_York")
    slot = current_slot(sunday_2am, at(2027, 3, 14, 8, 0))
    assert slot.due_at == at(2027, 3, 14, 7, 0)  # 03:00 EDT, the first moment after the gap
    assert not slot.is_due(at(2027, 3, 14, 6, 59))


def test_dst_fall_back_repeated_hour_is_due_at_its_first_occurrence():
    # 2026-11-01 01:00-02:00 happens twice in New York.
    sunday_1am = Schedule("weekly", 6, 1, "America/New_York")
    first = current_slot(sunday_1am, at(2026, 11, 1, 5, 0))  # 01:00 EDT
    second = current_slot(sunday_1am, at(2026, 11, 1, 6, 0))  # 01:00 EST
    assert first.due_at == at(2026, 11, 1, 5, 0) and first.is_due(at(2026, 11, 1, 5, 0))
    assert first.period == second.period  # same period: the unique row keeps it to one email


@pytest.mark.parametrize(
    ("now", "due_at"),
    [
        (at(2026, 10, 19, 12, 0), at(2026, 10, 19, 6, 0)),  # CEST, UTC+2
        (at(2026, 10, 26, 12, 0), at(2026, 10, 26, 7, 0)),  # CET, UTC+1, after 2026-10-25
    ],
)
def test_same_local_hour_moves_in_utc_across_dst(now, due_at):
    assert current_slot(Schedule("weekly", 0, 8, "Europe/Berlin"), now).due_at == due_at


def test_unknown_zone_counts_as_utc():
    slot = current_slot(Schedule("weekly", 0, 8, "Mars/Olympus_Mons"), at(2026, 11, 30, 8, 0))
    assert slot.due_at == at(2026, 11, 30, 8, 0)


def test_next_slot_is_ahead():
    weekly = Schedule("weekly", 0, 8, "UTC")
    assert next_slot(weekly, at(2026, 11, 30, 7, 0)).period == "2026-W49"
    assert next_slot(weekly, at(2026, 11, 30, 9, 0)).period == "2026-W50"


def test_labels_and_lookback():
    assert period_label("weekly", "2026-W48") == "week of 23 November 2026"
    assert period_label("daily", "2026-11-26") == "Thursday 26 November 2026"
    assert lookback("weekly", "2026-W48") == dt.timedelta(days=7)
    assert lookback("daily", "2026-11-30") == dt.timedelta(days=3)  # Monday: the weekend too
    assert lookback("daily", "2026-11-26") == dt.timedelta(days=1)
