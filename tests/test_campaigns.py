"""herald.schedule, campaigns_v2: a campaign graph -> the same flat Schedule.posts plus the graph,
and every problem with its path. Also the approval envelope fields and parse_offset."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import providers
from herald.schedule import (
    ApprovalPolicy,
    CampaignSpec,
    CampaignStep,
    CampaignTarget,
    NormalizedPost,
    Schedule,
    check_posts_against_providers,
    parse_offset,
    parse_schedule,
)
from providers import UnknownProvider
from providers.base import MediaRef
from providers.post_types import (
    INTERACTIONS,
    NOT_REPLYABLE_TYPES,
    POST_TYPES,
    apply_post_type,
)
from providers.telegram import TelegramAdapter

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BASE = "2026-06-01T15:00:00Z"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


T0 = utc(2026, 6, 1, 15)


def target(account: str = "telegram:@chan", steps: Any = None, **fields: Any) -> dict[str, Any]:
    """A target publishing at BASE; keyword arguments add or replace fields (None removes one)."""
    base: dict[str, Any] = {"account": account, "publish_at": BASE}
    if steps is not None:
        base["steps"] = steps
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def campaign(*targets: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "Launch", "targets": list(targets)}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def body(*campaigns: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"campaigns": list(campaigns), **fields}


def parse(data: Any, **kwargs: Any) -> tuple[Schedule | None, list[str]]:
    schedule, problems = parse_schedule(data, now=kwargs.pop("now", NOW), **kwargs)
    return schedule, [str(p) for p in problems]


def parse_ok(data: Any, **kwargs: Any) -> Schedule:
    schedule, problems = parse(data, **kwargs)
    assert problems == []
    assert schedule is not None
    return schedule


def problems_of(data: Any, **kwargs: Any) -> list[str]:
    return parse(data, **kwargs)[1]


def checked(data: Any) -> list[str]:
    return [str(p) for p in check_posts_against_providers(parse_ok(data))]


THREAD = [
    {"id": "s1", "description": "1/3"},
    {"id": "s2", "interaction_type": "reply", "parent_step_id": "s1", "description": "2/3",
     "offset": "+1m"},
    {"id": "s3", "interactionType": "reply", "parentStepId": "s2", "text": "3/3", "offset": 120},
]


@pytest.fixture
def instagram(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend Herald publishes to instagram (story/feed/reel types, comments only): enough for
    the parser, which only asks the registry whether the provider exists."""
    monkeypatch.setitem(providers.ADAPTERS, "instagram", TelegramAdapter)


# --- the happy path ---------------------------------------------------------------------------


def test_a_thread_of_three_on_two_networks() -> None:
    discord_thread = copy.deepcopy(THREAD)
    discord_thread[0].update(post_type="forum", name="Launch day")
    data = body(
        campaign(
            target("telegram:@chan", copy.deepcopy(THREAD)),
            target("discord:1234", discord_thread),
            id="launch",
        ),
        idempotencyKey="run-1",
    )
    schedule = parse_ok(data)
    assert schedule.source_model == "campaigns_v2"
    assert schedule.idempotency_key == "run-1"
    posts = schedule.posts
    assert [p.index for p in posts] == [0, 1, 2, 3, 4, 5]
    assert [(p.account, p.provider, p.step_id, p.description) for p in posts] == [
        ("telegram:@chan", "telegram", "s1", "1/3"),
        ("telegram:@chan", "telegram", "s2", "2/3"),
        ("telegram:@chan", "telegram", "s3", "3/3"),
        ("discord:1234", "discord", "s1", "1/3"),
        ("discord:1234", "discord", "s2", "2/3"),
        ("discord:1234", "discord", "s3", "3/3"),
    ]
    assert [p.parent_index for p in posts] == [None, 0, 1, None, 3, 4]
    assert [p.interaction_type for p in posts] == ["post", "reply", "reply"] * 2
    times = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    assert [p.publish_at for p in posts] == times * 2
    assert [p.offset_seconds for p in posts] == [0.0, 60.0, 120.0] * 2
    assert [p.post_type for p in posts] == ["message"] * 3 + ["forum", "message", "message"]
    assert [p.path for p in posts] == [
        f"campaigns[0].targets[{t}].steps[{s}]" for t in (0, 1) for s in (0, 1, 2)
    ]
    assert [p.step_key for p in posts] == [
        "0/0/s1", "0/0/s2", "0/0/s3", "0/1/s1", "0/1/s2", "0/1/s3"
    ]
    assert {(p.campaign_index, p.campaign_id) for p in posts} == {(0, "launch")}
    # The forum post starts the thread: its name is the thread's title; replies go into it.
    assert posts[3].settings == {"threadName": "Launch day"}
    assert posts[4].settings == {} and posts[5].settings == {}
    assert posts[0].publish_at.tzinfo is UTC  # type: ignore[union-attr]

    assert schedule.campaigns == [
        CampaignSpec(
            index=0,
            id="launch",
            name="Launch",
            targets=[
                CampaignTarget(
                    account=account,
                    provider=provider,
                    publish_at=T0,
                    steps=[
                        CampaignStep(step_id="s1", name=name, interaction_type="post",
                                     parent_step_id=None, post_indexes=[first]),
                        CampaignStep(step_id="s2", name=None, interaction_type="reply",
                                     parent_step_id="s1", post_indexes=[first + 1]),
                        CampaignStep(step_id="s3", name=None, interaction_type="reply",
                                     parent_step_id="s2", post_indexes=[first + 2]),
                    ],
                )
                for account, provider, name, first in (
                    ("telegram:@chan", "telegram", None, 0),
                    ("discord:1234", "discord", "Launch day", 3),
                )
            ],
        )
    ]
    assert checked(data) == []


def test_indexes_run_across_campaigns_and_targets() -> None:
    data = body(
        campaign(target(steps=[{"text": "a"}]), target("discord:1", [{"text": "b"}])),
        campaign(target(steps=[{"text": "c"}, {"text": "d"}]), name="Second"),
    )
    posts = parse_ok(data).posts
    assert [(p.index, p.description, p.campaign_index, p.step_key) for p in posts] == [
        (0, "a", 0, "0/0/step1"),
        (1, "b", 0, "0/1/step1"),
        (2, "c", 1, "1/0/step1"),
        (3, "d", 1, "1/0/step2"),
    ]
    assert [p.campaign_id for p in posts] == [None] * 4  # the API generates ids


