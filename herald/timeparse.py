"""Publish times: from what a schedule says to an aware UTC instant, and back to the API's format.

Herald stores and compares every time in UTC. A schedule's IANA timezone is used only to read
*offset-less* times (``2026-06-01T18:00:00``, ``2026-06-01 18:00``) as wall-clock time in that
zone; a time with ``Z`` or an explicit offset is that instant whatever the timezone says. The
server's own timezone is never consulted (``localtime`` is refused as a timezone name), so the same
schedule means the same instants on every host.

Daylight-saving transitions, read as wall-clock time:

* a time inside the spring-forward gap does not exist and is a ``ValueError`` naming the gap;
* a time inside the fall-back fold happens twice and means the FIRST occurrence (PEP 495
  ``fold=0``, the offset in force before the clocks go back): ``2026-11-01 01:30`` in
  ``America/New_York`` is ``05:30Z``, not ``06:30Z``. Send an explicit offset for the second one.

Accepted syntax (ISO 8601 extended format, deliberately narrower than ``datetime.fromisoformat``):
``YYYY-MM-DD``, then ``T`` or a space, then ``HH:MM``, optional ``:SS`` and a fraction (``.`` or
``,``, 1-9 digits, truncated to microseconds), then an optional ``Z`` or an offset ``±HH:MM``,
``±HHMM`` or ``±HH``.
A date without a time of day is refused rather than guessed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Names that resolve to the host's configuration rather than to a place.
_HOST_ZONE_NAMES = frozenset({"localtime", "posixrules"})

_DATE_TIME = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    [Tt\ ]
    (?P<hour>\d{2}):(?P<minute>\d{2})
    (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
    \s*
    (?P<offset>[Zz]|(?P<sign>[+-])(?P<off_h>\d{2})(?::?(?P<off_m>\d{2}))?)?
    """,
    re.VERBOSE,
)
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")

_EXAMPLES = "e.g. 2026-06-01T18:00:00Z, 2026-06-01T14:00:00-04:00 or 2026-06-01 18:00"


def _show(value: str, limit: int = 60) -> str:
    """The value as it appears in an error message: quoted, and short."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def resolve_timezone(name: str) -> ZoneInfo:
    """The IANA zone called ``name`` (surrounding whitespace ignored); ValueError otherwise."""
    if not isinstance(name, str):
        kind = type(name).__name__
        raise ValueError(f"timezone must be a string such as Europe/Paris, got {kind}")
    key = name.strip()
    unknown = ValueError(f"unknown timezone {_show(key)} (use an IANA name such as Europe/Paris)")
    if not key or key in _HOST_ZONE_NAMES:
        raise unknown
    try:
        return ZoneInfo(key)
    # Not found, not a normalized relative key ("../x", "/etc/..."), or a directory ("America").
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise unknown from None


def parse_iso_datetime(value: str) -> datetime:
    """Syntax only: an aware datetime (fixed offset) when the text has ``Z`` or an offset,
    otherwise a naive wall-clock datetime. ValueError with a readable message on anything else."""
    if not isinstance(value, str):
        raise ValueError(f"a date-time must be a string ({_EXAMPLES}), got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError(f"empty date-time ({_EXAMPLES})")
    if _DATE_ONLY.fullmatch(text):
        raise ValueError(f"{_show(text)} has no time of day ({_EXAMPLES})")
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"{_show(text)} is not an ISO 8601 date-time ({_EXAMPLES})")

    part = match.groupdict()
    microsecond = int((part["fraction"] or "0").ljust(6, "0")[:6])
    try:
        tzinfo = _offset(part)
        return datetime(
            int(part["year"]), int(part["month"]), int(part["day"]),
            int(part["hour"]), int(part["minute"]), int(part["second"] or 0), microsecond,
            tzinfo=tzinfo,
        )
    except ValueError as exc:  # month 13, 25:00, Feb 30, offset +25:00 ...
        raise ValueError(f"{_show(text)} is not a valid date-time: {exc}") from None


def _offset(part: dict[str, str | None]) -> timezone | None:
    if part["offset"] is None:
        return None
    if part["offset"] in ("Z", "z"):
        return UTC
    hours, minutes = int(part["off_h"] or 0), int(part["off_m"] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"UTC offset {part['offset']} is out of range")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if part["sign"] == "-" else delta)


def localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """Naive wall-clock time in ``tz`` -> aware UTC. Gap -> ValueError; fold -> first occurrence."""
    if wall.tzinfo is not None:
        raise ValueError("localize() takes a naive wall-clock time")
    local = wall.replace(tzinfo=tz, fold=0)
    instant = local.astimezone(UTC)
    # A wall time inside a spring-forward gap does not survive the round trip.
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        gap = _describe_gap(wall, tz)
        raise ValueError(f"{wall.isoformat()} does not exist in {tz.key} ({gap})")
    return instant


def _describe_gap(wall: datetime, tz: ZoneInfo) -> str:
    jump_from, jump_to = _gap_around(wall, tz)
    if jump_from.date() == jump_to.date():
        day = jump_from.date().isoformat()
        return f"clocks jump forward from {jump_from:%H:%M} to {jump_to:%H:%M} on {day}"
    return (
        f"clocks jump forward from {jump_from.isoformat(' ', 'minutes')} "
        f"to {jump_to.isoformat(' ', 'minutes')}"
    )


def _gap_around(wall: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The wall-clock times on either side of the transition that skipped ``wall``."""
    before = wall.replace(tzinfo=tz, fold=0).utcoffset()  # offset in force before the jump
    after = wall.replace(tzinfo=tz, fold=1).utcoffset()  # offset in force after it
    assert before is not None and after is not None
    # The transition instant lies in (wall - after, wall - before]; find it to the second.
    low, high = (wall - after).replace(tzinfo=UTC), (wall - before).replace(tzinfo=UTC)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    transition = high.replace(microsecond=0)
    return (transition + before).replace(tzinfo=None), (transition + after).replace(tzinfo=None)


def parse_publish_time(value: str, tz: ZoneInfo) -> datetime:
    """A schedule's publish time -> aware UTC datetime. Offsets win over ``tz``; offset-less
    times are wall-clock time in ``tz`` (see the module docstring for DST). ValueError otherwise."""
    parsed = parse_iso_datetime(value)
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    return localize(parsed, tz)


def iso_ms(dt: datetime) -> str:
    """``2026-06-01T18:00:00.000Z``: UTC, milliseconds, ``Z`` -- every API response's format."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("iso_ms() needs an aware datetime (Herald never guesses a timezone)")
    u = dt.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )
