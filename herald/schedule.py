"""The schedule model shared by the API and the workflows: a SocialClaw ``ScheduleEnvelope`` in,
a normalized :class:`Schedule` and every problem with it out. Pure: no I/O, no DB, no Temporal.

Normalization
    * The envelope may come directly or wrapped as ``{"schedule": {...}}``.
    * Every spelling the spec accepts maps to one field (see ``ENVELOPE_ALIASES``,
      ``POST_ALIASES``, ``STEP_ALIASES``, ``CAMPAIGN_ALIASES``, ``APPROVAL_ALIASES``,
      ``ASSET_ALIASES``): ``publish_at``/``publishAt``, ``description``/``text``,
      ``name``/``title``, ``media_link``/``mediaLink``, ``idempotencyKey``/``idempotency_key``,
      ``require_approval``/``requireApproval`` ...
      JSON ``null`` counts as absent; two spellings with different values are a problem.
    * ``timezone`` defaults to ``UTC`` and only applies to offset-less times
      (``herald.timeparse``: DST gaps are refused, DST folds mean the first occurrence).
      ``publish_at`` becomes an aware UTC datetime.
    * ``mode`` defaults to ``scheduled``; ``draft`` runs may omit ``publish_at``.
    * ``provider`` defaults to the account handle's prefix (``discord:123`` -> ``discord``).
    * ``assets`` (URL strings or objects with a ``url``) then ``media_link`` become ``media``
      (a ``media_link`` equal to one of the assets' URLs is not added twice).
    * ``post_type`` is one of ``providers.post_types.POST_TYPES[provider]`` (default: the first);
      ``apply_post_type`` adjusts the settings for it (a Discord ``forum`` post gets
      ``settings.threadName`` from its name).
    * ``require_approval`` (envelope, campaign, step or flat post; a boolean) and the envelope's
      ``approval`` policy ``{"onLate": "publish"|"expire", "graceSeconds": 0..2592000}``
      (``on_late``/``grace_seconds`` too) are carried as given; a post's ``None`` means "use the
      run's".

Two input models
    ``posts_v1``: a flat ``posts[]`` list (``PostInput``). Replies and comments are refused there
    (they need a parent: use campaigns). ``NormalizedPost.path`` is ``posts[i]``.

    ``campaigns_v2``: a ``campaigns[]`` graph, expanded into the same flat ``Schedule.posts``
    plus ``Schedule.campaigns`` (the graph)::

        {"timezone": "UTC", "mode": "scheduled", "idempotencyKey": "...",
         "require_approval": false, "approval": {"onLate": "expire", "graceSeconds": 900},
         "campaigns": [{
           "id": "launch", "name": "Launch",                      // name required, id optional
           "caption": "default text",                              // or description / text
           "platform_captions": {"telegram": "...", "discord": "..."},   // per provider
           "platform_types": {"discord": ["forum", "message"]},    // list or one string
           "type_schedule": {"story": "+0h", "feed": "+1h"},       // type -> offset
           "assets": [...], "media_link": "...",                   // default media (post steps)
           "require_approval": true,                               // campaign override
           "targets": [{
             "account": "telegram:@chan", "provider": null,        // provider: handle prefix
             "publish_at": "2026-06-01T15:00:00Z",                 // the target's base time
             "steps": [                                            // absent/empty: one step {}
               {"id": "s1", "description": "1/3"},
               {"id": "s2", "interaction_type": "reply", "parent_step_id": "s1",
                "description": "2/3", "offset": "+1m"},
               {"id": "s3", "interaction_type": "reply", "parent_step_id": "s2", "text": "3/3",
                "offset": 120, "post_type": "message", "require_approval": false}]}]}]}

    A step is a ``PostInput`` without the account (a step ``account``/``provider`` that differs
    from the target's is a problem) plus ``id`` (``step_id``/``stepId``; default ``step{k}``,
    1-based, unique in its target), ``interaction_type`` (``post``/``reply``/``comment``; null =
    post), ``parent_step_id`` (a step of the same target; required for, and only for, replies and
    comments), ``offset`` (seconds, or ``+1h30m``/``-30m``/``90s``/``2d``: see
    :func:`parse_offset`; not together with ``publish_at``), ``post_type`` and
    ``require_approval``. The target's ``publish_at`` is required in scheduled mode unless every
    step has its own.

    * Text: the step's description, else ``platform_captions[provider]``, else ``caption``.
      Media: the step's, else (post steps only) the campaign's.
    * Time: the step's ``publish_at``, else the target's ``publish_at`` + the step's ``offset``;
      then + ``type_schedule[post_type]`` when the type was asked for (the step's ``post_type`` or
      ``platform_types``; a network's default type takes no type offset). ``offset_seconds`` is the post's distance from the
      target's base time; in draft mode without a base, ``publish_at`` stays None and
      ``offset_seconds`` is the step offset + the type offset (the API places the post later).
    * Types: a post step becomes one post per type (its ``post_type``, else
      ``platform_types[provider]``, else the provider's default); a reply or comment step is one
      post (its ``post_type`` or the default). A child attaches (``parent_index``) to the first
      of its parent step's posts whose type can be replied to (not a story).
    * A network must support the interaction (``providers.post_types.INTERACTIONS``). A Discord
      reply needs a parent that starts a thread (``post_type`` forum or ``settings.threadName``)
      or posts into one (``settings.threadId``, which its replies inherit): webhooks cannot reply
      to a plain channel message. A child may not publish before its parent.
    * ``Schedule.posts`` is campaign -> target -> step -> type order; ``NormalizedPost.index`` is
      the position in that list and ``path`` the step (the target for an implicit step), e.g.
      ``campaigns[0].targets[1].steps[2]``. ``step_key`` (``{campaign}/{target}/{step id}``, plus
      ``#{post_type}`` when a step expanded into several types) is unique in the schedule; so
      are idempotency keys (a step key expanded into several types becomes ``key#type``).

Problems
    :func:`parse_schedule` never stops at the first problem: it reports all of them, each with a
    path into the envelope, e.g. ``posts[2].description: 2,150 characters, discord allows 2,000``.
    Paths are relative to the envelope even when it came wrapped, and name the spec's canonical
    field (``publish_at``, ``description``, ``name``, ``media_link``, ``idempotencyKey``,
    ``interaction_type``, ``parent_step_id``, ``post_type``, ``require_approval``,
    ``platform_captions``, ``platform_types``, ``type_schedule``, ``caption``, ``id``) whichever
    alias the client used. Problems about the body as a whole use the path ``body``. Provider
    problems about one media item say ``assets[i]``, or ``media_link`` for the item that came
    from it; a problem with text or media a campaign post took from its campaign names the
    campaign's field (``campaigns[0].platform_captions.telegram``, ``campaigns[0].assets[1]``).

    A :class:`Schedule` is returned whenever the body is a JSON object, even alongside problems, so
    ``/v1/posts/validate`` can echo what it understood and :func:`check_posts_against_providers`
    can add provider problems in the same answer. Envelope fields that failed hold their default
    (``UTC``, ``scheduled``, no key, no approval), and ``Schedule.posts`` holds only the posts that
    normalized without a problem (for flat posts ``NormalizedPost.index`` keeps each one's position
    in ``posts[]``). A campaign post is kept only when its step, its ancestors, its target and its
    campaign's shared fields (everything but ``name``/``id``) have no problem;
    ``Schedule.campaigns`` lists every campaign object (``name`` ``""`` when missing), its targets
    whose account and provider resolved, and their step objects (``post_indexes`` empty for a step
    whose posts were dropped). **Create a run only when the problem list is empty.**
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, PrivateAttr

from herald.timeparse import iso_ms, localize, parse_iso_datetime, resolve_timezone
from providers import KNOWN_PROVIDERS, UnknownProvider, get_adapter_class, provider_of_handle
from providers.base import MediaRef, PostDraft
from providers.post_types import (
    INTERACTIONS,
    NOT_REPLYABLE_TYPES,
    POST_TYPES,
    apply_post_type,
    default_post_type,
)

# Canonical name (used in problem paths) -> every spelling the spec accepts, canonical first.
ENVELOPE_ALIASES: dict[str, tuple[str, ...]] = {
    "idempotencyKey": ("idempotencyKey", "idempotency_key"),
    "require_approval": ("require_approval", "requireApproval"),
}
APPROVAL_ALIASES: dict[str, tuple[str, ...]] = {
    "onLate": ("onLate", "on_late"),
    "graceSeconds": ("graceSeconds", "grace_seconds"),
}
POST_ALIASES: dict[str, tuple[str, ...]] = {
    "publish_at": ("publish_at", "publishAt"),
    "description": ("description", "text"),
    "name": ("name", "title"),
    "media_link": ("media_link", "mediaLink"),
    "idempotencyKey": ("idempotencyKey", "idempotency_key"),
}
# Fields a post may carry beyond POST_ALIASES (flat posts use interaction_type, parent_step_id,
# post_type and require_approval; campaign steps all of them).
STEP_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "step_id", "stepId"),
    "interaction_type": ("interaction_type", "interactionType"),
    "parent_step_id": ("parent_step_id", "parentStepId"),
    "offset": ("offset",),
    "post_type": ("post_type", "postType"),
    "require_approval": ("require_approval", "requireApproval"),
}
FLAT_ALIASES = {
    name: STEP_ALIASES[name]
    for name in ("interaction_type", "parent_step_id", "post_type", "require_approval")
}
CAMPAIGN_ALIASES: dict[str, tuple[str, ...]] = {
    "caption": ("caption", "description", "text"),
    "platform_captions": ("platform_captions", "platformCaptions"),
    "platform_types": ("platform_types", "platformTypes"),
    "type_schedule": ("type_schedule", "typeSchedule"),
    "media_link": ("media_link", "mediaLink"),
    "require_approval": ("require_approval", "requireApproval"),
}
# MediaRef field -> spellings in an AssetInput object (all optional strings).
ASSET_ALIASES: dict[str, tuple[str, ...]] = {
    "mime": ("mime",),
    "filename": ("originalFilename", "filename"),
    "alt_text": ("altText", "alt_text"),
}
ENVELOPE_KEYS = frozenset(
    {
        "timezone",
        "mode",
        "posts",
        "campaigns",
        "approval",
        *ENVELOPE_ALIASES["idempotencyKey"],
        *ENVELOPE_ALIASES["require_approval"],
    }
)

# Caps that protect the service from oversized input; provider limits are checked separately.
MAX_CHARS: dict[str, int] = {
    "account": 200,
    "name": 1_000,
    "description": 100_000,
    "idempotencyKey": 200,
    "url": 2_048,
}
MAX_ID_CHARS = 200  # campaign and step ids
MAX_OFFSET_SECONDS = 366 * 86_400  # parse_offset bounds (both signs)
MAX_GRACE_SECONDS = 30 * 86_400  # approval.graceSeconds

Mode = Literal["scheduled", "draft"]
MODES: tuple[Mode, ...] = ("scheduled", "draft")
SourceModel = Literal["posts_v1", "campaigns_v2"]
InteractionType = Literal["post", "reply", "comment"]
INTERACTION_TYPES: tuple[InteractionType, ...] = ("post", "reply", "comment")
OnLate = Literal["publish", "expire"]
ON_LATE: tuple[OnLate, ...] = ("publish", "expire")
MEDIA_KINDS = ("image", "video", "audio", "other")
ALL_POST_TYPES = frozenset(t for types in POST_TYPES.values() for t in types)
FLAT_REPLY = "replies and comments need a campaigns[] schedule with parent_step_id"


class NormalizedPost(BaseModel):
    index: int  # position in posts[] (flat) or in the expanded Schedule.posts (campaigns)
    account: str  # handle or account id, as given (stripped)
    provider: str | None  # given, else inferred from the handle prefix (`discord:123` -> discord)
    name: str | None  # from name / title
    description: str | None  # from description / text (campaigns: or the campaign's captions)
    publish_at: datetime | None  # aware UTC; None only in draft mode
    media: list[MediaRef] = Field(default_factory=list)  # assets[] then media_link
    settings: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None  # per-post key if given (idempotencyKey/idempotency_key)
    # Problem-path prefix of the input that made this post: "posts[3]" or
    # "campaigns[0].targets[1].steps[2]".
    path: str = ""
    campaign_index: int | None = None
    campaign_id: str | None = None  # the campaign's given id (None: the API generates one)
    step_id: str | None = None  # as given (id/step_id/stepId), else f"step{k}" (1-based)
    # Unique in the schedule: f"{campaign_index}/{target_index}/{step_id}", plus f"#{post_type}"
    # when the step was expanded into several types.
    step_key: str | None = None
    interaction_type: InteractionType = "post"
    parent_index: int | None = None  # .index of the post this one replies/comments to
    post_type: str | None = None  # None only for providers without a types table
    # Campaign posts: seconds from the target's base publish_at (step offset + type offset).
    offset_seconds: float | None = None
    require_approval: bool | None = None  # per-post/step/campaign override; None = the run's

    # Which media item came from media_link, so provider problems can name it (not serialized;
    # without it they say assets[i] with i indexing ``media``).
    _media_link_index: int | None = PrivateAttr(default=None)
    # Post-relative field -> absolute path, for fields that came from elsewhere (a campaign's
    # caption or media, a forum post's name); used by check_posts_against_providers.
    _field_paths: dict[str, str] = PrivateAttr(default_factory=dict)


class ApprovalPolicy(BaseModel):
    on_late: OnLate = "publish"  # what an approval that comes after publish_at does
    grace_seconds: float = 0.0


class CampaignStep(BaseModel):
    step_id: str
    name: str | None
    interaction_type: InteractionType
    parent_step_id: str | None
    post_indexes: list[int]  # NormalizedPost.index of the posts made from this step (one per type)


class CampaignTarget(BaseModel):
    account: str
    provider: str
    publish_at: datetime | None  # the base time, aware UTC (None in draft mode when absent)
    steps: list[CampaignStep]


class CampaignSpec(BaseModel):
    index: int
    id: str | None
    name: str
    targets: list[CampaignTarget]


class Schedule(BaseModel):
    timezone: str
    mode: Mode
    idempotency_key: str | None
    source_model: SourceModel
    posts: list[NormalizedPost]
    campaigns: list[CampaignSpec] = Field(default_factory=list)  # empty for posts_v1
    require_approval: bool = False
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)


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
    keys_seen: dict[str, str] = field(default_factory=dict)  # idempotency key -> first post path


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


def _number(value: float) -> str:
    """``2592001`` -> ``2,592,001``; ``1.5`` -> ``1.5`` (for messages)."""
    if abs(value) > 1e15:
        return "a very large number of"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,g}"


def _quote(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _shown(value: Any) -> str:
    return _quote(value) if isinstance(value, str) else _json_type(value)


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


def _pick_all(
    obj: Mapping[str, Any], aliases: dict[str, tuple[str, ...]], at: str, problems: _Problems
) -> dict[str, Any]:
    return {name: _pick(obj, keys, f"{at}.{name}", problems) for name, keys in aliases.items()}


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


def _identifier(value: Any, path: str, problems: _Problems) -> str | None:
    """A non-empty string id (campaign id, step id, parent_step_id), stripped."""
    text = _string(value, path, problems, max_chars=MAX_ID_CHARS)
    if text is None:
        return None
    if not text.strip():
        problems.add(path, "must not be empty (leave it out instead)")
        return None
    return text.strip()


def _bool(value: Any, path: str, problems: _Problems) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    problems.add(path, f"must be true or false, got {_json_type(value)}")
    return None


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


def _claim_key(key: str, owner: str, path: str, context: _Context, problems: _Problems) -> None:
    """Idempotency keys are unique across the schedule; the first post to use one owns it."""
    if key in context.keys_seen:
        problems.add(path, f"same key as {context.keys_seen[key]}")
    else:
        context.keys_seen[key] = owner


# --- offsets ----------------------------------------------------------------------------------

_OFFSET = re.compile(r"([+-])?((?:\d+(?:\.\d+)?[dhms])+)")
_OFFSET_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_OFFSET_EXAMPLES = "seconds as a number, or a duration such as +1h, -30m, 90s, +1h30m, 2d, +1.5h"


def parse_offset(value: Any) -> float:
    """An offset in seconds: a number of seconds, or ``[+|-]`` then ``<number><unit>`` parts with
    units ``d``, ``h``, ``m``, ``s`` (each at most once): ``+0h``, ``-30m``, ``90s``,
    ``+1h30m``, ``2d``, ``+1.5h``. At most 366 days either way. ValueError with a readable
    message otherwise."""
    limit = f"at most {MAX_OFFSET_SECONDS // 86_400} days either way"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"an offset must be {_OFFSET_EXAMPLES}; got {_json_type(value)}")
    if isinstance(value, str):
        text = value.strip().lower()
        match = _OFFSET.fullmatch(text)
        if match is None:
            raise ValueError(f"{_quote(value)} is not an offset (use {_OFFSET_EXAMPLES})")
        parts = _OFFSET_PART.findall(match.group(2))
        units = [unit for _, unit in parts]
        if len(set(units)) != len(units):
            raise ValueError(f"{_quote(value)} is not an offset: a unit appears twice")
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
        if match.group(1) == "-":
            seconds = -seconds
    else:
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float
            seconds = math.inf
    if not math.isfinite(seconds) or abs(seconds) > MAX_OFFSET_SECONDS:
        shown = _quote(value) if isinstance(value, str) else f"{_number(value)} seconds"
        raise ValueError(f"{shown} is out of range ({limit})")
    return seconds + 0.0  # -0.0 -> 0.0


def format_offset(seconds: float) -> str:
    """``5400`` -> ``+1h30m``; ``-30`` -> ``-30s``; ``0`` -> ``+0s`` (for messages)."""
    sign = "-" if seconds < 0 else "+"
    rest = abs(seconds)
    whole = int(rest)
    fraction = rest - whole
    text = ""
    for unit, size in _UNIT_SECONDS.items():
        if unit == "s":
            secs = whole + fraction
            if secs or not text:
                text += f"{secs:g}s"
        elif whole >= size:
            text += f"{whole // size}{unit}"
            whole %= size
    return sign + text


def _offset(value: Any, path: str, problems: _Problems) -> float | None:
    if value is None:
        return None
    try:
        return parse_offset(value)
    except ValueError as exc:
        problems.add(path, str(exc))
        return None


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
    in scheduled mode. ``max_posts`` caps the posts of a run (campaigns: after expansion). The
    Schedule is None only when the body is not a JSON object.
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
    require_approval = _bool(
        _pick(envelope, ENVELOPE_ALIASES["require_approval"], "require_approval", problems),
        "require_approval",
        problems,
    )
    approval = _approval(envelope.get("approval"), problems)
    source_model = _source_model(envelope, problems)
    context = _Context(
        tz=tz, mode=mode, now=now.astimezone(UTC), past_grace=timedelta(seconds=past_grace_seconds)
    )
    campaigns: list[CampaignSpec] = []
    if source_model == "posts_v1":
        posts = _posts(envelope, context, max_posts, problems)
    else:
        posts, campaigns = _campaigns(envelope["campaigns"], context, max_posts, problems)
    posts = posts + _first_comments(posts, max_posts, problems)

    schedule = Schedule(
        timezone=tz.key if tz is not None else "UTC",
        mode=mode,
        idempotency_key=run_key,
        source_model=source_model,
        posts=posts,
        campaigns=campaigns,
        require_approval=bool(require_approval),
        approval=approval,
    )
    return schedule, list(problems)


FIRST_COMMENT_MAX = 10_000


def _first_comments(posts: list[NormalizedPost], max_posts: int, problems: _Problems) -> list[NormalizedPost]:
    """``settings.firstComment`` on a post becomes a post of its own: a comment under it where the
    network has comments (Facebook, Instagram, LinkedIn), else a reply (X, Threads). Being a
    post, it is published durably, reconciled and shown like every other; it goes out as soon
    as its parent is published."""
    out: list[NormalizedPost] = []
    for post in posts:
        text = post.settings.get("firstComment")
        if text is None:
            continue
        at = f"{post.path}.settings.firstComment"
        settings = {k: v for k, v in post.settings.items() if k != "firstComment"}
        post.settings = settings
        if not isinstance(text, str) or not text.strip():
            problems.add(at, "must be a non-empty string (the comment's text)")
            continue
        if len(text) > FIRST_COMMENT_MAX:
            problems.add(at, f"{len(text):,} characters; at most {FIRST_COMMENT_MAX:,}")
            continue
        if post.interaction_type != "post":
            problems.add(at, "only a top-level post can have a first comment")
            continue
        supported = INTERACTIONS.get(post.provider or "", frozenset())
        interaction = "comment" if "comment" in supported else "reply" if "reply" in supported else None
        if interaction is None:
            problems.add(at, f"{post.provider} has no comments or replies to post a first comment with")
            continue
        if post.post_type in NOT_REPLYABLE_TYPES:
            problems.add(at, f"a {post.post_type} cannot be commented on")
            continue
        if len(posts) + len(out) >= max_posts:
            problems.add(at, f"the run would have more than {max_posts:,} posts with its first comments")
            continue
        out.append(NormalizedPost(
            index=len(posts) + len(out), account=post.account, provider=post.provider, name=None,
            description=text, publish_at=post.publish_at, path=at, interaction_type=interaction,
            parent_index=post.index, post_type=default_post_type(post.provider or ""),
            campaign_index=post.campaign_index, campaign_id=post.campaign_id,
            step_id=f"{post.step_id}.firstComment" if post.step_id else None,
            step_key=f"{post.step_key}.firstComment" if post.step_key else None,
            require_approval=post.require_approval,
        ))
    return out


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
        problems.add("mode", f"unknown mode {_shown(value)} (use scheduled or draft)")
    return "scheduled"


def _approval(value: Any, problems: _Problems) -> ApprovalPolicy:
    """The envelope's ``approval`` policy; fields with a problem keep their default."""
    policy = ApprovalPolicy()
    if value is None:
        return policy
    if not isinstance(value, Mapping):
        problems.add("approval", f"must be an object such as {{\"onLate\": \"expire\", "
                                 f"\"graceSeconds\": 900}}, got {_json_type(value)}")
        return policy
    given = _pick_all(value, APPROVAL_ALIASES, "approval", problems)
    on_late = given["onLate"]
    if on_late in ON_LATE:
        policy.on_late = on_late
    elif on_late is not None:
        problems.add("approval.onLate", f"unknown value {_shown(on_late)} (use publish or expire)")
    grace = given["graceSeconds"]
    if grace is not None:
        if isinstance(grace, bool) or not isinstance(grace, (int, float)):
            problems.add("approval.graceSeconds", f"must be a number of seconds, got "
                                                  f"{_json_type(grace)}")
        elif not math.isfinite(grace) or not 0 <= grace <= MAX_GRACE_SECONDS:
            problems.add(
                "approval.graceSeconds",
                f"must be between 0 and {MAX_GRACE_SECONDS:,} seconds (30 days), "
                f"got {_number(grace)}",
            )
        else:
            policy.grace_seconds = float(grace)
    return policy