def test_absent_or_empty_steps_mean_one_implicit_step() -> None:
    for steps in (None, []):
        data = body(campaign(target(steps=steps), caption="Hello"))
        (only,) = parse_ok(data).posts
        assert (only.step_id, only.path, only.description) == (
            "step1", "campaigns[0].targets[0]", "Hello"
        )
        assert (only.publish_at, only.offset_seconds, only.interaction_type) == (T0, 0.0, "post")


def test_step_ids_default_to_their_position_and_accept_aliases() -> None:
    steps = [
        {"text": "a"},
        {"step_id": "two", "text": "b"},
        {"stepId": "three", "text": "c"},
        {"text": "d"},
    ]
    posts = parse_ok(body(campaign(target(steps=steps)))).posts
    assert [p.step_id for p in posts] == ["step1", "two", "three", "step4"]


def test_step_fields_use_the_post_aliases() -> None:
    step = {
        "title": "T",
        "text": "hello",
        "publishAt": "2026-06-02T09:00:00Z",
        "assets": ["https://e.com/a.png"],
        "mediaLink": "https://e.com/b.mp4",
        "settings": {"silent": True},
        "idempotency_key": "step-key",
        "postType": "message",
        "requireApproval": True,
    }
    (only,) = parse_ok(body(campaign(target(steps=[step])))).posts
    assert (only.name, only.description, only.publish_at) == ("T", "hello", utc(2026, 6, 2, 9))
    assert only.media == [MediaRef(url="https://e.com/a.png"), MediaRef(url="https://e.com/b.mp4")]
    assert (only.settings, only.idempotency_key) == ({"silent": True}, "step-key")
    assert (only.post_type, only.require_approval) == ("message", True)
    assert only.offset_seconds == 18 * 3600.0


def test_a_step_may_repeat_its_targets_account_and_provider() -> None:
    step = {"account": "telegram:@chan", "provider": "telegram", "text": "x"}
    assert len(parse_ok(body(campaign(target(steps=[step])))).posts) == 1


def test_local_times_use_the_schedule_timezone() -> None:
    data = body(
        campaign(target(publish_at="2026-06-01T11:00:00",
                        steps=[{"text": "a"}, {"text": "b", "publish_at": "2026-06-01 12:30"}])),
        timezone="America/New_York",
    )
    posts = parse_ok(data).posts
    assert [p.publish_at for p in posts] == [T0, utc(2026, 6, 1, 16, 30)]
    assert [p.offset_seconds for p in posts] == [0.0, 5400.0]


def test_a_child_may_come_before_its_parent_in_the_list() -> None:
    steps = [
        {"id": "r", "interaction_type": "reply", "parent_step_id": "p", "text": "r",
         "offset": "+1h"},
        {"id": "p", "text": "p"},
    ]
    posts = parse_ok(body(campaign(target(steps=steps)))).posts
    assert [(p.step_id, p.parent_index) for p in posts] == [("r", 1), ("p", None)]


# --- text, media and types --------------------------------------------------------------------


def test_text_comes_from_the_step_then_platform_captions_then_caption() -> None:
    data = body(
        campaign(
            target("telegram:@chan", [{"text": "own"}, {}]),
            target("discord:1", [{}]),
            caption="default",
            platform_captions={"telegram": "for telegram", "x": "unused"},
        )
    )
    assert [p.description for p in parse_ok(data).posts] == ["own", "for telegram", "default"]


@pytest.mark.parametrize(
    "fields",
    [
        {"description": "default", "platformCaptions": {"telegram": "tg"}},
        {"text": "default", "platform_captions": {"telegram": "tg"}},
    ],
)
def test_campaign_text_aliases(fields: dict[str, Any]) -> None:
    data = body(campaign(target("telegram:@c", [{}]), target("discord:1", [{}]), **fields))
    assert [p.description for p in parse_ok(data).posts] == ["tg", "default"]


def test_campaign_media_is_the_default_for_post_steps_only() -> None:
    steps = [
        {"id": "a", "text": "a"},
        {"id": "b", "text": "b", "assets": ["https://e.com/own.png"]},
        {"id": "c", "text": "c", "assets": []},  # explicitly none
        {"id": "d", "text": "d", "interaction_type": "reply", "parent_step_id": "a"},
    ]
    data = body(
        campaign(target(steps=steps), assets=["https://e.com/c.png"],
                 media_link="https://e.com/c.mp4")
    )
    media = [[m.url for m in p.media] for p in parse_ok(data).posts]
    assert media == [
        ["https://e.com/c.png", "https://e.com/c.mp4"],
        ["https://e.com/own.png"],
        [],
        [],
    ]


def test_platform_types_expand_a_step_and_type_schedule_offsets_each_type() -> None:
    steps = [
        {"id": "s1", "name": "Launch", "idempotencyKey": "k1"},
        {"id": "s2", "interaction_type": "reply", "parent_step_id": "s1", "text": "more",
         "offset": "+5m"},
    ]
    data = body(
        campaign(
            target("discord:1", steps),
            caption="hello",
            platform_types={"discord": ["forum", "message"]},
            type_schedule={"forum": "+0h", "message": "+1h"},
        )
    )
    schedule = parse_ok(data)
    posts = schedule.posts
    assert [(p.step_key, p.post_type, p.offset_seconds) for p in posts] == [
        ("0/0/s1#forum", "forum", 0.0),
        ("0/0/s1#message", "message", 3600.0),
        ("0/0/s2", "message", 300.0),  # the default type (not asked for) takes no type offset
    ]
    assert [p.publish_at for p in posts] == [
        T0, T0 + timedelta(hours=1), T0 + timedelta(minutes=5)
    ]
    assert [p.settings for p in posts] == [{"threadName": "Launch"}, {}, {}]
    # Children attach to the first replyable type; keys stay unique per post.
    assert posts[2].parent_index == 0
    assert [p.idempotency_key for p in posts] == ["k1#forum", "k1#message", None]
    assert schedule.campaigns[0].targets[0].steps[0].post_indexes == [0, 1]
    assert checked(data) == []


def test_platform_types_may_be_one_string_and_a_step_post_type_wins() -> None:
    steps = [{"id": "a", "text": "x"}, {"id": "b", "text": "y", "post_type": "message"}]
    data = body(campaign(target("discord:1", steps), platformTypes={"discord": "forum"},
                         caption="c", name="Launch"))
    schedule, problems = parse(data)
    assert problems == [
        "campaigns[0].targets[0].steps[0].name: a discord forum post needs a name (its title) "
        "or settings.threadName"
    ]
    assert schedule is not None and [p.step_id for p in schedule.posts] == ["b"]
    steps[0]["settings"] = {"threadName": "From settings"}
    posts = parse_ok(data).posts
    assert [(p.post_type, p.settings) for p in posts] == [
        ("forum", {"threadName": "From settings"}),
        ("message", {}),
    ]


