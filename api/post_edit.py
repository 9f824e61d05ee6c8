"""PATCH /v1/posts/{id} (and /v1/dashboard/posts/{id}): merge, re-validate, hand to the workflow.

The edit is merged into the post as it is stored, then validated exactly like a new post
(herald.schedule, the account in this workspace, the provider's limits), plus the campaign
graph's rules (a reply stays on its parent's account and never publishes before its parent).
A draft is written directly. A scheduled or pending post's workflow receives the whole new
content as its `edit` update and writes it itself, so an edit either lands before publishing
starts or is refused with 409 -- it can never half-apply around the publish call.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import Request
from sqlmodel import Session, select

from api import scheduling
from api.deps import get_temporal
from api.errors import ApiError
from api.post_workflow import WorkflowMissing, still_waiting, update_post_workflow
from herald.contracts import WAITING_POST_STATUSES, PostEdit
from herald.schedule import Schedule, ScheduleProblem
from herald.settings import Settings
from herald.timeparse import iso_ms
from store.models import Post

# Canonical field -> every spelling accepted in the PATCH body.
FIELDS: dict[str, tuple[str, ...]] = {
    "description": ("description", "text"),
    "name": ("name", "title"),
    "assets": ("assets",),
    "media_link": ("media_link", "mediaLink"),
    "settings": ("settings",),
    "account": ("account",),
    "publish_at": ("publish_at", "publishAt"),
    "timezone": ("timezone",),
    "post_type": ("post_type", "postType"),
}
EDITABLE_STATUSES = ("draft", *WAITING_POST_STATUSES)
UNCHECKED_PAST = 100 * 365 * 86400.0  # seconds: a grace so long that no stored time counts as past


def _problems(items: list[tuple[str, str]]) -> ApiError:
    return scheduling.problem_error([ScheduleProblem(path=path, message=message) for path, message in items])


def _changes(body: Any) -> dict[str, Any]:
    """The body's fields under their canonical names; unknown or conflicting fields are 422."""
    if not isinstance(body, dict) or not body:
        raise ApiError(400, "invalid_request", "send a JSON object with the fields to change, e.g. {\"text\": \"...\"}")
    spelled = {alias: name for name, aliases in FIELDS.items() for alias in aliases}
    unknown = sorted(k for k in body if k not in spelled)
    problems = [(k, f"unknown or read-only field (editable: {', '.join(FIELDS)})") for k in unknown]
    changes: dict[str, Any] = {}
    for key, value in body.items():
        name = spelled.get(key)
        if name is None:
            continue
        if name in changes and changes[name] != value:
            problems.append((name, f"given twice with different values ({' / '.join(FIELDS[name])})"))
        changes[name] = value
    if problems:
        raise _problems(problems)
    return changes


def _asset_input(item: dict[str, Any]) -> dict[str, Any]:
    """A stored media item back as an AssetInput (without the worker's local copy)."""
    out = {"url": item["url"], "kind": item.get("kind"), "mime": item.get("mime"), "size": item.get("size"),
           "originalFilename": item.get("filename"), "altText": item.get("altText")}
    return {k: v for k, v in out.items() if v is not None}


# What preparation adds to a stored media item (the asset it became, the network's rendition).
PREPARED_FIELDS = ("local", "assetId", "rendition")


def _as_given(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k not in PREPARED_FIELDS} for item in items]


def _merged_envelope(post: Post, changes: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "account": post.account_handle, "name": post.name, "description": post.description,
        "assets": [_asset_input(m) for m in post.media], "settings": post.settings, "post_type": post.post_type,
        "publish_at": iso_ms(post.publish_at) if post.publish_at else None,
    }
    if "media_link" in changes and "assets" not in changes:
        raw["assets"] = []  # a new media_link replaces the post's media
    raw.update({k: v for k, v in changes.items() if k != "timezone"})
    return {"timezone": changes.get("timezone") or post.timezone,
            "mode": "draft" if post.status == "draft" else "scheduled", "posts": [raw]}