def _source_model(envelope: Mapping[str, Any], problems: _Problems) -> SourceModel:
    if envelope.get("campaigns") is None:
        return "posts_v1"
    if envelope.get("posts") is not None:
        problems.add("campaigns", "send either posts[] or campaigns[], not both")
    return "campaigns_v2"


def _too_many(count: int, max_posts: int, what: str) -> str:
    return f"{count:,} {what}; a run holds at most {max_posts:,} — split the schedule"


def _posts(
    envelope: Mapping[str, Any], context: _Context, max_posts: int, problems: _Problems
) -> list[NormalizedPost]:
    raw_posts = envelope.get("posts")
    if raw_posts is None:
        problems.add("posts", "required: a list of posts, each with an account and publish_at")
        return []
    if not isinstance(raw_posts, list):
        problems.add("posts", f"must be a list of posts, got {_json_type(raw_posts)}")
        return []
    if not raw_posts:
        problems.add("posts", "must contain at least one post")
        return []
    if len(raw_posts) > max_posts:
        problems.add("posts", _too_many(len(raw_posts), max_posts, "posts"))
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
    value = _pick_all(raw, POST_ALIASES, at, mine)
    extra = _pick_all(raw, FLAT_ALIASES, at, mine)

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
        _claim_key(key, at, f"{at}.idempotencyKey", context, mine)
    interaction = _interaction(extra["interaction_type"], f"{at}.interaction_type", mine)
    if interaction in ("reply", "comment"):
        mine.add(f"{at}.interaction_type", FLAT_REPLY)
    elif extra["parent_step_id"] is not None:
        mine.add(f"{at}.parent_step_id", FLAT_REPLY)
    post_type = _post_type(extra["post_type"], provider, f"{at}.post_type", mine)
    if provider is not None:
        post_type = post_type or default_post_type(provider)
        settings, type_problem = apply_post_type(provider, post_type, name, settings)
        if type_problem:
            mine.add(f"{at}.name", type_problem)
    require_approval = _bool(extra["require_approval"], f"{at}.require_approval", mine)

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
        path=at,
        post_type=post_type,
        require_approval=require_approval,
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