def test_type_schedule_applies_to_step_publish_at_too() -> None:
    steps = [{"text": "x", "publish_at": "2026-06-02T00:00:00Z", "post_type": "message"}]
    data = body(campaign(target("discord:1", steps, publish_at=None),
                         typeSchedule={"message": "-30m"}))
    (only,) = parse_ok(data).posts
    assert only.publish_at == utc(2026, 6, 1, 23, 30)
    assert only.offset_seconds is None  # no base time to measure from


def test_story_types_are_not_replied_to(instagram: None) -> None:
    steps = [
        {"id": "p", "text": "x", "assets": ["https://e.com/a.jpg"]},
        {"id": "c", "interaction_type": "comment", "parent_step_id": "p", "text": "first!"},
    ]
    data = body(campaign(target("instagram:me", steps),
                         platform_types={"instagram": ["story", "feed"]}))
    posts = parse_ok(data).posts
    assert [(p.post_type, p.parent_index) for p in posts] == [
        ("story", None), ("feed", None), ("feed", 1)
    ]

    only_story = body(campaign(target("instagram:me", steps),
                               platform_types={"instagram": "story"}))
    assert problems_of(only_story) == [
        "campaigns[0].targets[0].steps[1].parent_step_id: step 'p' publishes only story, "
        "which nothing can comment on"
    ]


def test_instagram_cannot_reply(instagram: None) -> None:
    steps = [{"id": "p", "text": "x"},
             {"id": "r", "interaction_type": "reply", "parent_step_id": "p", "text": "y"}]
    assert problems_of(body(campaign(target("instagram:me", steps)))) == [
        "campaigns[0].targets[0].steps[1].interaction_type: instagram cannot reply; "
        "it supports: comment"
    ]


# --- type problems ----------------------------------------------------------------------------


def test_unknown_post_types_are_reported_with_their_path() -> None:
    data = body(
        campaign(
            target("telegram:@c", [{"text": "x"}, {"text": "y", "post_type": "story"}]),
            platform_types={"telegram": ["story"], "discord": ["forum", 5, "forum"]},
        )
    )
    assert problems_of(data) == [
        "campaigns[0].platform_types.telegram[0]: telegram has no post type 'story' "
        "(types: message)",
        "campaigns[0].platform_types.discord[1]: must be a string, got a number",
        "campaigns[0].platform_types.discord[2]: 'forum' is listed twice",
        "campaigns[0].targets[0].steps[1].post_type: telegram has no post type 'story' "
        "(types: message)",
    ]


def test_bad_campaign_maps() -> None:
    data = body(
        campaign(
            target(steps=[{"text": "x"}]),
            platform_captions={"myspace": "hi", "telegram": 5},
            platform_types={"telegram": [], "discord": {"a": 1}, "orkut": "post"},
            type_schedule={"story": "soon", "banner": "+1h", "feed": 60},
        )
    )
    assert problems_of(data) == [
        f"campaigns[0].platform_captions.myspace: {_unknown('myspace')}",
        "campaigns[0].platform_captions.telegram: must be a string, got a number",
        "campaigns[0].platform_types.telegram: must list at least one post type (types: message)",
        "campaigns[0].platform_types.discord: must be a post type or a list of them, "
        "got an object",
        f"campaigns[0].platform_types.orkut: {_unknown('orkut')}",
        "campaigns[0].type_schedule.story: 'soon' is not an offset (use seconds as a number, "
        "or a duration such as +1h, -30m, 90s, +1h30m, 2d, +1.5h)",
        "campaigns[0].type_schedule.banner: no provider has a post type 'banner' (types: feed, "
        "forum, message, photo, pin, post, reel, saved_story, short, spotlight, story, video)",
    ]


def _unknown(provider: str) -> str:
    return (f"unknown provider {provider!r} (providers: "
            f"{', '.join(sorted(providers.KNOWN_PROVIDERS))})")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("platform_captions", ["x"], "must be an object mapping providers to text, got a list"),
        ("platform_types", "forum", "must be an object mapping providers to post types, "
                                    "got a string"),
        ("type_schedule", 5, "must be an object mapping post types to offsets such as "
                             '{"story": "+0h", "feed": "+1h"}, got a number'),
        ("caption", 5, "must be a string, got a number"),
        ("require_approval", "yes", "must be true or false, got a string"),
        ("assets", "https://e.com/a.png", "must be a list of URLs or asset objects, got a string"),
        ("media_link", "ftp://e.com/a", "'ftp://e.com/a' is not an http(s) URL"),
    ],
)
def test_bad_campaign_fields(field: str, value: Any, expected: str) -> None:
    schedule, problems = parse(body(campaign(target(steps=[{"text": "x"}]), **{field: value})))
    assert problems == [f"campaigns[0].{field}: {expected}"]
    # A campaign whose shared fields have a problem yields no posts (they would be built from it).
    assert schedule is not None and schedule.posts == []
    assert schedule.campaigns[0].targets[0].steps[0].post_indexes == []


def test_campaign_alias_conflict() -> None:
    data = body(campaign(target(steps=[{}]), caption="a", text="b"))
    assert problems_of(data) == [
        "campaigns[0].caption: both 'caption' and 'text' are given with different values; "
        "send only one"
    ]


# --- the graph --------------------------------------------------------------------------------


def reply(step_id: str, parent: Any, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "interaction_type": "reply", "parent_step_id": parent,
            "text": step_id, **fields}


def graph_problems(steps: list[dict[str, Any]], account: str = "telegram:@c") -> list[str]:
    return problems_of(body(campaign(target(account, steps))))


def test_unknown_parent_lists_the_targets_steps() -> None:
    assert graph_problems([{"id": "s1", "text": "a"}, reply("s2", "s9")]) == [
        "campaigns[0].targets[0].steps[1].parent_step_id: unknown step 's9' "
        "(this target's steps: 's1', 's2')"
    ]


def test_parents_are_looked_up_in_the_same_target_only() -> None:
    data = body(campaign(target(steps=[{"id": "s1", "text": "a"}]),
                         target("discord:1", [reply("s2", "s1")])))
    assert problems_of(data) == [
        "campaigns[0].targets[1].steps[0].parent_step_id: unknown step 's1' "
        "(this target's steps: 's2')"
    ]


