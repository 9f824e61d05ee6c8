"""Post types and reply/comment support per network, for campaign expansion. Pure data.

A *post type* is the kind of object a network publishes from one post (an Instagram feed post, a
story or a reel; a Discord channel message or a forum post). ``POST_TYPES[provider][0]`` is the
default. Types that follow from the media alone (Instagram carousels, Threads TEXT/IMAGE/VIDEO
containers, LinkedIn documents, Telegram albums) are not separate types here.

Section numbers cite ``shared/reference/providers.md`` (§0 is its summary table).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

POST_TYPES: dict[str, tuple[str, ...]] = {
    # §1: POST /2/tweets; one kind of post (threads are replies).
    "x": ("post",),
    # §2: /{page}/feed|photos|videos (feed), .../photo_stories|video_stories (story),
    # .../video_reels (reel).
    "facebook": ("feed", "story", "reel"),
    # §3: container media_type: image/CAROUSEL (feed), STORIES (story), REELS (reel).
    "instagram_business": ("feed", "story", "reel"),
    # §4: identical to §3 on graph.instagram.com.
    "instagram": ("feed", "story", "reel"),
    # §5: one post kind; media_type TEXT|IMAGE|VIDEO|CAROUSEL follows from the media.
    "threads": ("post",),
    # §6: POST /rest/posts (image, video, multi-image and document are media variants).
    "linkedin": ("post",),
    "linkedin_page": ("post",),
    # §7: /v2/post/publish/video/init/ (video) and content/init/ with media_type PHOTO (photo).
    "tiktok": ("video", "photo"),
    # §8: videos.insert; Shorts are short vertical videos (URL /shorts/{id}).
    "youtube": ("video", "short"),
    # §9: POST /v5/pins.
    "pinterest": ("pin",),
    # §10: POST /api/submit (self, link and media posts follow from the content).
    "reddit": ("post",),
    # §11: a webhook message in a channel (or into settings.threadId), or a forum post
    # (thread_name creates the post).
    "discord": ("message", "forum"),
    # §12: sendMessage / sendPhoto / sendVideo / sendMediaGroup.
    "telegram": ("message",),
    # §13: POST /wp-json/wp/v2/posts.
    "wordpress": ("post",),
    # §14: Public Profile API posts Stories, Saved Stories and Spotlight.
    "snapchat": ("story", "saved_story", "spotlight"),
    # §15: app.bsky.feed.post records.
    "bluesky": ("post",),
    # §16: POST /api/v1/statuses.
    "mastodon": ("post",),
}

# Which follow-ups a campaign step may be, per network ("reply": a post in the parent's thread or
# reply chain; "comment": a comment under the parent).
INTERACTIONS: dict[str, frozenset[str]] = {
    "x": frozenset({"reply"}),  # §1: reply.in_reply_to_tweet_id
    "facebook": frozenset({"comment"}),  # §2: POST /{post-id}/comments
    "instagram_business": frozenset({"comment"}),  # §3: POST /{ig-media-id}/comments
    "instagram": frozenset({"comment"}),  # §4: same as §3
    "threads": frozenset({"reply"}),  # §5: reply_to_id on the container
    "linkedin": frozenset({"comment"}),  # §6: POST /rest/socialActions/{urn}/comments
    "linkedin_page": frozenset({"comment"}),  # §6
    "tiktok": frozenset(),  # §7: no Content Posting API for comments
    "youtube": frozenset({"comment"}),  # §8: commentThreads.insert
    "pinterest": frozenset(),  # §9: not in the public v5 API
    "reddit": frozenset({"comment"}),  # §10: POST /api/comment with thing_id=t3_<id>
    # §11: a message in the thread the parent started (thread_name) or posted into (thread_id);
    # message replies (message_reference) through webhooks are unconfirmed.
    "discord": frozenset({"reply"}),
    "telegram": frozenset({"reply"}),  # §12: reply_parameters.message_id
    "wordpress": frozenset(),  # §13: the comments API is rarely used and unconfirmed
    "snapchat": frozenset(),  # §14: n/a
    "bluesky": frozenset({"reply"}),  # §15: record.reply {root, parent}
    "mastodon": frozenset({"reply"}),  # §16: in_reply_to_id
}

# Types nothing can reply to or comment on through the APIs above (stories expire and §2/§3
# offer no story comments).
NOT_REPLYABLE_TYPES: frozenset[str] = frozenset({"story"})


def default_post_type(provider: str) -> str | None:
    """The provider's default type, or None for a provider without a types table."""
    types = POST_TYPES.get(provider)
    return types[0] if types else None


def apply_post_type(
    provider: str, post_type: str | None, name: str | None, settings: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """``settings`` adjusted so the post publishes as ``post_type``, and a problem or None.

    Discord ``forum``: a forum post is a webhook message with ``thread_name`` (§11), so
    ``settings.threadName`` becomes the given one or the post's name. ``message`` with a
    ``threadName`` is left alone (it already is a forum post). Other types change nothing here;
    the adapter reads ``post_type`` itself.
    """
    adjusted = dict(settings)
    if provider == "discord" and post_type == "forum":
        thread_name = adjusted.get("threadName") or name
        if not thread_name:
            return adjusted, "a discord forum post needs a name (its title) or settings.threadName"
        adjusted["threadName"] = thread_name
    return adjusted, None