def _interaction(value: Any, path: str, problems: _Problems) -> InteractionType:
    """null = post; anything but post/reply/comment is a problem (and reads as post)."""
    for interaction in INTERACTION_TYPES:
        if value == interaction:
            return interaction
    if value is not None:
        problems.add(
            path, f"unknown interaction type {_shown(value)} (use post, reply or comment)"
        )
    return "post"


def _type_problem(provider: str, post_type: str) -> str:
    return f"{provider} has no post type {post_type!r} (types: {', '.join(POST_TYPES[provider])})"


def _post_type(value: Any, provider: str | None, path: str, problems: _Problems) -> str | None:
    """The given type if the provider has it (unchecked when the provider is not known yet)."""
    post_type = _string(value, path, problems, max_chars=MAX_ID_CHARS)
    if post_type is None:
        return None
    if provider in POST_TYPES and post_type not in POST_TYPES[provider]:
        problems.add(path, _type_problem(provider, post_type))
        return None
    return post_type


def _instant(value: Any, path: str, context: _Context, problems: _Problems) -> datetime | None:
    """A given (non-null) date-time as an aware UTC instant, without the past check."""
    if not isinstance(value, str):
        problems.add(path, f"must be a date-time string, got {_json_type(value)}")
        return None
    try:
        parsed = parse_iso_datetime(value)
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        if context.tz is None:
            problems.add(path, "has no UTC offset and the schedule's timezone is invalid")
            return None
        return localize(parsed, context.tz)
    except ValueError as exc:
        problems.add(path, str(exc))
        return None


def _is_past(instant: datetime, context: _Context) -> bool:
    return context.mode == "scheduled" and instant < context.now - context.past_grace


def _past(instant: datetime, context: _Context) -> str:
    return f"{iso_ms(instant)} is in the past (now is {iso_ms(context.now)})"


def _publish_at(value: Any, path: str, context: _Context, problems: _Problems) -> datetime | None:
    if value is None:
        if context.mode == "scheduled":
            problems.add(path, "required in scheduled mode (or send mode: draft)")
        return None
    instant = _instant(value, path, context, problems)
    if instant is not None and _is_past(instant, context):
        problems.add(path, _past(instant, context))
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


# --- campaigns --------------------------------------------------------------------------------


@dataclass
class _Campaign:
    """A campaign's own fields: what its targets and steps are read against."""

    index: int
    at: str
    id: str | None
    caption: str | None
    platform_captions: dict[str, str]
    platform_types: dict[str, list[str]]
    type_schedule: dict[str, float]
    media: list[MediaRef]
    media_link_index: int | None
    require_approval: bool | None
    shared_ok: bool  # no problem in the fields above (name and id do not count)


@dataclass(eq=False)  # identity semantics: steps are graph nodes
class _Step:
    k: int
    at: str  # problem-path prefix
    is_object: bool
    step_id: str
    id_given: bool = False
    interaction: InteractionType = "post"
    parent_id: str | None = None
    parent_given: bool = False
    name: str | None = None
    description: str | None = None
    publish_at: datetime | None = None  # its own absolute time
    publish_at_given: bool = False
    offset: float | None = None
    media: list[MediaRef] = field(default_factory=list)
    media_link_index: int | None = None
    media_given: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    post_type: str | None = None  # as given (checked when the provider is known)
    require_approval: bool | None = None
    problems: _Problems = field(default_factory=_Problems)
    # Filled in by the target: the graph, the expansion and the times.
    parent: _Step | None = None
    types: list[str | None] = field(default_factory=list)
    # True when the types were asked for (post_type or platform_types), not the network default:
    # only those take type_schedule offsets (a Telegram thread is not moved by a Discord "message").
    types_explicit: bool = False
    settings_by_type: dict[str | None, dict[str, Any]] = field(default_factory=dict)
    time_by_type: dict[str | None, tuple[datetime | None, float | None]] = field(
        default_factory=dict
    )
    attach: str | None = None  # the type its children attach to
    attachable: bool = True  # False when every type is NOT_REPLYABLE
    included: bool = False

    @property
    def verb(self) -> str:
        return "reply to" if self.interaction == "reply" else "comment on"


def _campaigns(
    raw: Any, context: _Context, max_posts: int, problems: _Problems
) -> tuple[list[NormalizedPost], list[CampaignSpec]]:
    if not isinstance(raw, list):
        problems.add("campaigns", f"must be a list of campaigns, got {_json_type(raw)}")
        return [], []
    if not raw:
        problems.add("campaigns", "must contain at least one campaign")
        return [], []
    mark = len(problems)
    posts: list[NormalizedPost] = []
    specs: list[CampaignSpec] = []
    expanded = 0
    for index, item in enumerate(raw):
        spec, count = _campaign(index, item, context, posts, problems)
        expanded += count
        if spec is not None:
            specs.append(spec)
    if expanded > max_posts:
        message = _too_many(expanded, max_posts, "posts once the campaigns are expanded")
        problems.insert(mark, ScheduleProblem(path="campaigns", message=message))
    return posts, specs


def _campaign(
    index: int, raw: Any, context: _Context, out: list[NormalizedPost], problems: _Problems
) -> tuple[CampaignSpec | None, int]:
    """The campaign's spec (None unless it is an object) and how many posts it expands to;
    its clean posts are appended to ``out``."""
    at = f"campaigns[{index}]"
    if not isinstance(raw, Mapping):
        problems.add(at, f"must be an object, got {_json_type(raw)}")
        return None, 0
    campaign_id = _identifier(raw.get("id"), f"{at}.id", problems)
    name = raw.get("name")
    if name is None:
        problems.add(f"{at}.name", "required: the campaign's name")
    name = _string(name, f"{at}.name", problems, max_chars=MAX_CHARS["name"])
    if name is not None and not name.strip():
        problems.add(f"{at}.name", "must not be empty")
        name = None

    shared = _Problems()
    value = _pick_all(raw, CAMPAIGN_ALIASES, at, shared)
    caption = _string(
        value["caption"], f"{at}.caption", shared, max_chars=MAX_CHARS["description"]
    )
    captions = _platform_captions(value["platform_captions"], f"{at}.platform_captions", shared)
    types = _platform_types(value["platform_types"], f"{at}.platform_types", shared)
    type_schedule = _type_schedule(value["type_schedule"], f"{at}.type_schedule", shared)
    media, media_link_index = _media(raw.get("assets"), value["media_link"], at, shared)
    require_approval = _bool(value["require_approval"], f"{at}.require_approval", shared)
    problems.extend(shared)
    campaign = _Campaign(
        index=index,
        at=at,
        id=campaign_id,
        caption=caption,
        platform_captions=captions,
        platform_types=types,
        type_schedule=type_schedule,
        media=media,
        media_link_index=media_link_index,
        require_approval=require_approval,
        shared_ok=not shared,
    )

    raw_targets = raw.get("targets")
    targets: list[CampaignTarget] = []
    count = 0
    if raw_targets is None:
        problems.add(f"{at}.targets", "required: a list of targets, each with an account")
    elif not isinstance(raw_targets, list):
        problems.add(f"{at}.targets", f"must be a list of targets, got {_json_type(raw_targets)}")
    elif not raw_targets:
        problems.add(f"{at}.targets", "must contain at least one target")
    else:
        for target_index, item in enumerate(raw_targets):
            target, n = _target(campaign, target_index, item, context, out, problems)
            count += n
            if target is not None:
                targets.append(target)
    spec = CampaignSpec(index=index, id=campaign_id, name=name or "", targets=targets)
    return spec, count


