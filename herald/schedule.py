"""The schedule model shared by the API and the workflows: a SocialClaw ``ScheduleEnvelope`` in,
a normalized :class:`Schedule` and every problem with it out. Pure: no I/O, no DB, no Temporal.

Normalization
    * The envelope may come directly or wrapped as ``{"schedule": {...}}``.
    * Every spelling the spec accepts maps to one field (see ``ENVELOPE_ALIASES``,
      ``POST_ALIASES``, ``ASSET_ALIASES``): ``publish_at``/``publishAt``, ``description``/``text``,
      ``name``/``title``, ``media_link``/``mediaLink``, ``idempotencyKey``/``idempotency_key``.
      JSON ``null`` counts as absent; two spellings with different values are a problem.
    * ``timezone`` defaults to ``UTC`` and only applies to offset-less times
      (``herald.timeparse``: DST gaps are refused, DST folds mean the first occurrence).
      ``publish_at`` becomes an aware UTC datetime.
    * ``mode`` defaults to ``scheduled``; ``draft`` runs may omit ``publish_at``.
    * ``provider`` defaults to the account handle's prefix (``discord:123`` -> ``discord``).
    * ``assets`` (URL strings or objects with a ``url``) then ``media_link`` become ``media``
      (a ``media_link`` equal to one of the assets' URLs is not added twice).

Problems
    :func:`parse_schedule` never stops at the first problem: it reports all of them, each with a
    path into the envelope, e.g. ``posts[2].description: 2,150 characters, discord allows 2,000``.
    Paths are relative to the envelope even when it came wrapped, and name the spec's canonical
    field (``publish_at``, ``description``, ``name``, ``media_link``, ``idempotencyKey``) whichever
    alias the client used. Problems about the body as a whole use the path ``body``. Provider
    problems about one media item say ``assets[i]``, or ``media_link`` for the item that came
    from it.

    A :class:`Schedule` is returned whenever the body is a JSON object, even alongside problems, so
    ``/v1/posts/validate`` can echo what it understood and :func:`check_posts_against_providers`
    can add provider problems in the same answer. Envelope fields that failed hold their default
    (``UTC``, ``scheduled``, no key), and ``Schedule.posts`` holds only the posts that normalized
    without a problem (``NormalizedPost.index`` keeps each one's position in ``posts[]``).
    **Create a run only when the problem list is empty.**
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, PrivateAttr

from herald.timeparse import iso_ms, localize, parse_iso_datetime, resolve_timezone
from providers import UnknownProvider, get_adapter_class, provider_of_handle
from providers.base import MediaRef, PostDraft

# Canonical name (used in problem paths) -> every spelling the spec accepts, canonical first.
ENVELOPE_ALIASES: dict[str, tuple[str, ...]] = {
    "idempotencyKey": ("idempotencyKey", "idempotency_key"),
}
POST_ALIASES: dict[str, tuple[str, ...]] = {
    "publish_at": ("publish_at", "publishAt"),
    "description": ("description", "text"),
    "name": ("name", "title"),
    "media_link": ("media_link", "mediaLink"),
    "idempotencyKey": ("idempotencyKey", "idempotency_key"),
}
# MediaRef field -> spellings in an AssetInput object (all optional strings).
ASSET_ALIASES: dict[str, tuple[str, ...]] = {
    "mime": ("mime",),
    "filename": ("originalFilename", "filename"),
    "alt_text": ("altText", "alt_text"),
}
ENVELOPE_KEYS = frozenset(
    {"timezone", "mode", "posts", "campaigns", *ENVELOPE_ALIASES["idempotencyKey"]}
)

# Caps that protect the service from oversized input; provider limits are checked separately.
MAX_CHARS: dict[str, int] = {
    "account": 200,
    "name": 1_000,
    "description": 100_000,
    "idempotencyKey": 200,
    "url": 2_048,
}

Mode = Literal["scheduled", "draft"]
MODES: tuple[Mode, ...] = ("scheduled", "draft")
SourceModel = Literal["posts_v1", "campaigns_v2"]
MEDIA_KINDS = ("image", "video", "audio", "other")


class NormalizedPost(BaseModel):
    index: int  # position in posts[]
    account: str  # handle or account id, as given (stripped)
    provider: str | None  # given, else inferred from the handle prefix (`discord:123` -> discord)
    name: str | None  # from name / title
    description: str | None  # from description / text
    publish_at: datetime | None  # aware UTC; None only in draft mode
    media: list[MediaRef] = Field(default_factory=list)  # assets[] then media_link
    settings: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None  # per-post key if given (idempotencyKey/idempotency_key)

    # Which media item came from media_link, so provider problems can name it (not serialized;
    # without it they say assets[i] with i indexing ``media``).
    _media_link_index: int | None = PrivateAttr(default=None)


class Schedule(BaseModel):
    timezone: str
    mode: Mode
    idempotency_key: str | None
    source_model: SourceModel
    posts: list[NormalizedPost]


class ScheduleProblem(BaseModel):
    path: str  # e.g. "posts[2].description"
    message: str  # e.g. "2,150 characters, discord allows 2,000"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


# --- small helpers ----------------------------------------------------------------------------


class _Problems(list[ScheduleProblem]):
    def add(self, path: str, message: str) -> None:
        self.append(ScheduleProblem(path=path, message=message))


@dataclass
class _Context:
    """What every post is read against."""

    tz: ZoneInfo | None  # None when the envelope's timezone was unusable
    mode: Mode
    now: datetime
    past_grace: timedelta
    keys_seen: dict[str, int] = field(default_factory=dict)  # per-post idempotency key -> index


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _quote(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _pick(
    obj: Mapping[str, Any], spellings: tuple[str, ...], path: str, problems: _Problems
) -> Any:
    """The value under any of ``spellings`` (null = absent). Two different values are a problem;
    the first spelling's value is still returned so it is checked too (and not called missing)."""
    given = [(key, obj[key]) for key in spellings if obj.get(key) is not None]
    if not given:
        return None
    first_key, first = given[0]
    for key, value in given[1:]:
        if value != first:
            problems.add(
                path,
                f"both {first_key!r} and {key!r} are given with different values; send only one",
            )
            break
    return first