def test_a_step_cannot_reply_to_itself() -> None:
    assert graph_problems([{"id": "s1", "text": "a"}, reply("s2", "s2")]) == [
        "campaigns[0].targets[0].steps[1].parent_step_id: a step cannot reply to itself"
    ]


def test_cycles_are_reported_on_each_step_in_them() -> None:
    steps = [{"id": "s1", "text": "a"}, reply("s2", "s3"), reply("s3", "s2"), reply("s4", "s3")]
    schedule, problems = parse(body(campaign(target(steps=steps))))
    assert problems == [
        "campaigns[0].targets[0].steps[1].parent_step_id: cycle: s2 → s3 → s2",
        "campaigns[0].targets[0].steps[2].parent_step_id: cycle: s3 → s2 → s3",
    ]
    # s4 hangs off the cycle: dropped with it, and s1 is still there.
    assert schedule is not None and [p.step_id for p in schedule.posts] == ["s1"]


def test_parent_step_id_only_on_replies_and_comments() -> None:
    steps = [{"id": "s1", "text": "a"}, {"id": "s2", "text": "b", "parent_step_id": "s1"},
             {"id": "s3", "interaction_type": "reply", "text": "c"}]
    assert graph_problems(steps) == [
        "campaigns[0].targets[0].steps[1].parent_step_id: only reply and comment steps have a "
        "parent: set interaction_type to reply or comment, or leave parent_step_id out",
        "campaigns[0].targets[0].steps[2].parent_step_id: required for a reply step: the id of "
        "the step to reply to",
    ]


def test_null_interaction_type_is_a_post() -> None:
    steps = [{"id": "s1", "text": "a", "interaction_type": None, "parent_step_id": None}]
    (only,) = parse_ok(body(campaign(target(steps=steps)))).posts
    assert only.interaction_type == "post" and only.parent_index is None


def test_unknown_interaction_type() -> None:
    assert graph_problems([{"text": "a", "interaction_type": "quote"}]) == [
        "campaigns[0].targets[0].steps[0].interaction_type: unknown interaction type 'quote' "
        "(use post, reply or comment)"
    ]


def test_duplicate_step_ids() -> None:
    steps = [{"id": "s1", "text": "a"}, {"text": "b"}, {"id": "s1", "text": "c"},
             {"id": "step2", "text": "d"}]
    schedule, problems = parse(body(campaign(target(steps=steps))))
    assert problems == [
        "campaigns[0].targets[0].steps[2].id: duplicate step id 's1' "
        "(also campaigns[0].targets[0].steps[0])",
        "campaigns[0].targets[0].steps[3].id: duplicate step id 'step2' "
        "(also campaigns[0].targets[0].steps[1])",
    ]
    assert schedule is not None and [p.description for p in schedule.posts] == ["a", "b"]


def test_a_default_id_that_collides_with_a_given_one() -> None:
    steps = [{"id": "step2", "text": "a"}, {"text": "b"}]
    assert graph_problems(steps) == [
        "campaigns[0].targets[0].steps[1].id: this step has no id, so it is 'step2', which "
        "campaigns[0].targets[0].steps[0] already is; give it an id"
    ]


def test_a_reply_cannot_publish_before_its_parent() -> None:
    steps = [{"id": "s1", "text": "a", "offset": "+1h"}, reply("s2", "s1", offset="+30m"),
             reply("s3", "s1", publish_at="2026-06-01T15:59:59Z"), reply("s4", "s1", offset=3600)]
    assert graph_problems(steps) == [
        "campaigns[0].targets[0].steps[1].publish_at: a reply cannot publish before its parent "
        "'s1' at 2026-06-01T16:00:00.000Z",
        "campaigns[0].targets[0].steps[2].publish_at: a reply cannot publish before its parent "
        "'s1' at 2026-06-01T16:00:00.000Z",
    ]


def test_telegram_cannot_comment() -> None:
    steps = [{"id": "s1", "text": "a"},
             {"id": "s2", "interaction_type": "comment", "parent_step_id": "s1", "text": "b"}]
    assert graph_problems(steps) == [
        "campaigns[0].targets[0].steps[1].interaction_type: telegram cannot comment; "
        "it supports: reply"
    ]


def test_discord_cannot_reply_to_a_plain_channel_message() -> None:
    steps = [{"id": "s1", "text": "a"}, reply("s2", "s1")]
    assert graph_problems(steps, "discord:1") == [
        "campaigns[0].targets[0].steps[1].interaction_type: a discord webhook cannot reply to a "
        "channel message: the parent step 's1' must start a thread (post_type forum, or "
        "settings.threadName) or post into one (settings.threadId)"
    ]
    # settings.threadName on a message starts a thread too.
    steps[0]["settings"] = {"threadName": "Launch"}
    posts = parse_ok(body(campaign(target("discord:1", steps)))).posts
    assert [(p.post_type, p.settings) for p in posts] == [
        ("message", {"threadName": "Launch"}), ("message", {})
    ]


def test_discord_replies_inherit_the_parents_thread_id() -> None:
    steps = [
        {"id": "s1", "text": "a", "settings": {"threadId": "111"}},
        reply("s2", "s1"),
        reply("s3", "s2"),
        reply("s4", "s1", settings={"threadId": "222"}),
    ]
    data = body(campaign(target("discord:1", steps)))
    posts = parse_ok(data).posts
    assert [p.settings for p in posts] == [
        {"threadId": "111"}, {"threadId": "111"}, {"threadId": "111"}, {"threadId": "222"}
    ]
    assert [p.parent_index for p in posts] == [None, 0, 1, 0]
    assert checked(data) == []


def test_a_discord_reply_cannot_start_a_thread_of_its_own() -> None:
    steps = [{"id": "s1", "name": "T", "post_type": "forum", "text": "a"},
             reply("s2", "s1", settings={"threadName": "New"})]
    assert checked(body(campaign(target("discord:1", steps)))) == [
        "campaigns[0].targets[0].steps[1].settings.threadName: threadName starts a new thread; "
        "it cannot be combined with threadId or a reply"
    ]


def test_a_step_with_a_problem_drops_its_descendants_only() -> None:
    steps = [{"id": "s1", "text": "a"}, reply("s2", "s1", settings=["x"]), reply("s3", "s2"),
             {"id": "s4", "text": "d"}, reply("s5", "s4")]
    schedule, problems = parse(body(campaign(target(steps=steps))))
    assert problems == ["campaigns[0].targets[0].steps[1].settings: must be an object, got a list"]
    assert schedule is not None
    assert [(p.index, p.step_id, p.parent_index) for p in schedule.posts] == [
        (0, "s1", None), (1, "s4", None), (2, "s5", 1)
    ]
    steps_out = schedule.campaigns[0].targets[0].steps
    assert [s.post_indexes for s in steps_out] == [[0], [], [], [1], [2]]


# --- campaign, target and step shape problems ------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"campaigns": {}}, ["campaigns: must be a list of campaigns, got an object"]),
        ({"campaigns": []}, ["campaigns: must contain at least one campaign"]),
        ({"campaigns": ["x"]}, ["campaigns[0]: must be an object, got a string"]),
        (body({"targets": [target(steps=[{"text": "x"}])]}),
         ["campaigns[0].name: required: the campaign's name"]),
        (body(campaign(target(steps=[{"text": "x"}]), name="  ")),
         ["campaigns[0].name: must not be empty"]),
        (body(campaign(target(steps=[{"text": "x"}]), name=5)),
         ["campaigns[0].name: must be a string, got a number"]),
        (body(campaign(target(steps=[{"text": "x"}]), id="")),
         ["campaigns[0].id: must not be empty (leave it out instead)"]),
        (body({"name": "x"}),
         ["campaigns[0].targets: required: a list of targets, each with an account"]),
        (body(campaign()), ["campaigns[0].targets: must contain at least one target"]),
        (body(campaign(targets="x")), ["campaigns[0].targets: must be a list of targets, "
                                       "got a string"]),
        (body(campaign("x")), ["campaigns[0].targets[0]: must be an object, got a string"]),
        (body(campaign(target(account=None))),
         ["campaigns[0].targets[0].account: required: a connected account handle (such as "
          "discord:123456) or id"]),
        (body(campaign(target(account="acc_42"))),
         ["campaigns[0].targets[0].provider: required: the account 'acc_42' has no provider "
          "prefix (such as telegram:@name)"]),
        (body(campaign(target(account="myspace:tom"))),
         [f"campaigns[0].targets[0].account: {UnknownProvider('myspace').message}"]),
        (body(campaign(target(account="acc_1", provider="pinterest"))),
         [f"campaigns[0].targets[0].provider: {UnknownProvider('pinterest').message}"]),
        (body(campaign(target(account="discord:1", provider="telegram"))),
         ["campaigns[0].targets[0].provider: 'telegram' does not match account handle "
          "'discord:1'"]),
        (body(campaign(target(steps="s1"))),
         ["campaigns[0].targets[0].steps: must be a list of steps, got a string"]),
        (body(campaign(target(steps=[7]))),
         ["campaigns[0].targets[0].steps[0]: must be an object (a step), got a number"]),
        (body(campaign(target(steps=[{"account": "telegram:@other", "text": "x"}]))),
         ["campaigns[0].targets[0].steps[0].account: a step publishes with its target's account "
          "('telegram:@chan'); leave account out of steps"]),
        (body(campaign(target(steps=[{"id": 5, "text": "x"}]))),
         ["campaigns[0].targets[0].steps[0].id: must be a string, got a number"]),
    ],
)
def test_shape_problems(data: dict[str, Any], expected: list[str]) -> None:
    assert problems_of(data) == expected


def test_an_account_id_with_a_provider_is_fine() -> None:
    (only,) = parse_ok(body(campaign(target(account="acc_42", provider="telegram",
                                            steps=[{"text": "x"}])))).posts
    assert (only.account, only.provider, only.post_type) == ("acc_42", "telegram", "message")


def test_missing_name_keeps_the_posts_for_provider_checks() -> None:
    schedule, problems = parse(body({"targets": [target(steps=[{"text": "x" * 4097}])]}))
    assert problems == ["campaigns[0].name: required: the campaign's name"]
    assert schedule is not None and schedule.campaigns[0].name == ""
    assert [str(p) for p in check_posts_against_providers(schedule)] == [
        "campaigns[0].targets[0].steps[0].description: 4,097 characters, telegram allows 4,096"
    ]


def test_every_problem_in_one_answer() -> None:
    data = body(
        campaign(target(account=None, steps=[{"text": 5}]), platform_types={"telegram": "reel"}),
        campaign(target(steps=[{"id": "a", "text": "x"}, reply("b", "zz")])),
        mode="later",
    )
    assert [p.split(":")[0] for p in problems_of(data)] == [
        "mode",
        "campaigns[0].platform_types.telegram",
        "campaigns[0].targets[0].account",
        "campaigns[0].targets[0].steps[0].description",
        "campaigns[1].targets[0].steps[1].parent_step_id",
    ]


# --- time -------------------------------------------------------------------------------------


def test_scheduled_mode_needs_a_base_time_unless_every_step_has_one() -> None:
    steps = [{"text": "a", "publish_at": "2026-06-02T10:00:00Z"}, {"text": "b", "offset": "+1h"}]
    schedule, problems = parse(body(campaign(target(steps=steps, publish_at=None))))
    assert problems == [
        "campaigns[0].targets[0].publish_at: required in scheduled mode unless every step has "
        "its own publish_at (or send mode: draft)"
    ]
    assert schedule is not None and schedule.posts == []

    steps.pop()
    (only,) = parse_ok(body(campaign(target(steps=steps, publish_at=None)))).posts
    assert (only.publish_at, only.offset_seconds) == (utc(2026, 6, 2, 10), None)
    assert parse_ok(body(campaign(target(steps=steps, publish_at=None)))).campaigns[0].targets[
        0
    ].publish_at is None


def test_draft_mode_without_a_base_keeps_offsets() -> None:
    steps = [
        {"id": "s1", "text": "a", "post_type": "message"},
        reply("s2", "s1", offset="+90s", post_type="message"),
        {"id": "s3", "text": "c", "publish_at": "2026-06-03T00:00:00Z", "post_type": "message"},
    ]
    data = body(campaign(target(steps=steps, publish_at=None), type_schedule={"message": 30}),
                mode="draft")
    schedule = parse_ok(data)
    assert [(p.publish_at, p.offset_seconds) for p in schedule.posts] == [
        (None, 30.0),
        (None, 120.0),
        (utc(2026, 6, 3, 0, 0, 30), None),
    ]
    assert schedule.campaigns[0].targets[0].publish_at is None


def test_draft_mode_compares_offsets_of_parent_and_child() -> None:
    steps = [{"id": "s1", "text": "a", "offset": "+1h"}, reply("s2", "s1", offset="+30m")]
    data = body(campaign(target(steps=steps, publish_at=None)), mode="draft")
    assert problems_of(data) == [
        "campaigns[0].targets[0].steps[1].publish_at: a reply cannot publish before its parent "
        "'s1' at the target's publish_at +1h"
    ]


