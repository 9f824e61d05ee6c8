"""settings.firstComment becomes a post of its own: a comment where the network has comments, a
reply where it only has replies, attached to its parent and published after it."""

from __future__ import annotations

from datetime import UTC, datetime

from herald.schedule import parse_schedule

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _parse(*posts: dict, max_posts: int = 1000):
    return parse_schedule({"posts": list(posts)}, now=NOW, max_posts=max_posts)


def test_first_comment_becomes_a_child_post_after_the_others() -> None:
    schedule, problems = _parse(
        {"account": "telegram:-1001", "text": "launch day", "publish_at": "2026-02-01T10:00:00Z",
         "settings": {"firstComment": "details in the comments", "silent": True}},
        {"account": "discord:42", "text": "second", "publish_at": "2026-02-01T11:00:00Z"},
    )
    assert problems == []
    assert [p.description for p in schedule.posts] == ["launch day", "second", "details in the comments"]
    parent, _, child = schedule.posts
    assert parent.settings == {"silent": True}  # the network never sees Herald's own setting
    assert (child.index, child.parent_index, child.interaction_type) == (2, 0, "reply")  # telegram: replies only
    assert child.account == parent.account and child.publish_at == parent.publish_at
    assert child.path == "posts[0].settings.firstComment"


def test_bad_first_comments_are_problems_with_their_path() -> None:
    _, problems = _parse(
        {"account": "telegram:-1001", "text": "a", "publish_at": "2026-02-01T10:00:00Z", "settings": {"firstComment": " "}},
        {"account": "telegram:-1001", "text": "b", "publish_at": "2026-02-01T10:00:00Z", "settings": {"firstComment": 7}},
        {"account": "telegram:-1001", "text": "c", "publish_at": "2026-02-01T10:00:00Z",
         "settings": {"firstComment": "x" * 10_001}},
    )
    assert [p.path for p in problems] == [f"posts[{i}].settings.firstComment" for i in range(3)]
    assert "non-empty string" in problems[0].message and "10,001 characters" in problems[2].message


def test_first_comments_count_towards_the_post_limit() -> None:
    post = {"account": "telegram:-1001", "text": "a", "publish_at": "2026-02-01T10:00:00Z",
            "settings": {"firstComment": "more"}}
    schedule, problems = _parse(post, dict(post), max_posts=3)
    assert len(schedule.posts) == 3
    assert [p.path for p in problems] == ["posts[1].settings.firstComment"]
    assert "more than 3 posts" in problems[0].message