def _string(
    value: Any, path: str, problems: _Problems, *, max_chars: int | None = None
) -> str | None:
    """``value`` if it is a string within ``max_chars``; else None (and a problem unless null)."""
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(path, f"must be a string, got {_json_type(value)}")
        return None
    if max_chars is not None and len(value) > max_chars:
        problems.add(path, f"{len(value):,} characters; at most {max_chars:,} allowed")
        return None
    return value


def _url(value: Any, path: str, problems: _Problems) -> str | None:
    url = _string(value, path, problems, max_chars=MAX_CHARS["url"])
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. a malformed IPv6 host
        ok = False
    if not ok or any(ch.isspace() or ord(ch) < 32 for ch in url):
        problems.add(path, f"{_quote(url)} is not an http(s) URL")
        return None
    return url


def _idempotency_key(value: Any, path: str, problems: _Problems) -> str | None:
    key = _string(value, path, problems, max_chars=MAX_CHARS["idempotencyKey"])
    if key is not None and not key.strip():
        problems.add(path, "must not be empty (leave it out instead)")
        return None
    return key


# --- the envelope -----------------------------------------------------------------------------


def parse_schedule(
    body: Any,
    *,
    now: datetime,
    max_posts: int = 1000,
    past_grace_seconds: float = 300,
) -> tuple[Schedule | None, list[ScheduleProblem]]:
    """Normalize a schedule and report every problem with it (see the module docstring).

    ``now`` must be aware; a publish time more than ``past_grace_seconds`` before it is a problem
    in scheduled mode. The Schedule is None only when the body is not a JSON object.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("parse_schedule(now=...) must be an aware datetime")
    problems = _Problems()
    envelope = _unwrap(body, problems)
    if envelope is None:
        return None, list(problems)

    tz = _timezone(envelope.get("timezone"), problems)
    mode = _mode(envelope.get("mode"), problems)
    run_key = _idempotency_key(
        _pick(envelope, ENVELOPE_ALIASES["idempotencyKey"], "idempotencyKey", problems),
        "idempotencyKey",
        problems,
    )
    source_model = _source_model(envelope, problems)
    context = _Context(
        tz=tz, mode=mode, now=now.astimezone(UTC), past_grace=timedelta(seconds=past_grace_seconds)
    )
    posts = _posts(envelope, context, max_posts, problems)

    schedule = Schedule(
        timezone=tz.key if tz is not None else "UTC",
        mode=mode,
        idempotency_key=run_key,
        source_model=source_model,
        posts=posts,
    )
    return schedule, list(problems)


def _unwrap(body: Any, problems: _Problems) -> Mapping[str, Any] | None:
    if not isinstance(body, Mapping):
        problems.add("body", f"must be a JSON object (a schedule), got {_json_type(body)}")
        return None
    inner = body.get("schedule")
    if inner is None:
        return body
    if not isinstance(inner, Mapping):
        problems.add("schedule", f"must be an object (the envelope), got {_json_type(inner)}")
        return None
    beside = sorted(key for key in body if key in ENVELOPE_KEYS)
    if beside:
        problems.add(
            "schedule",
            "send the schedule either directly or wrapped in {\"schedule\": ...}, not both "
            f"(found {', '.join(beside)} beside it)",
        )
    return inner


def _timezone(value: Any, problems: _Problems) -> ZoneInfo | None:
    try:
        return resolve_timezone("UTC" if value is None else value)
    except ValueError as exc:
        problems.add("timezone", str(exc))
        return None


def _mode(value: Any, problems: _Problems) -> Mode:
    for mode in MODES:
        if value == mode:
            return mode
    if value is not None:
        shown = _quote(value) if isinstance(value, str) else _json_type(value)
        problems.add("mode", f"unknown mode {shown} (use scheduled or draft)")
    return "scheduled"


def _source_model(envelope: Mapping[str, Any], problems: _Problems) -> SourceModel:
    if envelope.get("campaigns") is None:
        return "posts_v1"
    if envelope.get("posts") is not None:
        problems.add("campaigns", "send either posts[] or campaigns[], not both")
    problems.add("campaigns", "campaign schedules are not supported yet; send a flat posts[] list")
    return "campaigns_v2"


def _posts(
    envelope: Mapping[str, Any], context: _Context, max_posts: int, problems: _Problems
) -> list[NormalizedPost]:
    raw_posts = envelope.get("posts")
    if raw_posts is None:
        if envelope.get("campaigns") is None:
            problems.add("posts", "required: a list of posts, each with an account and publish_at")
        return []
    if not isinstance(raw_posts, list):
        problems.add("posts", f"must be a list of posts, got {_json_type(raw_posts)}")
        return []
    if not raw_posts:
        problems.add("posts", "must contain at least one post")
        return []
    if len(raw_posts) > max_posts:
        problems.add(
            "posts",
            f"{len(raw_posts):,} posts; a run holds at most {max_posts:,} — split the schedule",
        )
    normalized = []
    for index, raw in enumerate(raw_posts):
        post = _post(index, raw, context, problems)
        if post is not None:
            normalized.append(post)
    return normalized


# --- one post ---------------------------------------------------------------------------------


def _post(index: int, raw: Any, context: _Context, problems: _Problems) -> NormalizedPost | None:
    """One normalized post, or None when it has any problem (all of them added to ``problems``)."""
    at = f"posts[{index}]"
    if not isinstance(raw, Mapping):
        problems.add(at, f"must be an object, got {_json_type(raw)}")
        return None
    mine = _Problems()
    value = {name: _pick(raw, keys, f"{at}.{name}", mine) for name, keys in POST_ALIASES.items()}

    account = _account(raw.get("account"), f"{at}.account", mine)
    provider = _provider(raw.get("provider"), account, at, mine)
    name = _string(value["name"], f"{at}.name", mine, max_chars=MAX_CHARS["name"])
    description = _string(
        value["description"], f"{at}.description", mine, max_chars=MAX_CHARS["description"]
    )
    publish_at = _publish_at(value["publish_at"], f"{at}.publish_at", context, mine)
    media, media_link_index = _media(raw.get("assets"), value["media_link"], at, mine)
    settings = _settings(raw.get("settings"), f"{at}.settings", mine)
    key = _idempotency_key(value["idempotencyKey"], f"{at}.idempotencyKey", mine)
    if key is not None:
        if key in context.keys_seen:
            mine.add(f"{at}.idempotencyKey", f"same key as posts[{context.keys_seen[key]}]")
        else:
            context.keys_seen[key] = index

    problems.extend(mine)
    if mine or account is None:
        return None
    post = NormalizedPost(
        index=index,
        account=account,
        provider=provider,
        name=name,
        description=description,
        publish_at=publish_at,
        media=media,
        settings=settings,
        idempotency_key=key,
    )
    post._media_link_index = media_link_index
    return post


def _account(value: Any, path: str, problems: _Problems) -> str | None:
    if value is None:
        problems.add(path, "required: a connected account handle (such as discord:123456) or id")
        return None
    account = _string(value, path, problems, max_chars=MAX_CHARS["account"])
    if account is None:
        return None
    if not account.strip():
        problems.add(path, "must not be empty")
        return None
    return account.strip()


def _provider(value: Any, account: str | None, at: str, problems: _Problems) -> str | None:
    """The given provider, else the handle's prefix; checked against the registry."""
    given = _string(value, f"{at}.provider", problems)
    given = given.strip() if given and given.strip() else None
    from_handle = (provider_of_handle(account) or None) if account else None
    if given and from_handle and given != from_handle:
        problems.add(f"{at}.provider", f"{given!r} does not match account handle {account!r}")
        return None
    provider = given or from_handle
    if provider is None:
        return None  # an account id: the API resolves the provider from the connected account
    try:
        get_adapter_class(provider)
    except UnknownProvider as exc:
        problems.add(f"{at}.provider" if given else f"{at}.account", exc.message)
        return None
    return provider


def _publish_at(value: Any, path: str, context: _Context, problems: _Problems) -> datetime | None:
    if value is None:
        if context.mode == "scheduled":
            problems.add(path, "required in scheduled mode (or send mode: draft)")
        return None
    if not isinstance(value, str):
        problems.add(path, f"must be a date-time string, got {_json_type(value)}")
        return None
    try:
        parsed = parse_iso_datetime(value)
        if parsed.tzinfo is not None:
            instant = parsed.astimezone(UTC)
        elif context.tz is None:
            problems.add(path, "has no UTC offset and the schedule's timezone is invalid")
            return None
        else:
            instant = localize(parsed, context.tz)
    except ValueError as exc:
        problems.add(path, str(exc))
        return None
    if context.mode == "scheduled" and instant < context.now - context.past_grace:
        problems.add(path, f"{iso_ms(instant)} is in the past (now is {iso_ms(context.now)})")
        return None
    return instant


def _media(
    assets: Any, media_link: Any, at: str, problems: _Problems
) -> tuple[list[MediaRef], int | None]:
    """assets[] then media_link; also the index in the result of the media_link item, if added."""
    media: list[MediaRef] = []
    if assets is not None and not isinstance(assets, list):
        problems.add(
            f"{at}.assets", f"must be a list of URLs or asset objects, got {_json_type(assets)}"
        )
    for j, item in enumerate(assets if isinstance(assets, list) else []):
        ref = _asset(item, f"{at}.assets[{j}]", problems)
        if ref is not None:
            media.append(ref)
    link = _url(media_link, f"{at}.media_link", problems)
    if link is None or any(ref.url == link for ref in media):
        return media, None
    media.append(MediaRef(url=link))
    return media, len(media) - 1


def _asset(item: Any, path: str, problems: _Problems) -> MediaRef | None:
    if isinstance(item, str):
        url = _url(item, path, problems)
        return MediaRef(url=url) if url is not None else None
    if not isinstance(item, Mapping):
        problems.add(path, f"must be a URL string or an object with a url, got {_json_type(item)}")
        return None
    before = len(problems)
    if item.get("url") is None:
        problems.add(f"{path}.url", "required: a public http(s) URL")
    url = _url(item.get("url"), f"{path}.url", problems)
    fields = {}
    for name, spellings in ASSET_ALIASES.items():
        where = f"{path}.{spellings[0]}"
        fields[name] = _string(_pick(item, spellings, where, problems), where, problems)
    kind = item.get("kind")
    if kind is not None and kind not in MEDIA_KINDS:
        problems.add(f"{path}.kind", f"must be one of {', '.join(MEDIA_KINDS)}")
    size = item.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        problems.add(f"{path}.size", "must be a whole number of bytes")
    if len(problems) > before or url is None:
        return None
    return MediaRef(url=url, kind=kind, size=size, **fields)


def _settings(value: Any, path: str, problems: _Problems) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(path, f"must be an object, got {_json_type(value)}")
        return {}
    return dict(value)


# --- provider limits --------------------------------------------------------------------------


def check_posts_against_providers(schedule: Schedule) -> list[ScheduleProblem]:
    """Every way a post breaks its network's limits (``Adapter.check_post``), as schedule paths.

    Posts without a provider (account ids resolved later) are skipped; so are providers Herald
    does not publish to, which ``parse_schedule`` has already reported.
    """
    problems = _Problems()
    for post in schedule.posts:
        if post.provider is None:
            continue
        try:
            adapter = get_adapter_class(post.provider)
        except UnknownProvider:
            continue
        draft = PostDraft(
            provider=post.provider,
            text=post.description,
            title=post.name,
            media=post.media,
            settings=post.settings,
        )
        for problem in adapter.check_post(draft):
            problems.add(_post_path(post, problem.field), problem.message)
    return list(problems)


_MEDIA_ITEM = re.compile(r"assets\[(\d+)\](.*)")


def _post_path(post: NormalizedPost, relative: str) -> str:
    """An adapter's post-relative field -> a schedule path (``assets[i]`` indexes ``media``)."""
    at = f"posts[{post.index}]"
    item = _MEDIA_ITEM.fullmatch(relative)
    if item and post._media_link_index == int(item.group(1)):
        relative = "media_link" + item.group(2)
    return f"{at}.{relative}" if relative else at