def test_drafts_may_hold_past_times() -> None:
    data = body(campaign(target(steps=[{"text": "a"}], publish_at="2020-01-01T00:00Z")),
                mode="draft")
    assert parse_ok(data).posts[0].publish_at == utc(2020, 1, 1)


def test_past_times_are_problems_on_the_step() -> None:
    past = (NOW - timedelta(hours=1)).isoformat()
    steps = [
        {"text": "a"},  # base + 0: in the past
        {"text": "b", "offset": "+2h"},  # base + 2h: in the future
        {"text": "c", "publish_at": past},
    ]
    schedule, problems = parse(body(campaign(target(steps=steps, publish_at=past))))
    assert problems == [
        "campaigns[0].targets[0].steps[0].publish_at: 2026-01-01T11:00:00.000Z is in the past "
        "(now is 2026-01-01T12:00:00.000Z); that is the target's publish_at +0s",
        "campaigns[0].targets[0].steps[2].publish_at: 2026-01-01T11:00:00.000Z is in the past "
        "(now is 2026-01-01T12:00:00.000Z)",
    ]
    assert schedule is not None and [p.description for p in schedule.posts] == ["b"]


def test_the_implicit_step_reports_at_the_target() -> None:
    past = (NOW - timedelta(hours=1)).isoformat()
    assert problems_of(body(campaign(target(publish_at=past), caption="x"))) == [
        "campaigns[0].targets[0].publish_at: 2026-01-01T11:00:00.000Z is in the past "
        "(now is 2026-01-01T12:00:00.000Z); that is the target's publish_at +0s"
    ]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"offset": "soon"},
         "steps[0].offset: 'soon' is not an offset (use seconds as a number, or a duration such "
         "as +1h, -30m, 90s, +1h30m, 2d, +1.5h)"),
        ({"offset": True},
         "steps[0].offset: an offset must be seconds as a number, or a duration such as +1h, "
         "-30m, 90s, +1h30m, 2d, +1.5h; got a boolean"),
        ({"offset": "+1h", "publish_at": "2026-06-02T00:00Z"},
         "steps[0].publish_at: send either publish_at (an absolute time) or offset (from the "
         "target's publish_at), not both"),
        ({"publish_at": "next week"},
         "steps[0].publish_at: 'next week' is not an ISO 8601 date-time"),
    ],
)
def test_bad_step_times(step: dict[str, Any], expected: str) -> None:
    problems = problems_of(body(campaign(target(steps=[{"text": "a", **step}]))))
    assert len(problems) == 1
    assert problems[0].startswith(f"campaigns[0].targets[0].{expected}")


def test_bad_target_time() -> None:
    assert problems_of(body(campaign(target(steps=[{"text": "a"}], publishAt=5,
                                            publish_at=None)))) == [
        "campaigns[0].targets[0].publish_at: must be a date-time string, got a number"
    ]


# --- parse_offset -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (-1.5, -1.5),
        ("+0h", 0.0),
        ("-0m", 0.0),
        ("+1h", 3600.0),
        ("-30m", -1800.0),
        ("90s", 90.0),
        ("+1h30m", 5400.0),
        ("2d", 172800.0),
        ("+1.5h", 5400.0),
        ("1d2h3m4s", 93784.0),
        (" +1H ", 3600.0),
        ("366d", 366 * 86400.0),
        (-366 * 86400, -366 * 86400.0),
    ],
)
def test_parse_offset(value: Any, seconds: float) -> None:
    assert parse_offset(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "'' is not an offset"),
        ("90", "'90' is not an offset"),
        ("1 h", "'1 h' is not an offset"),
        ("+-1h", "'+-1h' is not an offset"),
        ("1w", "'1w' is not an offset"),
        ("1h1h", "'1h1h' is not an offset: a unit appears twice"),
        ("367d", "'367d' is out of range (at most 366 days either way)"),
        (366 * 86400 + 1, "31,622,401 seconds is out of range"),
        (float("nan"), "nan seconds is out of range"),
        (10**400, "is out of range"),
        (True, "got a boolean"),
        (None, "got null"),
        ([1], "got a list"),
    ],
)
def test_parse_offset_refuses(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_offset(value)


# --- approval ---------------------------------------------------------------------------------


def flat() -> dict[str, Any]:
    return {"account": "discord:1", "text": "x", "publish_at": BASE}


def test_approval_defaults() -> None:
    schedule = parse_ok({"posts": [flat()]})
    assert schedule.require_approval is False
    assert schedule.approval == ApprovalPolicy(on_late="publish", grace_seconds=0.0)


@pytest.mark.parametrize(
    "fields",
    [
        {"require_approval": True, "approval": {"onLate": "expire", "graceSeconds": 900}},
        {"requireApproval": True, "approval": {"on_late": "expire", "grace_seconds": 900.0}},
        {"require_approval": True, "requireApproval": True,
         "approval": {"onLate": "expire", "on_late": "expire", "graceSeconds": 900}},
    ],
)
def test_approval_spellings(fields: dict[str, Any]) -> None:
    schedule = parse_ok({"posts": [flat()], **fields})
    assert schedule.require_approval is True
    assert schedule.approval == ApprovalPolicy(on_late="expire", grace_seconds=900.0)


def test_approval_bounds() -> None:
    limit = 30 * 86400
    assert parse_ok({"posts": [flat()], "approval": {"graceSeconds": limit}}).approval == (
        ApprovalPolicy(grace_seconds=limit)
    )
    assert parse_ok({"posts": [flat()], "approval": {}}).approval == ApprovalPolicy()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"require_approval": "yes"}, ["require_approval: must be true or false, got a string"]),
        ({"require_approval": True, "requireApproval": False},
         ["require_approval: both 'require_approval' and 'requireApproval' are given with "
          "different values; send only one"]),
        ({"approval": "expire"},
         ['approval: must be an object such as {"onLate": "expire", "graceSeconds": 900}, '
          "got a string"]),
        ({"approval": {"onLate": "later"}},
         ["approval.onLate: unknown value 'later' (use publish or expire)"]),
        ({"approval": {"onLate": True}},
         ["approval.onLate: unknown value a boolean (use publish or expire)"]),
        ({"approval": {"onLate": "expire", "on_late": "publish"}},
         ["approval.onLate: both 'onLate' and 'on_late' are given with different values; "
          "send only one"]),
        ({"approval": {"graceSeconds": -1}},
         ["approval.graceSeconds: must be between 0 and 2,592,000 seconds (30 days), got -1"]),
        ({"approval": {"graceSeconds": 30 * 86400 + 1}},
         ["approval.graceSeconds: must be between 0 and 2,592,000 seconds (30 days), "
          "got 2,592,001"]),
        ({"approval": {"graceSeconds": "900"}},
         ["approval.graceSeconds: must be a number of seconds, got a string"]),
        ({"approval": {"graceSeconds": False}},
         ["approval.graceSeconds: must be a number of seconds, got a boolean"]),
    ],
)
def test_bad_approval(fields: dict[str, Any], expected: list[str]) -> None:
    schedule, problems = parse({"posts": [flat()], **fields})
    assert problems == expected
    # Fields with a problem keep their defaults.
    assert schedule is not None and schedule.require_approval is (
        fields.get("require_approval") is True
    )
    given = fields.get("approval")
    if isinstance(given, dict):
        assert schedule.approval == ApprovalPolicy(
            on_late="expire" if given.get("onLate") == "expire" else "publish"
        )
    else:
        assert schedule.approval == ApprovalPolicy()


