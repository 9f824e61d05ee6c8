"""herald.timeparse: schedule times -> aware UTC, DST-correct, never the server's timezone."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from herald.timeparse import (
    iso_ms,
    localize,
    parse_iso_datetime,
    parse_publish_time,
    resolve_timezone,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- resolve_timezone -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"])
def test_resolve_timezone_accepts_iana_names(name: str) -> None:
    assert resolve_timezone(name).key == name


def test_resolve_timezone_ignores_surrounding_whitespace() -> None:
    assert resolve_timezone("  Europe/Paris ").key == "Europe/Paris"


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus_Mons",
        "",
        "   ",
        "America",  # a directory of the tz database, not a zone
        "../../etc/passwd",
        "/etc/localtime",
        "localtime",  # the host's zone: exactly what Herald must never use
        "posixrules",
        "europe/paris",
    ],
)
def test_resolve_timezone_refuses_anything_else(name: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        resolve_timezone(name)
    assert str(excinfo.value) == (
        f"unknown timezone {name.strip()!r} (use an IANA name such as Europe/Paris)"
    )


def test_resolve_timezone_refuses_non_strings() -> None:
    with pytest.raises(ValueError, match="timezone must be a string"):
        resolve_timezone(3)  # type: ignore[arg-type]


# --- explicit offsets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-01T18:00:00Z", utc(2026, 6, 1, 18)),
        ("2026-06-01T18:00:00z", utc(2026, 6, 1, 18)),
        ("2026-06-01T18:00Z", utc(2026, 6, 1, 18)),
        ("2026-06-01T14:00:00-04:00", utc(2026, 6, 1, 18)),
        ("2026-06-01T23:30:00+05:30", utc(2026, 6, 1, 18)),
        ("2026-06-01T23:30:00+0530", utc(2026, 6, 1, 18)),
        ("2026-06-01T20:00:00+02", utc(2026, 6, 1, 18)),
        ("2026-06-01 18:00:00.250Z", utc(2026, 6, 1, 18, 0, 0, 250_000)),
        ("2026-06-02T03:00:00+09:00", utc(2026, 6, 1, 18)),
    ],
)
def test_offsets_give_that_instant(value: str, expected: datetime) -> None:
    result = parse_publish_time(value, PARIS)
    assert result == expected
    assert result.tzinfo is UTC


def test_explicit_offset_wins_over_the_schedule_timezone() -> None:
    # 14:00-04:00 is 18:00Z whatever zone the schedule names.
    for tz in (PARIS, NEW_YORK, ZoneInfo("Asia/Tokyo")):
        assert parse_publish_time("2026-06-01T14:00:00-04:00", tz) == utc(2026, 6, 1, 18)
        assert parse_publish_time("2026-06-01T18:00:00Z", tz) == utc(2026, 6, 1, 18)


# --- offset-less times: wall clock in the schedule's zone -------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-15T09:00:00", utc(2026, 1, 15, 14)),  # EST, UTC-5
        ("2026-07-15T09:00:00", utc(2026, 7, 15, 13)),  # EDT, UTC-4
        ("2026-07-15 09:00", utc(2026, 7, 15, 13)),
        ("2026-07-15t09:00", utc(2026, 7, 15, 13)),
        ("  2026-07-15T09:00:00  ", utc(2026, 7, 15, 13)),
        ("2026-07-15T09:00:05.5", utc(2026, 7, 15, 13, 0, 5, 500_000)),
        ("2026-07-15T09:00:05,123456", utc(2026, 7, 15, 13, 0, 5, 123_456)),
        ("2026-07-15T09:00:05.123456789", utc(2026, 7, 15, 13, 0, 5, 123_456)),  # truncated
    ],
)
def test_new_york_wall_time_in_winter_and_summer(value: str, expected: datetime) -> None:
    result = parse_publish_time(value, NEW_YORK)
    assert result == expected
    assert result.tzinfo is UTC


def test_same_wall_time_means_different_instants_in_different_zones() -> None:
    assert parse_publish_time("2026-06-01T18:00", ZoneInfo("UTC")) == utc(2026, 6, 1, 18)
    assert parse_publish_time("2026-06-01T18:00", PARIS) == utc(2026, 6, 1, 16)
    assert parse_publish_time("2026-06-01T18:00", ZoneInfo("Asia/Kolkata")) == utc(
        2026, 6, 1, 12, 30
    )


def test_dst_gap_is_an_error_naming_the_gap() -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_publish_time("2026-03-29T02:30:00", PARIS)
    assert str(excinfo.value) == (
        "2026-03-29T02:30:00 does not exist in Europe/Paris "
        "(clocks jump forward from 02:00 to 03:00 on 2026-03-29)"
    )


def test_dst_gap_in_new_york_and_its_edges() -> None:
    with pytest.raises(ValueError, match=r"2026-03-08T02:00:00 does not exist in America/New_York"):
        parse_publish_time("2026-03-08 02:00", NEW_YORK)
    with pytest.raises(ValueError, match="does not exist"):
        parse_publish_time("2026-03-08T02:59:59", NEW_YORK)
    # The last second before the jump and the first after it both exist.
    assert parse_publish_time("2026-03-08T01:59:59", NEW_YORK) == utc(2026, 3, 8, 6, 59, 59)
    assert parse_publish_time("2026-03-08T03:00:00", NEW_YORK) == utc(2026, 3, 8, 7)


def test_a_gap_that_skips_a_whole_day_is_named_with_dates() -> None:
    # Samoa crossed the date line: 2011-12-30 never happened in Pacific/Apia.
    with pytest.raises(ValueError) as excinfo:
        parse_publish_time("2011-12-30T12:00", ZoneInfo("Pacific/Apia"))
    assert str(excinfo.value) == (
        "2011-12-30T12:00:00 does not exist in Pacific/Apia "
        "(clocks jump forward from 2011-12-30 00:00 to 2011-12-31 00:00)"
    )


def test_dst_fold_resolves_to_the_first_occurrence() -> None:
    # 01:30 happens twice on 2026-11-01 in New York: first in EDT (05:30Z), then in EST (06:30Z).
    assert parse_publish_time("2026-11-01T01:30:00", NEW_YORK) == utc(2026, 11, 1, 5, 30)
    # The second occurrence is reachable with an explicit offset.
    assert parse_publish_time("2026-11-01T01:30:00-05:00", NEW_YORK) == utc(2026, 11, 1, 6, 30)


def test_dst_fold_in_paris() -> None:
    assert parse_publish_time("2026-10-25T02:30", PARIS) == utc(2026, 10, 25, 0, 30)


def test_server_timezone_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = [
        parse_publish_time("2026-06-01T18:00:00", ZoneInfo("UTC")),
        parse_publish_time("2026-06-01T18:00:00", NEW_YORK),
        parse_publish_time("2026-11-01T01:30:00", NEW_YORK),
    ]
    monkeypatch.setenv("TZ", "Asia/Kathmandu")  # UTC+05:45: any leak shows up
    time.tzset()
    try:
        assert [
            parse_publish_time("2026-06-01T18:00:00", ZoneInfo("UTC")),
            parse_publish_time("2026-06-01T18:00:00", NEW_YORK),
            parse_publish_time("2026-11-01T01:30:00", NEW_YORK),
        ] == expected
        assert expected[0] == utc(2026, 6, 1, 18)
        assert iso_ms(expected[0]) == "2026-06-01T18:00:00.000Z"
    finally:
        monkeypatch.undo()
        time.tzset()
    assert os.environ.get("TZ") != "Asia/Kathmandu"


# --- what is refused --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty date-time"),
        ("   ", "empty date-time"),
        ("2026-06-01", "'2026-06-01' has no time of day"),
        ("tomorrow at noon", "'tomorrow at noon' is not an ISO 8601 date-time"),
        ("2026-06-01T18", "is not an ISO 8601 date-time"),  # hour only
        ("20260601T180000Z", "is not an ISO 8601 date-time"),  # basic format
        ("2026-W23-1T18:00", "is not an ISO 8601 date-time"),  # week date
        ("2026-6-1T18:00", "is not an ISO 8601 date-time"),
        ("2026-06-01T18:00:00 Europe/Paris", "is not an ISO 8601 date-time"),
        ("2026-06-01T18:00:00+5", "is not an ISO 8601 date-time"),
        ("1780336800", "is not an ISO 8601 date-time"),  # epoch seconds
        ("2026-02-30T10:00", "'2026-02-30T10:00' is not a valid date-time: day is out of range"),
        ("2026-13-01T10:00", "is not a valid date-time: month must be in 1..12"),
        ("2026-06-01T24:00", "is not a valid date-time: hour must be in 0..23"),
        ("2026-06-01T18:60", "is not a valid date-time: minute must be in 0..59"),
        ("2026-06-01T18:00:60", "is not a valid date-time: second must be in 0..59"),
        ("2026-06-01T18:00+24:00", "UTC offset +24:00 is out of range"),
        ("2026-06-01T18:00+05:75", "UTC offset +05:75 is out of range"),
    ],
)
def test_refused_values_say_why(value: str, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_publish_time(value, PARIS)
    assert message in str(excinfo.value)


def test_refusal_shows_an_example_of_what_works() -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 2026-06-01T18:00:00Z"):
        parse_publish_time("next tuesday", PARIS)


def test_long_garbage_is_shortened_in_the_message() -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_publish_time("x" * 10_000, PARIS)
    assert len(str(excinfo.value)) < 200


@pytest.mark.parametrize("value", [None, 1780336800, 17.5, ["2026-06-01T18:00Z"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_publish_time(value, PARIS)  # type: ignore[arg-type]


# --- the two halves ---------------------------------------------------------------------------


def test_parse_iso_datetime_keeps_naive_and_aware_apart() -> None:
    assert parse_iso_datetime("2026-06-01 18:00") == datetime(2026, 6, 1, 18)
    aware = parse_iso_datetime("2026-06-01T18:00:00+02:00")
    assert aware.utcoffset() == timedelta(hours=2)
    assert aware == utc(2026, 6, 1, 16)


def test_localize_refuses_aware_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        localize(utc(2026, 6, 1, 18), PARIS)


# --- iso_ms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt", "expected"),
    [
        (utc(2026, 6, 1, 18), "2026-06-01T18:00:00.000Z"),
        (utc(2026, 6, 1, 18, 0, 5, 123_999), "2026-06-01T18:00:05.123Z"),  # truncated, not rounded
        (utc(2026, 12, 31, 23, 59, 59, 999_999), "2026-12-31T23:59:59.999Z"),
        (
            datetime(2026, 6, 1, 14, tzinfo=timezone(timedelta(hours=-4))),
            "2026-06-01T18:00:00.000Z",
        ),
        (datetime(2026, 6, 1, 20, tzinfo=PARIS), "2026-06-01T18:00:00.000Z"),
        (utc(999, 1, 2, 3, 4, 5), "0999-01-02T03:04:05.000Z"),
    ],
)
def test_iso_ms(dt: datetime, expected: str) -> None:
    assert iso_ms(dt) == expected


def test_iso_ms_round_trips_through_parse() -> None:
    instant = utc(2026, 6, 1, 18, 0, 5, 123_000)
    assert parse_publish_time(iso_ms(instant), PARIS) == instant


def test_iso_ms_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        iso_ms(datetime(2026, 6, 1, 18))