def _unknown_provider_key(key: Any) -> str:
    return f"unknown provider {key!r} (providers: {', '.join(sorted(KNOWN_PROVIDERS))})"


def _provider_items(
    value: Any, path: str, what: str, problems: _Problems
) -> Iterator[tuple[str, Any]]:
    """The (provider, value) pairs of an object keyed by providers, in order, null values
    skipped; keys that are not providers are problems (reported as the pairs are consumed)."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        problems.add(path, f"must be an object mapping providers to {what}, got "
                           f"{_json_type(value)}")
        return
    for key, item in value.items():
        if key not in KNOWN_PROVIDERS:
            problems.add(f"{path}.{key}", _unknown_provider_key(key))
        elif item is not None:
            yield key, item


def _platform_captions(value: Any, path: str, problems: _Problems) -> dict[str, str]:
    captions = {}
    for provider, text in _provider_items(value, path, "text", problems):
        caption = _string(text, f"{path}.{provider}", problems, max_chars=MAX_CHARS["description"])
        if caption is not None:
            captions[provider] = caption
    return captions


def _platform_types(value: Any, path: str, problems: _Problems) -> dict[str, list[str]]:
    chosen_by_provider = {}
    for provider, given in _provider_items(value, path, "post types", problems):
        at = f"{path}.{provider}"
        if isinstance(given, str):
            items = [(at, given)]
        elif isinstance(given, list):
            if not given:
                problems.add(at, f"must list at least one post type "
                                 f"(types: {', '.join(POST_TYPES[provider])})")
            items = [(f"{at}[{j}]", item) for j, item in enumerate(given)]
        else:
            problems.add(at, f"must be a post type or a list of them, got {_json_type(given)}")
            continue
        chosen: list[str] = []
        for where, item in items:
            if not isinstance(item, str):
                problems.add(where, f"must be a string, got {_json_type(item)}")
            elif item not in POST_TYPES[provider]:
                problems.add(where, _type_problem(provider, item))
            elif item in chosen:
                problems.add(where, f"{item!r} is listed twice")
            else:
                chosen.append(item)
        if chosen:
            chosen_by_provider[provider] = chosen
    return chosen_by_provider



def _type_schedule(value: Any, path: str, problems: _Problems) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(path, f"must be an object mapping post types to offsets such as "
                           f"{{\"story\": \"+0h\", \"feed\": \"+1h\"}}, got {_json_type(value)}")
        return {}
    offsets = {}
    for post_type, given in value.items():
        at = f"{path}.{post_type}"
        if post_type not in ALL_POST_TYPES:
            problems.add(at, f"no provider has a post type {post_type!r} "
                             f"(types: {', '.join(sorted(ALL_POST_TYPES))})")
            continue
        seconds = _offset(given, at, problems)
        if seconds is not None:
            offsets[post_type] = seconds
    return offsets


# --- one campaign target ----------------------------------------------------------------------


def _target(
    campaign: _Campaign,
    target_index: int,
    raw: Any,
    context: _Context,
    out: list[NormalizedPost],
    problems: _Problems,
) -> tuple[CampaignTarget | None, int]:
    at = f"{campaign.at}.targets[{target_index}]"
    if not isinstance(raw, Mapping):
        problems.add(at, f"must be an object, got {_json_type(raw)}")
        return None, 0
    mine = _Problems()
    account = _account(raw.get("account"), f"{at}.account", mine)
    before = len(mine)
    provider = _provider(raw.get("provider"), account, at, mine)
    if provider is None and account is not None and len(mine) == before:
        mine.add(
            f"{at}.provider",
            f"required: the account {account!r} has no provider prefix (such as telegram:@name)",
        )
    base_value = _pick(raw, POST_ALIASES["publish_at"], f"{at}.publish_at", mine)
    base = None
    if base_value is not None:
        base = _instant(base_value, f"{at}.publish_at", context, mine)

    raw_steps = raw.get("steps")
    implicit = raw_steps is None or raw_steps == []
    if implicit:
        raw_steps = [{}]
    elif not isinstance(raw_steps, list):
        mine.add(f"{at}.steps", f"must be a list of steps, got {_json_type(raw_steps)}")
        raw_steps = []
    steps = [
        _step(k, item, at if implicit else f"{at}.steps[{k}]", account, provider, context)
        for k, item in enumerate(raw_steps)
    ]
    if (
        base_value is None
        and context.mode == "scheduled"
        and any(s.is_object and not s.publish_at_given for s in steps)
    ):
        mine.add(
            f"{at}.publish_at",
            "required in scheduled mode unless every step has its own publish_at "
            "(or send mode: draft)",
        )

    objects = [s for s in steps if s.is_object]
    _link_steps(objects)
    for step in objects:
        _expand(step, campaign, provider)
    order = _parents_first(objects)
    for step in order:
        _times(step, campaign, base, context)
        _check_parent(step, provider)
    for step in objects:  # in input order, so "same key as" names the earlier step
        _claim_step_keys(step, context)

    target_ok = not mine and campaign.shared_ok and account is not None and provider is not None
    for step in order:
        step.included = (
            target_ok
            and not step.problems
            and (step.parent is None or step.parent.included)
        )
    problems.extend(mine)
    for step in steps:
        problems.extend(step.problems)

    indexes = _allocate(objects, len(out))
    for step in objects:
        if step.included:
            assert account is not None and provider is not None
            out.extend(
                _campaign_post(step, t, indexes, campaign, target_index, account, provider, base)
                for t in step.types
            )
    if account is None or provider is None:
        return None, sum(len(s.types) for s in objects)
    target = CampaignTarget(
        account=account,
        provider=provider,
        publish_at=base,
        steps=[
            CampaignStep(
                step_id=s.step_id,
                name=s.name,
                interaction_type=s.interaction,
                parent_step_id=s.parent_id,
                post_indexes=[indexes[(s, t)] for t in s.types if (s, t) in indexes],
            )
            for s in objects
        ],
    )
    return target, sum(len(s.types) for s in objects)


def _step(
    k: int,
    raw: Any,
    at: str,
    account: str | None,
    provider: str | None,
    context: _Context,
) -> _Step:
    """A step's own fields (problems kept on the step); the graph comes later."""
    if not isinstance(raw, Mapping):
        step = _Step(k=k, at=at, is_object=False, step_id=f"step{k + 1}")
        step.problems.add(at, f"must be an object (a step), got {_json_type(raw)}")
        return step
    mine = _Problems()
    value = _pick_all(raw, POST_ALIASES, at, mine)
    extra = _pick_all(raw, STEP_ALIASES, at, mine)

    step_id = _identifier(extra["id"], f"{at}.id", mine)
    for key, target_value in (("account", account), ("provider", provider)):
        given = raw.get(key)
        if given is not None and (not isinstance(given, str) or given.strip() != target_value):
            mine.add(
                f"{at}.{key}",
                f"a step publishes with its target's {key}"
                + (f" ({target_value!r})" if target_value else "")
                + f"; leave {key} out of steps",
            )
    name = _string(value["name"], f"{at}.name", mine, max_chars=MAX_CHARS["name"])
    description = _string(
        value["description"], f"{at}.description", mine, max_chars=MAX_CHARS["description"]
    )
    publish_at = None
    if value["publish_at"] is not None:
        publish_at = _instant(value["publish_at"], f"{at}.publish_at", context, mine)
    offset = _offset(extra["offset"], f"{at}.offset", mine)
    if value["publish_at"] is not None and extra["offset"] is not None:
        mine.add(
            f"{at}.publish_at",
            "send either publish_at (an absolute time) or offset (from the target's "
            "publish_at), not both",
        )
    media, media_link_index = _media(raw.get("assets"), value["media_link"], at, mine)
    settings = _settings(raw.get("settings"), f"{at}.settings", mine)
    key = _idempotency_key(value["idempotencyKey"], f"{at}.idempotencyKey", mine)
    interaction = _interaction(extra["interaction_type"], f"{at}.interaction_type", mine)
    parent_id = _identifier(extra["parent_step_id"], f"{at}.parent_step_id", mine)
    post_type = _post_type(extra["post_type"], provider, f"{at}.post_type", mine)
    require_approval = _bool(extra["require_approval"], f"{at}.require_approval", mine)
    return _Step(
        k=k,
        at=at,
        is_object=True,
        step_id=step_id or f"step{k + 1}",
        id_given=extra["id"] is not None,
        interaction=interaction,
        parent_id=parent_id,
        parent_given=extra["parent_step_id"] is not None,
        name=name,
        description=description,
        publish_at=publish_at,
        publish_at_given=value["publish_at"] is not None,
        offset=offset,
        media=media,
        media_link_index=media_link_index,
        media_given=raw.get("assets") is not None or value["media_link"] is not None,
        settings=settings,
        key=key,
        post_type=post_type,
        require_approval=require_approval,
        problems=mine,
    )


