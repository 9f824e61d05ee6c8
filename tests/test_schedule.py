"""herald.schedule: a schedule envelope -> normalized posts, and every problem with its path."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from herald.schedule import (
    MAX_CHARS,
    NormalizedPost,
    Schedule,
    ScheduleProblem,
    check_posts_against_providers,
    parse_schedule,
)
from providers import UnknownProvider
from providers.base import MediaRef

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)  # every 2026 date after January is in the future


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def post(**fields: Any) -> dict[str, Any]:
    """A valid Discord post; keyword arguments add or replace fields (None removes one)."""
    base: dict[str, Any] = {
        "account": "discord:1234",
        "description": "Shipping today.",
        "publish_at": "2026-06-01T18:00:00Z",
    }
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def parse(body: Any, **kwargs: Any) -> tuple[Schedule | None, list[str]]:
    schedule, problems = parse_schedule(body, now=kwargs.pop("now", NOW), **kwargs)
    return schedule, [str(p) for p in problems]


def parse_ok(body: Any, **kwargs: Any) -> Schedule:
    schedule, problems = parse(body, **kwargs)
    assert problems == []
    assert schedule is not None
    return schedule


def only_post(body: Any, **kwargs: Any) -> NormalizedPost:
    schedule = parse_ok(body, **kwargs)
    assert len(schedule.posts) == 1
    return schedule.posts[0]


# --- the happy path and defaults --------------------------------------------------------------


def test_minimal_schedule_and_its_defaults() -> None:
    schedule = parse_ok({"posts": [post()]})
    assert schedule.timezone == "UTC"
    assert schedule.mode == "scheduled"
    assert schedule.idempotency_key is None
    assert schedule.source_model == "posts_v1"
    assert schedule.posts == [
        NormalizedPost(
            index=0,
            account="discord:1234",
            provider="discord",
            name=None,
            description="Shipping today.",
            publish_at=utc(2026, 6, 1, 18),
            media=[],
            settings={},
            idempotency_key=None,
            path="posts[0]",
            post_type="message",  # discord's default type
        )
    ]
    assert schedule.campaigns == [] and schedule.require_approval is False
    assert schedule.posts[0].publish_at.tzinfo is UTC  # type: ignore[union-attr]


def test_spec_example_envelope() -> None:
    body = {
        "timezone": "America/New_York",
        "mode": "scheduled",
        "idempotencyKey": "launch-week-001",
        "posts": [
            {
                "account": "telegram:-1001",
                "provider": "telegram",
                "name": "Launch update",
                "description": "We shipped the new Herald workflow.",
                "publish_at": "2026-06-01T14:00:00-04:00",
                "assets": [
                    {
                        "url": "https://cdn.example.com/media/launch.png",
                        "managed": True,
                        "kind": "image",
                        "mime": "image/png",
                    }
                ],
            }
        ],
    }
    schedule = parse_ok(body)
    assert (schedule.timezone, schedule.mode, schedule.idempotency_key) == (
        "America/New_York",
        "scheduled",
        "launch-week-001",
    )
    (only,) = schedule.posts
    assert only.provider == "telegram"
    assert only.name == "Launch update"
    assert only.publish_at == utc(2026, 6, 1, 18)
    assert only.media == [
        MediaRef(url="https://cdn.example.com/media/launch.png", kind="image", mime="image/png")
    ]


def test_wrapped_envelope_means_the_same() -> None:
    body = {"timezone": "Europe/Paris", "idempotencyKey": "k1", "posts": [post(), post()]}
    assert parse_ok({"schedule": copy.deepcopy(body)}) == parse_ok(body)


def test_wrapper_problems_use_envelope_relative_paths() -> None:
    schedule, problems = parse({"schedule": {"posts": [post(account=None)]}})
    assert problems == [
        "posts[0].account: required: a connected account handle (such as discord:123456) or id"
    ]
    assert schedule is not None and schedule.posts == []


def test_wrapper_and_envelope_fields_side_by_side_is_a_problem() -> None:
    _, problems = parse({"schedule": {"posts": [post()]}, "posts": [post()]})
    assert problems == [
        'schedule: send the schedule either directly or wrapped in {"schedule": ...}, not both '
        "(found posts beside it)"
    ]


def test_wrapper_that_is_not_an_object() -> None:
    assert parse({"schedule": "posts"}) == (
        None,
        ["schedule: must be an object (the envelope), got a string"],
    )


def test_unknown_fields_are_ignored() -> None:
    # ScheduleEnvelope and PostInput allow additional properties.
    only_post({"posts": [post(interaction_type="post", extra={"a": 1})], "client": "cli/1.0"})


def test_account_is_stripped() -> None:
    assert only_post({"posts": [post(account="  discord:1234\n")]}).account == "discord:1234"


def test_draft_mode_may_omit_publish_at() -> None:
    schedule = parse_ok({"mode": "draft", "posts": [post(publish_at=None)]})
    assert schedule.mode == "draft"
    assert schedule.posts[0].publish_at is None


def test_scheduled_mode_requires_publish_at() -> None:
    _, problems = parse({"posts": [post(publish_at=None)]})
    assert problems == ["posts[0].publish_at: required in scheduled mode (or send mode: draft)"]


def test_settings_are_kept() -> None:
    settings = {"threadName": "Launch", "allowMentions": False}
    assert only_post({"posts": [post(settings=settings)]}).settings == settings


# --- aliases ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "attribute", "expected"),
    [
        ("publish_at", "2026-06-01T18:00:00Z", "publish_at", utc(2026, 6, 1, 18)),
        ("publishAt", "2026-06-01T18:00:00Z", "publish_at", utc(2026, 6, 1, 18)),
        ("description", "hello", "description", "hello"),
        ("text", "hello", "description", "hello"),
        ("name", "Launch", "name", "Launch"),
        ("title", "Launch", "name", "Launch"),
        ("media_link", "https://e.com/a.png", "media", [MediaRef(url="https://e.com/a.png")]),
        ("mediaLink", "https://e.com/a.png", "media", [MediaRef(url="https://e.com/a.png")]),
        ("idempotencyKey", "post-1", "idempotency_key", "post-1"),
        ("idempotency_key", "post-1", "idempotency_key", "post-1"),
    ],
)
def test_each_post_alias_alone(key: str, value: str, attribute: str, expected: Any) -> None:
    raw = {"account": "discord:1234", "publish_at": "2026-06-01T18:00:00Z", "description": "x"}
    for spellings in (("publish_at", "publishAt"), ("description", "text")):
        if key in spellings:
            for other in spellings:
                raw.pop(other, None)
    raw[key] = value
    assert getattr(only_post({"posts": [raw]}), attribute) == expected


@pytest.mark.parametrize("key", ["idempotencyKey", "idempotency_key"])
def test_each_envelope_idempotency_alias_alone(key: str) -> None:
    assert parse_ok({key: "run-1", "posts": [post()]}).idempotency_key == "run-1"


def test_aliases_with_equal_values_are_fine() -> None:
    raw = post(text="Shipping today.", publishAt="2026-06-01T18:00:00Z")
    assert only_post({"posts": [raw]}).description == "Shipping today."


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"description": "a", "text": "b"},
            "posts[0].description: both 'description' and 'text' are given with different values; "
            "send only one",
        ),
        (
            {"publish_at": "2026-06-01T18:00:00Z", "publishAt": "2026-06-02T18:00:00Z"},
            "posts[0].publish_at: both 'publish_at' and 'publishAt' are given with different "
            "values; send only one",
        ),
        (
            {"name": "a", "title": "b"},
            "posts[0].name: both 'name' and 'title' are given with different values; send only one",
        ),
    ],
)
def test_aliases_with_different_values_are_a_problem(fields: dict[str, str], expected: str) -> None:
    schedule, problems = parse({"posts": [post(**fields)]})
    assert problems == [expected]
    assert schedule is not None and schedule.posts == []


def test_envelope_idempotency_aliases_that_disagree() -> None:
    _, problems = parse({"idempotencyKey": "a", "idempotency_key": "b", "posts": [post()]})
    assert problems == [
        "idempotencyKey: both 'idempotencyKey' and 'idempotency_key' are given with different "
        "values; send only one"
    ]


def test_null_counts_as_absent() -> None:
    raw = post(text=None, description=None, publishAt=None)
    raw.update({"text": None, "title": None, "mediaLink": None, "settings": None, "assets": None})
    raw["description"] = "x"
    normalized = only_post({"timezone": None, "mode": None, "idempotencyKey": None, "posts": [raw]})
    assert (normalized.name, normalized.media, normalized.settings) == (None, [], {})


# --- time ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-01-15T09:00:00", utc(2026, 1, 15, 14)),  # EST
        ("2026-07-15 09:00", utc(2026, 7, 15, 13)),  # EDT
    ],
)
def test_local_times_use_the_schedule_timezone(local: str, expected: datetime) -> None:
    body = {"timezone": "America/New_York", "posts": [post(publish_at=local)]}
    assert only_post(body).publish_at == expected


def test_explicit_offsets_win_over_the_timezone() -> None:
    body = {
        "timezone": "Asia/Tokyo",
        "posts": [
            post(publish_at="2026-06-01T14:00:00-04:00"),
            post(publish_at="2026-06-01T18:00:00Z"),
            post(publish_at="2026-06-01T18:00:00"),  # this one is Tokyo time
        ],
    }
    assert [p.publish_at for p in parse_ok(body).posts] == [
        utc(2026, 6, 1, 18),
        utc(2026, 6, 1, 18),
        utc(2026, 6, 1, 9),
    ]


def test_dst_gap_is_a_problem() -> None:
    body = {"timezone": "Europe/Paris", "posts": [post(publish_at="2026-03-29T02:30:00")]}
    _, problems = parse(body)
    assert problems == [
        "posts[0].publish_at: 2026-03-29T02:30:00 does not exist in Europe/Paris "
        "(clocks jump forward from 02:00 to 03:00 on 2026-03-29)"
    ]


def test_dst_fold_is_the_first_occurrence() -> None:
    raw = post(publishAt="2026-11-01T01:30", publish_at=None)
    body = {"timezone": "America/New_York", "posts": [raw]}
    assert only_post(body).publish_at == utc(2026, 11, 1, 5, 30)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tomorrow", "posts[0].publish_at: 'tomorrow' is not an ISO 8601 date-time"),
        ("2026-06-01", "posts[0].publish_at: '2026-06-01' has no time of day"),
        ("", "posts[0].publish_at: empty date-time"),
        ("2026-02-30T10:00", "posts[0].publish_at: '2026-02-30T10:00' is not a valid date-time"),
    ],
)
def test_unreadable_times(value: str, expected: str) -> None:
    _, problems = parse({"posts": [post(publish_at=value)]})
    assert len(problems) == 1 and problems[0].startswith(expected)


def test_publish_at_must_be_a_string() -> None:
    _, problems = parse({"posts": [post(publish_at=1780336800)]})
    assert problems == ["posts[0].publish_at: must be a date-time string, got a number"]


def test_past_times_beyond_the_grace_are_a_problem() -> None:
    late = NOW - timedelta(seconds=301)
    _, problems = parse({"posts": [post(publish_at=late.isoformat())]})
    assert problems == [
        "posts[0].publish_at: 2026-01-01T11:54:59.000Z is in the past "
        "(now is 2026-01-01T12:00:00.000Z)"
    ]


def test_past_times_within_the_grace_are_accepted() -> None:
    recent = NOW - timedelta(seconds=299)
    assert only_post({"posts": [post(publish_at=recent.isoformat())]}).publish_at == recent


def test_past_grace_is_configurable() -> None:
    recent = (NOW - timedelta(seconds=1)).isoformat()
    _, problems = parse({"posts": [post(publish_at=recent)]}, past_grace_seconds=0)
    assert problems and problems[0].endswith("is in the past (now is 2026-01-01T12:00:00.000Z)")
    only_post({"posts": [post(publish_at=NOW.isoformat())]}, past_grace_seconds=0)


def test_now_in_another_offset_is_the_same_instant() -> None:
    kathmandu_now = NOW.astimezone(timezone(timedelta(hours=5, minutes=45)))
    late = (NOW - timedelta(seconds=301)).isoformat()
    _, problems = parse({"posts": [post(publish_at=late)]}, now=kathmandu_now)
    assert len(problems) == 1 and "is in the past" in problems[0]


def test_drafts_may_hold_past_times() -> None:
    # A draft is edited before it runs; the past check applies when it is scheduled.
    assert only_post({"mode": "draft", "posts": [post(publish_at="2020-01-01T00:00Z")]}).publish_at


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_schedule({"posts": [post()]}, now=datetime(2026, 1, 1))


# --- envelope problems ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([post()], "body: must be a JSON object (a schedule), got a list"),
        ("posts", "body: must be a JSON object (a schedule), got a string"),
        (None, "body: must be a JSON object (a schedule), got null"),
    ],
)
def test_body_that_is_not_an_object(body: Any, expected: str) -> None:
    assert parse(body) == (None, [expected])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "posts: required: a list of posts, each with an account and publish_at"),
        ({"posts": []}, "posts: must contain at least one post"),
        ({"posts": {"0": post()}}, "posts: must be a list of posts, got an object"),
        ({"posts": [post(), "hello"]}, "posts[1]: must be an object, got a string"),
        ({"posts": [post(), None]}, "posts[1]: must be an object, got null"),
    ],
)
def test_posts_shape_problems(body: dict[str, Any], expected: str) -> None:
    _, problems = parse(body)
    assert problems == [expected]


def test_unknown_timezone() -> None:
    body = {
        "timezone": "Mars/Olympus",
        "posts": [post(publish_at="2026-06-01T18:00"), post(publish_at="2026-06-01T18:00Z")],
    }
    schedule, problems = parse(body)
    assert problems == [
        "timezone: unknown timezone 'Mars/Olympus' (use an IANA name such as Europe/Paris)",
        "posts[0].publish_at: has no UTC offset and the schedule's timezone is invalid",
    ]
    # The offset-aware post still normalizes, so provider checks can still run on it.
    assert schedule is not None and [p.index for p in schedule.posts] == [1]
    assert schedule.timezone == "UTC"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("live", "mode: unknown mode 'live' (use scheduled or draft)"),
        ("Draft", "mode: unknown mode 'Draft' (use scheduled or draft)"),
        (True, "mode: unknown mode a boolean (use scheduled or draft)"),
    ],
)
def test_unknown_mode(mode: Any, expected: str) -> None:
    _, problems = parse({"mode": mode, "posts": [post()]})
    assert problems == [expected]


def test_campaigns_are_recognized() -> None:
    # The campaign model itself is tested in tests/test_campaigns.py.
    target = {
        "account": "discord:1",
        "publish_at": "2026-06-01T18:00:00Z",
        "steps": [{"text": "hi"}],
    }
    schedule = parse_ok({"campaigns": [{"name": "Launch", "targets": [target]}]})
    assert schedule.source_model == "campaigns_v2"
    assert [(p.path, p.description) for p in schedule.posts] == [
        ("campaigns[0].targets[0].steps[0]", "hi")
    ]


def test_posts_and_campaigns_together() -> None:
    schedule, problems = parse({"posts": [post()], "campaigns": [{"name": "x", "targets": []}]})
    assert problems == [
        "campaigns: send either posts[] or campaigns[], not both",
        "campaigns[0].targets: must contain at least one target",
    ]
    assert schedule is not None and schedule.source_model == "campaigns_v2"


def test_the_post_limit() -> None:
    _, problems = parse({"posts": [post() for _ in range(1001)]})
    assert problems == ["posts: 1,001 posts; a run holds at most 1,000 — split the schedule"]
    assert len(parse_ok({"posts": [post() for _ in range(1000)]}).posts) == 1000


def test_the_post_limit_is_configurable() -> None:
    _, problems = parse({"posts": [post(), post(), post()]}, max_posts=2)
    assert problems == ["posts: 3 posts; a run holds at most 2 — split the schedule"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("", "idempotencyKey: must not be empty (leave it out instead)"),
        ("k" * 201, "idempotencyKey: 201 characters; at most 200 allowed"),
        (42, "idempotencyKey: must be a string, got a number"),
    ],
)
def test_bad_envelope_idempotency_keys(key: Any, expected: str) -> None:
    schedule, problems = parse({"idempotencyKey": key, "posts": [post()]})
    assert problems == [expected]
    assert schedule is not None and schedule.idempotency_key is None


def test_duplicate_post_idempotency_keys() -> None:
    keys = [{"idempotencyKey": "a"}, {"idempotencyKey": "b"}, {"idempotency_key": "a"}]
    body = {"posts": [post(**key) for key in keys]}
    schedule, problems = parse(body)
    assert problems == ["posts[2].idempotencyKey: same key as posts[0]"]
    assert schedule is not None and [p.idempotency_key for p in schedule.posts] == ["a", "b"]


# --- every problem, with its path, in one call ------------------------------------------------


def test_every_problem_is_reported_with_its_path() -> None:
    body = {
        "posts": [
            post(account=None),  # 0: no account
            post(),  # 1: fine
            post(publish_at="next friday", settings=["x"]),  # 2: two problems
            post(text="hi", description="hello"),  # 3: conflicting aliases
            post(),  # 4: fine
            post(assets=["ftp://example.com/a.png"], account="myspace:7"),  # 5: two problems
        ]
    }
    schedule, problems = parse_schedule(body, now=NOW)
    paths = [p.path for p in problems]
    assert paths == [
        "posts[0].account",
        "posts[2].publish_at",
        "posts[2].settings",
        "posts[3].description",
        "posts[5].account",
        "posts[5].assets[0]",
    ]
    assert str(problems[2]) == "posts[2].settings: must be an object, got a list"
    assert str(problems[4]) == f"posts[5].account: {UnknownProvider('myspace').message}"
    assert str(problems[5]) == "posts[5].assets[0]: 'ftp://example.com/a.png' is not an http(s) URL"
    # Only the clean posts are normalized, and they keep their positions.
    assert schedule is not None and [p.index for p in schedule.posts] == [1, 4]


def test_envelope_and_post_problems_together() -> None:
    body = {"mode": "later", "timezone": 5, "posts": [post(), post(account=7), post(name=["x"])]}
    _, problems = parse(body)
    assert problems == [
        "timezone: timezone must be a string such as Europe/Paris, got int",
        "mode: unknown mode 'later' (use scheduled or draft)",
        "posts[1].account: must be a string, got a number",
        "posts[2].name: must be a string, got a list",
    ]


def test_problem_model() -> None:
    problem = ScheduleProblem(path="posts[2].description", message="too long")
    assert str(problem) == "posts[2].description: too long"
    assert problem.model_dump() == {"path": "posts[2].description", "message": "too long"}


# --- accounts and providers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "provider"),
    [
        ({"account": "discord:123"}, "discord"),
        ({"account": "telegram:-100123"}, "telegram"),
        ({"account": "telegram:-100123", "provider": "telegram"}, "telegram"),
        ({"account": "acc_42", "provider": "discord"}, "discord"),  # an id, provider given
        ({"account": "acc_42"}, None),  # an id: the API resolves it from the connected account
        ({"account": "discord:123", "provider": ""}, "discord"),
    ],
)
def test_provider_given_or_inferred(fields: dict[str, Any], provider: str | None) -> None:
    assert only_post({"posts": [post(**fields)]}).provider == provider


def test_provider_conflicting_with_the_handle() -> None:
    _, problems = parse({"posts": [post(account="discord:1", provider="telegram")]})
    assert problems == ["posts[0].provider: 'telegram' does not match account handle 'discord:1'"]


@pytest.mark.parametrize(
    ("fields", "path", "provider"),
    [
        ({"provider": "myspace", "account": "acc_1"}, "posts[0].provider", "myspace"),
        ({"provider": "pinterest", "account": "acc_1"}, "posts[0].provider", "pinterest"),
        ({"account": "tiktok:@herald"}, "posts[0].account", "tiktok"),
        ({"account": "myspace:tom"}, "posts[0].account", "myspace"),
    ],
)
def test_unknown_and_unsupported_providers(
    fields: dict[str, Any], path: str, provider: str
) -> None:
    _, problems = parse({"posts": [post(**fields)]})
    assert problems == [f"{path}: {UnknownProvider(provider).message}"]


def test_known_but_unsupported_provider_says_so() -> None:
    _, problems = parse({"posts": [post(account="pinterest:board:1")]})
    assert problems[0].startswith("posts[0].account: provider 'pinterest' is not supported yet")


def test_provider_must_be_a_string() -> None:
    _, problems = parse({"posts": [post(provider=["discord"])]})
    assert problems == ["posts[0].provider: must be a string, got a list"]


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        ("   ", "posts[0].account: must not be empty"),
        (12345, "posts[0].account: must be a string, got a number"),
    ],
)
def test_bad_accounts(account: Any, expected: str) -> None:
    _, problems = parse({"posts": [post(account=account)]})
    assert problems == [expected]


# --- length caps ------------------------------------------------------------------------------


def URL(length: int) -> str:  # noqa: N802 - reads like a constructor in the table below
    return "https://e.com/" + "a" * (length - len("https://e.com/"))


@pytest.mark.parametrize(
    ("field", "cap", "make"),
    [
        ("account", 200, lambda n: {"account": "discord:" + "1" * (n - 8)}),
        ("name", 1_000, lambda n: {"name": "n" * n}),
        ("description", 100_000, lambda n: {"description": "d" * n}),
        ("idempotencyKey", 200, lambda n: {"idempotencyKey": "k" * n}),
        ("media_link", 2_048, lambda n: {"media_link": URL(n)}),
        ("assets[0]", 2_048, lambda n: {"assets": [URL(n)]}),
        ("assets[0].url", 2_048, lambda n: {"assets": [{"url": URL(n)}]}),
    ],
)
def test_length_caps(field: str, cap: int, make: Any) -> None:
    only_post({"posts": [post(**make(cap))]})
    _, problems = parse({"posts": [post(**make(cap + 1))]})
    assert problems == [f"posts[0].{field}: {cap + 1:,} characters; at most {cap:,} allowed"]


def test_caps_are_the_documented_ones() -> None:
    assert MAX_CHARS == {
        "account": 200,
        "name": 1_000,
        "description": 100_000,
        "idempotencyKey": 200,
        "url": 2_048,
    }


# --- media ------------------------------------------------------------------------------------


def test_assets_and_media_link_are_merged_in_order() -> None:
    raw = post(
        assets=[
            "https://cdn.example.com/a.png",
            {
                "url": "https://cdn.example.com/b.mp4",
                "kind": "video",
                "mime": "video/mp4",
                "size": 1234,
                "originalFilename": "b.mp4",
                "altText": "a clip",
                "managed": True,
                "width": 640,
            },
        ],
        mediaLink="http://cdn.example.com/c.jpg",
    )
    assert only_post({"posts": [raw]}).media == [
        MediaRef(url="https://cdn.example.com/a.png"),
        MediaRef(
            url="https://cdn.example.com/b.mp4",
            kind="video",
            mime="video/mp4",
            size=1234,
            filename="b.mp4",
            alt_text="a clip",
        ),
        MediaRef(url="http://cdn.example.com/c.jpg"),
    ]


def test_media_link_alone_and_snake_case_asset_fields() -> None:
    raw = post(
        media_link="https://cdn.example.com/c.jpg",
        assets=[{"url": "https://cdn.example.com/d.png", "filename": "d.png", "alt_text": "d"}],
    )
    media = only_post({"posts": [raw]}).media
    assert [(m.url, m.filename, m.alt_text) for m in media] == [
        ("https://cdn.example.com/d.png", "d.png", "d"),
        ("https://cdn.example.com/c.jpg", None, None),
    ]


def test_media_link_already_among_the_assets_is_not_added_twice() -> None:
    raw = post(assets=["https://cdn.example.com/a.png"], media_link="https://cdn.example.com/a.png")
    assert only_post({"posts": [raw]}).media == [MediaRef(url="https://cdn.example.com/a.png")]


NOT_A_LIST = "must be a list of URLs or asset objects, got a string"
NOT_AN_ASSET = "must be a URL string or an object with a url, got"
BOTH_ALT = "both 'altText' and 'alt_text' are given with different values; send only one"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"assets": "https://e.com/a.png"}, f"assets: {NOT_A_LIST}"),
        ({"assets": [7]}, f"assets[0]: {NOT_AN_ASSET} a number"),
        ({"assets": [["https://e.com/a.png"]]}, f"assets[0]: {NOT_AN_ASSET} a list"),
        ({"assets": [{"kind": "image"}]}, "assets[0].url: required: a public http(s) URL"),
        ({"assets": [{"url": 7}]}, "assets[0].url: must be a string, got a number"),
        ({"assets": ["ftp://e.com/a"]}, "assets[0]: 'ftp://e.com/a' is not an http(s) URL"),
        ({"assets": ["/media/a.png"]}, "assets[0]: '/media/a.png' is not an http(s) URL"),
        ({"assets": ["https://"]}, "assets[0]: 'https://' is not an http(s) URL"),
        ({"assets": ["https://e.com/a b"]}, "assets[0]: 'https://e.com/a b' is not an http(s) URL"),
        ({"assets": ["https://[::1/a"]}, "assets[0]: 'https://[::1/a' is not an http(s) URL"),
        (
            {"assets": [{"url": "file:///etc/passwd"}]},
            "assets[0].url: 'file:///etc/passwd' is not an http(s) URL",
        ),
        (
            {"assets": [{"url": "https://e.com/a", "kind": "gif"}]},
            "assets[0].kind: must be one of image, video, audio, other",
        ),
        (
            {"assets": [{"url": "https://e.com/a", "size": -1}]},
            "assets[0].size: must be a whole number of bytes",
        ),
        (
            {"assets": [{"url": "https://e.com/a", "size": "10"}]},
            "assets[0].size: must be a whole number of bytes",
        ),
        (
            {"assets": [{"url": "https://e.com/a", "mime": 5}]},
            "assets[0].mime: must be a string, got a number",
        ),
        (
            {"assets": [{"url": "https://e.com/a", "altText": "a", "alt_text": "b"}]},
            f"assets[0].altText: {BOTH_ALT}",
        ),
        ({"media_link": "data:,x"}, "media_link: 'data:,x' is not an http(s) URL"),
        ({"mediaLink": 5}, "media_link: must be a string, got a number"),
    ],
)
def test_bad_media(fields: dict[str, Any], expected: str) -> None:
    schedule, problems = parse({"posts": [post(**fields)]})
    assert problems == [f"posts[0].{expected}"]
    assert schedule is not None and schedule.posts == []


def test_every_bad_asset_of_a_post_is_reported() -> None:
    assets = ["https://e.com/ok.png", 1, "ftp://x/y", {"url": "https://e.com/z", "kind": "x"}]
    raw = post(assets=assets)
    _, problems = parse({"posts": [raw]})
    assert [p.split(":")[0] for p in problems] == [
        "posts[0].assets[1]",
        "posts[0].assets[2]",
        "posts[0].assets[3].kind",
    ]


# --- provider limits --------------------------------------------------------------------------


def checked(body: dict[str, Any]) -> list[str]:
    schedule = parse_ok(body)
    return [str(p) for p in check_posts_against_providers(schedule)]


def test_discord_text_limit() -> None:
    assert checked({"posts": [post(description="x" * 2000)]}) == []
    assert checked({"posts": [post(description="x" * 2001)]}) == [
        "posts[0].description: 2,001 characters, discord allows 2,000"
    ]


def test_provider_problems_keep_the_post_index() -> None:
    body = {
        "posts": [
            post(text="fine", description=None),
            post(account="telegram:-1001", description="y" * 4097),
            post(description="x" * 2001),
        ]
    }
    assert checked(body) == [
        "posts[1].description: 4,097 characters, telegram allows 4,096",
        "posts[2].description: 2,001 characters, discord allows 2,000",
    ]


def test_telegram_caption_limit_applies_with_media() -> None:
    raw = post(account="telegram:-1001", description="c" * 1025, media_link="https://e.com/a.png")
    assert checked({"posts": [raw]}) == [
        "posts[0].description: 1,025 characters, telegram allows 1,024 in a caption "
        "(posts with media)"
    ]


def test_provider_settings_problems_are_mapped_to_settings_paths() -> None:
    raw = post(settings={"threadName": "launch", "colour": "red"})
    assert checked({"posts": [raw]}) == [
        "posts[0].settings.colour: unknown discord setting 'colour' "
        "(supported: allowMentions, embeds, mediaFit, threadId, threadName)"
    ]


def test_media_problems_name_the_asset_or_the_media_link() -> None:
    big = 11 * 1024 * 1024
    raw = post(
        assets=[{"url": "https://e.com/a.png"}, {"url": "https://e.com/b.zip", "size": big}],
        media_link="https://e.com/c.png",
    )
    problems = checked({"posts": [raw]})
    assert [p.split(":")[0] for p in problems] == ["posts[0].assets[1]"]
    assert problems[0].endswith("discord allows 10 MiB per file")

    eleven = [f"https://e.com/{i}.png" for i in range(10)]
    problems = checked({"posts": [post(assets=eleven, media_link="https://e.com/x.png")]})
    assert problems == [
        "posts[0].assets: 11 files, discord allows 10 attachments per message"
    ]


def test_oversized_media_link_is_named_as_such() -> None:
    raw = post(assets=["https://e.com/a.png"], media_link="https://e.com/b.zip")
    schedule = parse_ok({"posts": [raw]})
    # Sizes are known only after download; simulate what the media step learns.
    schedule.posts[0].media[1].size = 11 * 1024 * 1024
    problems = [str(p) for p in check_posts_against_providers(schedule)]
    assert len(problems) == 1
    assert problems[0].startswith("posts[0].media_link: 11.0 MiB")


def test_posts_without_a_provider_are_not_checked() -> None:
    assert checked({"posts": [post(account="acc_42", description="x" * 5000)]}) == []


def test_draft_schedules_are_checked_too() -> None:
    body = {"mode": "draft", "posts": [post(publish_at=None, description="x" * 2001)]}
    assert checked(body) == ["posts[0].description: 2,001 characters, discord allows 2,000"]


def test_parse_and_provider_problems_in_one_answer() -> None:
    body = {"posts": [post(publish_at="soon"), post(description="x" * 2001)]}
    schedule, problems = parse_schedule(body, now=NOW)
    assert schedule is not None
    everything = [str(p) for p in problems + check_posts_against_providers(schedule)]
    assert [p.split(":")[0] for p in everything] == ["posts[0].publish_at", "posts[1].description"]