def _graph_problems(session: Session, post: Post, account_id: str, publish_at: datetime | None) -> list[tuple[str, str]]:
    """A reply stays on its parent's account and after it; a parent stays before its replies."""
    problems: list[tuple[str, str]] = []
    children = session.exec(select(Post).where(Post.parent_post_id == post.id, Post.status != "canceled")).all()
    parent = session.get(Post, post.parent_post_id) if post.parent_post_id else None
    if account_id != post.account_id and (parent is not None or children):
        problems.append(("account", "this post is part of a thread; a reply must stay on its parent's account"))
    if publish_at is not None:
        if parent is not None and parent.publish_at is not None and publish_at < parent.publish_at:
            problems.append(("publish_at", f"a reply cannot publish before its parent {parent.id} "
                                           f"({iso_ms(parent.publish_at)})"))
        for child in children:
            if child.publish_at is not None and child.publish_at < publish_at:
                problems.append(("publish_at", f"its reply {child.id} publishes earlier ({iso_ms(child.publish_at)}); "
                                               "move the reply first"))
    return problems


async def edit(request: Request, session: Session, workspace_id: str, post: Post, body: Any, settings: Settings) -> Post:
    changes = _changes(body)
    if post.status not in EDITABLE_STATUSES:
        raise ApiError(409, "post_not_editable", f"post is {post.status}; it can no longer be edited", {"postId": post.id})

    def keep_interaction(schedule: Schedule) -> None:
        for p in schedule.posts:
            p.interaction_type = post.interaction_type  # type: ignore[assignment]

    try:
        # An unchanged time may be in the past (a late, pending post): only a new time is checked.
        schedule, accounts = scheduling.validate(
            session, workspace_id, _merged_envelope(post, changes), settings, adjust=keep_interaction,
            past_grace_seconds=None if "publish_at" in changes else UNCHECKED_PAST)
    except ApiError as exc:  # name fields as the PATCH body does, not as posts[0].x
        for problem in (exc.details or {}).get("problems", []):
            problem["path"] = problem["path"].removeprefix("posts[0].").removeprefix("posts[0]") or "body"
        exc.message = f"{len(exc.details['problems'])} problem(s): " + "; ".join(
            f"{p['path']}: {p['message']}" for p in exc.details["problems"][:5])
        raise
    new = schedule.posts[0]
    account = accounts[new.index]
    graph = _graph_problems(session, post, account.id, new.publish_at)
    if graph:
        raise _problems(graph)

    media = [scheduling.media_item(m) for m in new.media]
    # A new mediaFit needs a new rendition, as new media does.
    media_changed = (media != _as_given(post.media)
                     or (new.settings or {}).get("mediaFit") != (post.settings or {}).get("mediaFit"))
    if not media_changed:
        media = post.media  # keep what preparation found
    account_changed = account.id != post.account_id
    content_changed = (media_changed or account_changed or new.description != post.description
                       or new.name != post.name or new.settings != post.settings or new.post_type != post.post_type)
    timezone_name = schedule.timezone

    if post.status == "draft":
        post.description, post.name, post.settings, post.media = new.description, new.name, new.settings, media
        post.account_id, post.account_handle, post.provider = account.id, account.handle, account.provider
        post.publish_at, post.timezone, post.post_type = new.publish_at, timezone_name, new.post_type
        if content_changed and post.review_state == "approved":
            post.review_state, post.reviewed_by, post.reviewed_at, post.review_note = "pending", None, None, None
        post.updated_at = datetime.now(timezone.utc)
        session.add(post)
        session.commit()
        return post

    assert new.publish_at is not None
    edit_request = PostEdit(
        post_id=post.id, description=new.description, name=new.name, media=media, settings=new.settings,
        account_id=account.id, account_handle=account.handle, provider=account.provider, publish_at=new.publish_at,
        timezone=timezone_name, post_type=new.post_type, reprepare=media_changed or account_changed,
        content_changed=content_changed,
    )

    try:
        await update_post_workflow(await get_temporal(request), session, post, "edit", edit_request,
                                   refused_code="post_not_editable")
    except WorkflowMissing:
        if still_waiting(session, post):
            raise ApiError(503, "temporal_unavailable", "the post's workflow is not reachable yet; try again",
                           headers={"Retry-After": "5"}) from None
        raise ApiError(409, "post_not_editable", f"post is {post.status}; it can no longer be edited",
                       {"postId": post.id}) from None
    session.refresh(post)
    return post