def _link_steps(steps: list[_Step]) -> None:
    """Step ids (unique in the target) and each reply/comment step's parent; cycles refused."""
    by_id: dict[str, _Step] = {}
    for step in steps:
        other = by_id.get(step.step_id)
        if other is None:
            by_id[step.step_id] = step
        elif step.id_given:
            step.problems.add(f"{step.at}.id", f"duplicate step id {step.step_id!r} "
                                               f"(also {other.at})")
        else:
            step.problems.add(
                f"{step.at}.id",
                f"this step has no id, so it is {step.step_id!r}, which {other.at} already is; "
                "give it an id",
            )
    known = ", ".join(repr(step_id) for step_id in by_id)
    for step in steps:
        where = f"{step.at}.parent_step_id"
        if step.interaction == "post":
            if step.parent_given:
                step.problems.add(
                    where,
                    "only reply and comment steps have a parent: set interaction_type to reply "
                    "or comment, or leave parent_step_id out",
                )
        elif step.parent_id is None:
            if not step.parent_given:
                step.problems.add(
                    where, f"required for a {step.interaction} step: the id of the step to "
                           f"{step.verb}"
                )
        elif step.parent_id == step.step_id:
            step.problems.add(where, f"a step cannot {step.verb} itself")
        elif step.parent_id not in by_id:
            step.problems.add(
                where, f"unknown step {step.parent_id!r} (this target's steps: {known})"
            )
        else:
            step.parent = by_id[step.parent_id]

    in_cycle: dict[_Step, list[str]] = {}
    for step in steps:
        chain, seen, current = [step.step_id], {step}, step.parent
        while current is not None:
            chain.append(current.step_id)
            if current is step:
                in_cycle[step] = chain
                break
            if current in seen:  # leads into a cycle that does not contain this step
                break
            seen.add(current)
            current = current.parent
    for step, chain in in_cycle.items():
        step.problems.add(f"{step.at}.parent_step_id", f"cycle: {' → '.join(chain)}")
        step.parent = None


def _parents_first(steps: list[_Step]) -> list[_Step]:
    """The steps ordered so every parent comes before its children (no recursion: a thread can
    be a thousand replies long)."""
    order: list[_Step] = []
    done: set[_Step] = set()
    for step in steps:
        chain: list[_Step] = []
        current: _Step | None = step
        while current is not None and current not in done:
            done.add(current)
            chain.append(current)
            current = current.parent
        order.extend(reversed(chain))
    return order


def _expand(step: _Step, campaign: _Campaign, provider: str | None) -> None:
    """The step's post types and the settings of each."""
    step.types_explicit = True
    if provider is None or provider not in POST_TYPES:
        step.types = [step.post_type]
    elif step.post_type is not None:
        step.types = [step.post_type]
    elif step.interaction == "post" and provider in campaign.platform_types:
        step.types = list(campaign.platform_types[provider])
    else:
        step.types = [POST_TYPES[provider][0]]
        step.types_explicit = False
    reported = False
    for post_type in step.types:
        settings, problem = dict(step.settings), None
        if provider is not None:
            settings, problem = apply_post_type(provider, post_type, step.name, step.settings)
        if problem and not reported:
            step.problems.add(f"{step.at}.name", problem)
            reported = True
        step.settings_by_type[post_type] = settings
    replyable = [t for t in step.types if t not in NOT_REPLYABLE_TYPES]
    step.attachable = bool(replyable)
    step.attach = replyable[0] if replyable else None
    if provider is not None and step.interaction != "post":
        supported = INTERACTIONS.get(provider, frozenset())
        if step.interaction not in supported:
            can = f"it supports: {', '.join(sorted(supported))}" if supported else (
                "it supports no replies or comments"
            )
            step.problems.add(
                f"{step.at}.interaction_type", f"{provider} cannot {step.interaction}; {can}"
            )