def test_approval_fields_beside_a_wrapper_are_a_problem() -> None:
    _, problems = parse({"schedule": {"posts": [flat()]}, "approval": {}, "requireApproval": True})
    assert problems == [
        'schedule: send the schedule either directly or wrapped in {"schedule": ...}, not both '
        "(found approval, requireApproval beside it)"
    ]


def test_require_approval_at_every_level() -> None:
    steps = [
        {"text": "inherits the campaign's"},
        {"text": "step says no", "require_approval": False},
    ]
    data = body(
        campaign(target(steps=steps), require_approval=True),
        campaign(target(steps=[{"text": "a"}, {"text": "b", "requireApproval": True}]),
                 name="Second"),
        require_approval=False,
    )
    schedule = parse_ok(data)
    assert schedule.require_approval is False
    assert [p.require_approval for p in schedule.posts] == [True, False, None, True]

    posts = parse_ok({"requireApproval": True, "posts": [
        flat(), {**flat(), "require_approval": False}, {**flat(), "requireApproval": True}
    ]})
    assert posts.require_approval is True
    assert [p.require_approval for p in posts.posts] == [None, False, True]


def test_flat_require_approval_must_be_a_boolean() -> None:
    assert problems_of({"posts": [{**flat(), "require_approval": 1}]}) == [
        "posts[0].require_approval: must be true or false, got a number"
    ]
    assert problems_of(body(campaign(target(steps=[{"text": "a", "require_approval": "no"}])))) == [
        "campaigns[0].targets[0].steps[0].require_approval: must be true or false, got a string"
    ]


# --- flat posts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"interaction_type": "reply"}, "posts[0].interaction_type"),
        ({"interactionType": "comment"}, "posts[0].interaction_type"),
        ({"parent_step_id": "s1"}, "posts[0].parent_step_id"),
        ({"interaction_type": "reply", "parentStepId": "s1"}, "posts[0].interaction_type"),
    ],
)
def test_flat_posts_cannot_reply(fields: dict[str, Any], path: str) -> None:
    schedule, problems = parse({"posts": [{**flat(), **fields}]})
    assert problems == [f"{path}: replies and comments need a campaigns[] schedule with "
                        "parent_step_id"]
    assert schedule is not None and schedule.posts == []


def test_flat_unknown_interaction_type() -> None:
    assert problems_of({"posts": [{**flat(), "interaction_type": "quote"}]}) == [
        "posts[0].interaction_type: unknown interaction type 'quote' (use post, reply or comment)"
    ]


def test_flat_post_types() -> None:
    posts = parse_ok({"posts": [
        flat(),
        {**flat(), "post_type": "forum", "name": "Title"},
        {**flat(), "postType": "forum", "settings": {"threadName": "Own"}},
        {**flat(), "account": "telegram:@c"},
        {**flat(), "account": "acc_1", "post_type": "whatever"},  # checked once resolved
    ]}).posts
    assert [(p.post_type, p.settings, p.path) for p in posts] == [
        ("message", {}, "posts[0]"),
        ("forum", {"threadName": "Title"}, "posts[1]"),
        ("forum", {"threadName": "Own"}, "posts[2]"),
        ("message", {}, "posts[3]"),
        ("whatever", {}, "posts[4]"),
    ]
    assert [p.interaction_type for p in posts] == ["post"] * 5
    assert [(p.campaign_index, p.step_key, p.offset_seconds) for p in posts] == [
        (None, None, None)
    ] * 5


def test_flat_post_type_problems() -> None:
    assert problems_of({"posts": [{**flat(), "post_type": "story"},
                                  {**flat(), "post_type": "forum"}]}) == [
        "posts[0].post_type: discord has no post type 'story' (types: message, forum)",
        "posts[1].name: a discord forum post needs a name (its title) or settings.threadName",
    ]


# --- posts and campaigns together, the post limit ------------------------------------------


def test_posts_and_campaigns_together_keeps_the_campaigns() -> None:
    schedule, problems = parse({"posts": [flat()],
                                "campaigns": [campaign(target(steps=[{"text": "c"}]))]})
    assert problems == ["campaigns: send either posts[] or campaigns[], not both"]
    assert schedule is not None and schedule.source_model == "campaigns_v2"
    assert [p.description for p in schedule.posts] == ["c"]


def test_the_post_limit_counts_expanded_posts() -> None:
    data = body(
        campaign(
            target("discord:1", [{"name": "a"}, {"name": "b"}]),
            platform_types={"discord": ["forum", "message"]},
            caption="x",
        ),
    )
    assert len(parse_ok(data, max_posts=4).posts) == 4
    schedule, problems = parse(data, max_posts=3)
    assert problems == [
        "campaigns: 4 posts once the campaigns are expanded; a run holds at most 3 — "
        "split the schedule"
    ]
    assert schedule is not None


def test_the_post_limit_comes_before_other_campaign_problems() -> None:
    data = body(campaign(target(steps=[{"text": "a"}, {"text": "b"}])), campaign())
    assert problems_of(data, max_posts=1) == [
        "campaigns: 2 posts once the campaigns are expanded; a run holds at most 1 — "
        "split the schedule",
        "campaigns[1].targets: must contain at least one target",
    ]


# --- idempotency keys -------------------------------------------------------------------------