def _times(step: _Step, campaign: _Campaign, base: datetime | None, context: _Context) -> None:
    """Each type's publish time and offset from the base; past times are problems."""
    past_reported = False
    for post_type in step.types:
        type_offset = campaign.type_schedule.get(post_type, 0.0) if post_type and step.types_explicit else 0.0
        when: datetime | None = None
        if step.publish_at is not None:
            when = step.publish_at + timedelta(seconds=type_offset)
        elif base is not None and not step.publish_at_given:
            when = base + timedelta(seconds=(step.offset or 0.0) + type_offset)
        offset_seconds: float | None = None
        if base is not None and when is not None:
            offset_seconds = (when - base).total_seconds()
        elif base is None and not step.publish_at_given:
            offset_seconds = (step.offset or 0.0) + type_offset
        step.time_by_type[post_type] = (when, offset_seconds)
        if when is not None and not past_reported and _is_past(when, context):
            message = _past(when, context)
            if step.publish_at is None and offset_seconds is not None:
                message += f"; that is the target's publish_at {format_offset(offset_seconds)}"
            step.problems.add(f"{step.at}.publish_at", message)
            past_reported = True


def _check_parent(step: _Step, provider: str | None) -> None:
    """What a child needs from its parent (run parents first): something to attach to, a thread
    on Discord (whose threadId it inherits), and an earlier time."""
    parent = step.parent
    if parent is None:
        return
    if not parent.attachable:
        step.problems.add(
            f"{step.at}.parent_step_id",
            f"step {parent.step_id!r} publishes only {' and '.join(map(str, parent.types))}, "
            f"which nothing can {step.verb}",
        )
        return
    parent_settings = parent.settings_by_type[parent.attach]
    if provider == "discord" and step.interaction == "reply":
        thread_id = parent_settings.get("threadId")
        if (
            parent.interaction == "post"
            and not parent_settings.get("threadName")
            and thread_id is None
        ):
            step.problems.add(
                f"{step.at}.interaction_type",
                "a discord webhook cannot reply to a channel message: the parent step "
                f"{parent.step_id!r} must start a thread (post_type forum, or "
                "settings.threadName) or post into one (settings.threadId)",
            )
        elif thread_id is not None:
            for settings in step.settings_by_type.values():
                if settings.get("threadId") is None:
                    settings["threadId"] = thread_id
    parent_when, parent_offset = parent.time_by_type[parent.attach]
    for post_type in step.types:
        when, offset_seconds = step.time_by_type[post_type]
        if when is not None and parent_when is not None:
            early, shown = when < parent_when, iso_ms(parent_when)
        elif when is None and parent_when is None and None not in (offset_seconds, parent_offset):
            assert offset_seconds is not None and parent_offset is not None
            early = offset_seconds < parent_offset
            shown = f"the target's publish_at {format_offset(parent_offset)}"
        else:
            continue
        if early:
            noun = "reply" if step.interaction == "reply" else "comment"
            step.problems.add(
                f"{step.at}.publish_at",
                f"a {noun} cannot publish before its parent {parent.step_id!r} at {shown}",
            )
            break


def _claim_step_keys(step: _Step, context: _Context) -> None:
    if step.key is None:
        return
    for post_type in step.types:
        key = step.key if len(step.types) == 1 else f"{step.key}#{post_type}"
        _claim_key(key, step.at, f"{step.at}.idempotencyKey", context, step.problems)


def _allocate(steps: list[_Step], start: int) -> dict[tuple[_Step, str | None], int]:
    """Schedule.posts indexes for the included steps' posts, in step then type order."""
    indexes: dict[tuple[_Step, str | None], int] = {}
    for step in steps:
        if step.included:
            for post_type in step.types:
                indexes[(step, post_type)] = start + len(indexes)
    return indexes


def _campaign_post(
    step: _Step,
    post_type: str | None,
    indexes: dict[tuple[_Step, str | None], int],
    campaign: _Campaign,
    target_index: int,
    account: str,
    provider: str,
    base: datetime | None,
) -> NormalizedPost:
    field_paths: dict[str, str] = {}
    description = step.description
    if description is None and provider in campaign.platform_captions:
        description = campaign.platform_captions[provider]
        field_paths["description"] = f"{campaign.at}.platform_captions.{provider}"
    elif description is None and campaign.caption is not None:
        description = campaign.caption
        field_paths["description"] = f"{campaign.at}.caption"
    media, media_link_index = step.media, step.media_link_index
    if step.interaction == "post" and not step.media_given and campaign.media:
        media, media_link_index = campaign.media, campaign.media_link_index
        field_paths["assets"] = f"{campaign.at}.assets"
        field_paths["media_link"] = f"{campaign.at}.media_link"
    settings = step.settings_by_type[post_type]
    if settings.get("threadName") and not step.settings.get("threadName"):
        field_paths["settings.threadName"] = f"{step.at}.name"  # a forum post's title
    several = len(step.types) > 1
    key = step.key if step.key is None or not several else f"{step.key}#{post_type}"
    when, offset_seconds = step.time_by_type[post_type]
    parent = step.parent
    post = NormalizedPost(
        index=indexes[(step, post_type)],
        account=account,
        provider=provider,
        name=step.name,
        description=description,
        publish_at=when,
        media=[ref.model_copy() for ref in media],
        settings=dict(settings),
        idempotency_key=key,
        path=step.at,
        campaign_index=campaign.index,
        campaign_id=campaign.id,
        step_id=step.step_id,
        step_key=f"{campaign.index}/{target_index}/{step.step_id}"
        + (f"#{post_type}" if several else ""),
        interaction_type=step.interaction,
        parent_index=indexes[(parent, parent.attach)] if parent is not None else None,
        post_type=post_type,
        offset_seconds=offset_seconds,
        require_approval=(
            step.require_approval if step.require_approval is not None
            else campaign.require_approval
        ),
    )
    post._media_link_index = media_link_index
    post._field_paths = field_paths
    return post


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
            is_reply=post.interaction_type != "post",
            post_type=post.post_type,
        )
        for problem in adapter.check_post(draft):
            problems.add(_post_path(post, problem.field), problem.message)
    return list(problems)


_MEDIA_ITEM = re.compile(r"assets\[(\d+)\](.*)")


def problem_path(post: NormalizedPost, relative: str) -> str:
    """A post-relative field (``assets[1]``, ``settings.mediaFit``) -> its path in the schedule."""
    return _post_path(post, relative)


def _post_path(post: NormalizedPost, relative: str) -> str:
    """An adapter's post-relative field -> a schedule path (``assets[i]`` indexes ``media``)."""
    item = _MEDIA_ITEM.fullmatch(relative)
    if item and post._media_link_index == int(item.group(1)):
        relative = "media_link" + item.group(2)
    for name, path in post._field_paths.items():
        if relative == name or relative.startswith((name + ".", name + "[")):
            return path + relative[len(name):]
    return f"{post.path}.{relative}" if relative else post.path