def test_step_keys_are_unique_across_the_schedule() -> None:
    data = body(
        campaign(
            target(steps=[{"text": "a", "idempotencyKey": "k"}, {"text": "b",
                                                                 "idempotency_key": "k"}]),
            target("discord:1", [{"name": "x", "idempotencyKey": "m"}]),
            platform_types={"discord": ["forum", "message"]},
        ),
        campaign(target(steps=[{"text": "c", "idempotencyKey": "m#forum"}]), name="Second"),
    )
    schedule, problems = parse(data)
    assert problems == [
        "campaigns[0].targets[0].steps[1].idempotencyKey: same key as "
        "campaigns[0].targets[0].steps[0]",
        "campaigns[1].targets[0].steps[0].idempotencyKey: same key as "
        "campaigns[0].targets[1].steps[0]",
    ]
    assert schedule is not None
    assert [p.idempotency_key for p in schedule.posts] == ["k", "m#forum", "m#message"]


def test_bad_step_key() -> None:
    assert problems_of(body(campaign(target(steps=[{"text": "a", "idempotencyKey": " "}])))) == [
        "campaigns[0].targets[0].steps[0].idempotencyKey: must not be empty (leave it out instead)"
    ]


# --- provider problems name the field the text or media came from ----------------------------


def test_provider_problems_use_the_post_path() -> None:
    data = body(campaign(
        target(steps=[{"text": "ok"}, reply("r", "step1", text="x" * 4097)]),
    ))
    assert checked(data) == [
        "campaigns[0].targets[0].steps[1].description: 4,097 characters, telegram allows 4,096"
    ]


def test_provider_problems_with_campaign_text_name_the_campaign_field() -> None:
    data = body(campaign(
        target("telegram:@c", [{}]),
        target("discord:1", [{}]),
        caption="x" * 2001,
        platform_captions={"telegram": "y" * 4097},
    ))
    assert checked(data) == [
        "campaigns[0].platform_captions.telegram: 4,097 characters, telegram allows 4,096",
        "campaigns[0].caption: 2,001 characters, discord allows 2,000",
    ]


def test_provider_problems_with_campaign_media_name_the_campaign_field() -> None:
    # Documents (zip): sent as they are, so their size is checked here (photos and videos get
    # a rendition that fits instead).
    eleven = [f"https://e.com/{i}.zip" for i in range(10)]
    data = body(campaign(target("discord:1", [{"text": "a"}]), assets=eleven,
                         media_link="https://e.com/x.zip"))
    schedule = parse_ok(data)
    assert [str(p) for p in check_posts_against_providers(schedule)] == [
        "campaigns[0].assets: 11 files, discord allows 10 attachments per message"
    ]
    schedule.posts[0].media[1].size = 11 * 1024 * 1024
    schedule.posts[0].media[10].size = 11 * 1024 * 1024
    paths = [p.path for p in check_posts_against_providers(schedule)]
    assert paths == ["campaigns[0].assets", "campaigns[0].assets[1]", "campaigns[0].media_link"]


def test_a_forum_title_too_long_is_named_at_the_steps_name() -> None:
    data = body(campaign(target("discord:1", [{"text": "a", "name": "n" * 101,
                                              "post_type": "forum"}])))
    assert checked(data) == [
        "campaigns[0].targets[0].steps[0].name: 101 characters, discord allows 100"
    ]


def test_discord_replies_are_checked_as_replies() -> None:
    steps = [{"id": "s1", "text": "a", "settings": {"threadId": "1"}},
             reply("s2", "s1", settings={"threadName": "n"})]
    assert checked(body(campaign(target("discord:1", steps)))) == [
        "campaigns[0].targets[0].steps[1].settings.threadName: threadName starts a new thread; "
        "it cannot be combined with threadId or a reply"
    ]


def test_flat_posts_keep_their_paths_in_provider_problems() -> None:
    data = {"posts": [flat(), {**flat(), "text": "x" * 2001}]}
    assert checked(data) == ["posts[1].description: 2,001 characters, discord allows 2,000"]


# --- providers.post_types ---------------------------------------------------------------------


def test_every_known_provider_has_types_and_interactions() -> None:
    assert set(POST_TYPES) == set(providers.KNOWN_PROVIDERS)
    assert set(INTERACTIONS) == set(providers.KNOWN_PROVIDERS)
    assert all(POST_TYPES.values())
    assert all(i <= {"reply", "comment"} for i in INTERACTIONS.values())
    assert POST_TYPES["discord"][:2] == ("message", "forum")
    assert POST_TYPES["telegram"] == ("message",)
    assert INTERACTIONS["telegram"] == {"reply"} and INTERACTIONS["linkedin"] == {"comment"}
    assert NOT_REPLYABLE_TYPES == {"story"}


def test_apply_post_type() -> None:
    assert apply_post_type("discord", "forum", "Title", {}) == ({"threadName": "Title"}, None)
    assert apply_post_type("discord", "forum", "Title", {"threadName": "Own"}) == (
        {"threadName": "Own"}, None
    )
    settings: dict[str, Any] = {}
    assert apply_post_type("discord", "forum", None, settings) == (
        {}, "a discord forum post needs a name (its title) or settings.threadName"
    )
    assert apply_post_type("discord", "message", None, {"threadName": "T"}) == (
        {"threadName": "T"}, None
    )
    assert apply_post_type("instagram", "story", "x", {"a": 1}) == ({"a": 1}, None)
    assert settings == {}  # the input is never changed


def test_normalized_posts_serialize_their_new_fields() -> None:
    (only,) = parse_ok(body(campaign(target(steps=[{"text": "a"}]), id="c1"))).posts
    dumped = only.model_dump()
    assert {key: dumped[key] for key in (
        "path", "campaign_index", "campaign_id", "step_id", "step_key", "interaction_type",
        "parent_index", "post_type", "offset_seconds", "require_approval",
    )} == {
        "path": "campaigns[0].targets[0].steps[0]", "campaign_index": 0, "campaign_id": "c1",
        "step_id": "step1", "step_key": "0/0/step1", "interaction_type": "post",
        "parent_index": None, "post_type": "message", "offset_seconds": 0.0,
        "require_approval": None,
    }
    assert NormalizedPost.model_validate(dumped).model_dump() == dumped


def test_type_schedule_moves_only_the_types_asked_for() -> None:
    data = body(campaign(
        target("discord:1", [{"id": "s1", "name": "Launch", "text": "x"}]),
        target("telegram:@c", [{"id": "s1", "text": "x"}]),
        platform_types={"discord": ["forum", "message"]},
        type_schedule={"message": "+1h"},
    ))
    posts = parse_ok(data).posts
    assert [(p.provider, p.post_type, p.publish_at) for p in posts] == [
        ("discord", "forum", T0), ("discord", "message", T0 + timedelta(hours=1)),
        ("telegram", "message", T0),  # Telegram's default type is not moved by Discord's types
    ]
