"""Instagram professional accounts: two ways in, one container flow.

* ``instagram_business`` -- Instagram API with Facebook Login (graph.facebook.com): the Instagram
  account linked to a Facebook Page; published with the Page's token (providers.md §3).
* ``instagram`` -- Instagram API with Instagram Login (graph.instagram.com): no Page needed; a
  long-lived Instagram user token, refreshed with ig_refresh_token (providers.md §4).

Facts: providers.md §3/§4 (tags [C] confirmed, [3P] third party, [U] unconfirmed) and pages read
with the search tool:

* content publishing guide (developers.facebook.com/docs/instagram-platform/content-publishing)
  [C]: "We cURL media used in publishing attempts, so the media must be hosted on a publicly
  accessible server"; alt_text for image posts since 2025-03-24, "Reels and stories are not
  supported"; all single feed videos are published as reels since 2023-07-01.
* content_publishing_limit reference [C]: GET /<IG_USER_ID>/content_publishing_limit, on both
  hosts; the quota (25/50/100 per rolling 24 h, carousel = 1) is disputed, so it is read at
  runtime (fields=config,quota_usage).
* access_token / refresh_access_token references [C]: short-lived tokens last 1 h, long-lived
  60 days; "Refresh a long-lived access token that is at least 24 hours old but has not expired.
  Refreshed tokens are valid for 60 days".
* Instagram API with Facebook Login overview [C]: "Content Publishing is available to all
  Instagram Professional accounts, except Stories, which are only available to business
  accounts".

Two phases: ``prepare_publish`` creates the containers (children first for a carousel), polls
``status_code`` until FINISHED and checks the publishing quota; ``send`` is the single
POST /{ig-user-id}/media_publish?creation_id=... A comment (POST /{media}/comments) needs no
container: its one call is the send.

Delete: Instagram's content publishing API documents no delete (the IG Media reference lists
"Creating: not supported" and reads only; Ayrshare: "Instagram does not support deletes via an
API" [3P]). Third parties report a DELETE /{ig-media-id} for Facebook Login accounts with an
``instagram_manage_contents`` permission [3P glama.ai instagram-account-mcp, CaspianTools
release notes, 2026] -- unconfirmed by Meta's pages we could read, so ``can_delete`` is False.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, ClassVar

import httpx

from media.types import ImageRules, MediaProfile, VideoRules
from providers.base import (
    AccountIdentity,
    AuthExpired,
    ContentRejected,
    Limits,
    MediaFile,
    PostDraft,
    PreparedPublish,
    Problem,
    ProviderError,
    ProviderUnavailable,
    PublishRequest,
    PublishResult,
    RateLimited,
    ReconcileResult,
    send_classified,
    truncate,
)
from providers.facebook import facebook_login_exchange, graph_url, list_pages
from providers.graph import (
    AUTH_CODES,
    GRAPH_VERSION,
    IG_QUOTA_WAIT,
    error_fields,
    graph_error,
    graph_json,
    not_found,
)
from providers.http_media import (
    PreparedRequest,
    expect_bool,
    kind_of,
    media_fit_problems,
    n,
    send_readonly,
    unknown_settings,
)
from providers.oauth import OAuthAdapter, OAuthApp, OAuthSpec, token_credentials

V = GRAPH_VERSION
MB = 1_000_000
MIB = 1024 * 1024

LIMITS = Limits(
    max_text_chars=2200,  # caption [3P §3]
    max_media=10,  # carousel 2-10 items [3P postiz "between 2 and 10"]
    max_file_bytes=300 * MIB,  # reels video <= 300 MB (older 3P pages; newer say 1 GB) [3P §3]
    max_bytes_by_kind={"image": 8 * MIB},  # images <= 8 MB [3P §3]
    source=(
        "providers.md §3: caption 2,200, <= 30 hashtags, <= 20 @mentions, carousel 2-10, images JPEG "
        "<= 8 MB, reels <= 300 MB [3P postiz/Ayrshare]"
    ),
)
MAX_HASHTAGS, MAX_MENTIONS, MAX_COLLABORATORS = 30, 20, 3  # [3P §3]; collaborators <= 3 [U]
SETTINGS = ("shareToFeed", "thumbOffset", "collaborators")
POST_TYPES = ("feed", "story", "reel")
SETTINGS_FIELDS: list[dict[str, Any]] = [
    {"id": "shareToFeed", "type": "boolean", "default": True,
     "label": "Reels: also show the reel in the profile grid (share_to_feed)"},
    {"id": "thumbOffset", "type": "integer", "label": "Reels: cover frame, in milliseconds from the start"},
    {"id": "collaborators", "type": "array", "label": "Usernames to invite as collaborators (up to 3)"},
]
SHAPES = ["image", "video", "carousel", "reel", "story", "comment"]

# --- media profiles -------------------------------------------------------------------------------
# Feed images: JPEG only [C "JPEG is the only image format supported", content publishing via §3;
# 3P lists PNG/GIF too], <= 8 MB, aspect 4:5 .. 1.91:1, width 320-1440 (auto-scaled) [3P §3].
# Video (a single feed video is a reel [C]): MOV/MP4, H.264 or HEVC, AAC, 4:2:0, moov first,
# <= 60 fps, width <= 1920, 3 s-15 min, <= 300 MB [3P §3]. Stories: any aspect (9:16 advised),
# video <= 60 s and <= 100 MB [3P Zernio]. Reels take only video.
IG_IMAGE = ImageRules(formats=("image/jpeg",), convert_to="image/jpeg", max_bytes=8 * MIB, max_width=1440,
                      min_aspect=0.8, max_aspect=1.91)
IG_VIDEO = VideoRules(containers=("video/mp4", "video/quicktime"), video_codecs=("h264", "hevc"),
                      audio_codecs=("aac",), pixel_formats=("yuv420p",), max_bytes=300 * MIB, max_width=1920,
                      max_fps=60.0, min_duration=3.0, max_duration=900.0, needs_faststart=True)
INSTAGRAM_FEED = MediaProfile(key="instagram.v1", image=IG_IMAGE, video=IG_VIDEO, max_other_bytes=None,
                              source="providers.md §3 [C JPEG only; 3P sizes/aspect/video specs]")
INSTAGRAM_REEL = MediaProfile(key="instagram.reel.v1", image=None, video=IG_VIDEO, max_other_bytes=None,
                              source="providers.md §3 reels specs [3P]")
INSTAGRAM_STORY = MediaProfile(
    key="instagram.story.v1",
    image=ImageRules(formats=("image/jpeg",), convert_to="image/jpeg", max_bytes=8 * MIB, max_width=1440),
    video=VideoRules(containers=("video/mp4", "video/quicktime"), video_codecs=("h264", "hevc"),
                     audio_codecs=("aac",), pixel_formats=("yuv420p",), max_bytes=100 * MB, max_width=1920,
                     max_fps=60.0, max_duration=60.0, needs_faststart=True),
    max_other_bytes=None,
    source="providers.md §3: stories video <= 60 s, <= 100 MB [3P Zernio]; images as feed without the aspect rule",
)
_IG_PROFILES: dict[str | None, MediaProfile] = {
    None: INSTAGRAM_FEED, "feed": INSTAGRAM_FEED, "reel": INSTAGRAM_REEL, "story": INSTAGRAM_STORY,
}
MEDIA_PROFILES: dict[str, dict[str | None, MediaProfile]] = {
    "instagram_business": _IG_PROFILES,
    "instagram": _IG_PROFILES,
}


def caption_problems(text: str, field: str = "description") -> list[Problem]:
    problems = []
    if len(text) > LIMITS.max_text_chars:
        problems.append(Problem(field=field, message=f"{n(len(text))} characters, instagram allows "
                                                     f"{n(LIMITS.max_text_chars)}"))
    tags = len(re.findall(r"(?<!\w)#\w", text))
    if tags > MAX_HASHTAGS:
        problems.append(Problem(field=field, message=f"{tags} hashtags, instagram allows {MAX_HASHTAGS}"))
    mentions = len(re.findall(r"(?<!\w)@\w", text))
    if mentions > MAX_MENTIONS:
        problems.append(Problem(field=field, message=f"{mentions} @mentions, instagram allows {MAX_MENTIONS}"))
    return problems


class InstagramContainerAdapter(OAuthAdapter):
    """The container flow both Instagram adapters share. Subclasses set ``provider``, ``oauth``,
    ``auth_scheme`` and implement the OAuth half."""

    limits = LIMITS
    can_delete = False
    shapes: ClassVar[list[str]] = SHAPES
    settings_fields: ClassVar[list[dict[str, Any]]] = SETTINGS_FIELDS
    auth_scheme: ClassVar[str] = "OAuth"
    # Container polling: Meta suggests polling about once a minute for up to 5 minutes [C
    # content publishing]; images are usually ready at once, so we start fast and back off.
    poll_delays: ClassVar[tuple[float, ...]] = (0.2, 0.4, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
    poll_timeout: ClassVar[float] = 600.0

    # --- pure check ---------------------------------------------------------------------------

    @classmethod
    def check_post(cls, draft: PostDraft) -> list[Problem]:
        settings = draft.settings or {}
        problems = unknown_settings(settings, SETTINGS, cls.provider) + media_fit_problems(settings)
        problems += expect_bool(settings, "shareToFeed")
        offset = settings.get("thumbOffset")
        if offset is not None and (isinstance(offset, bool) or not isinstance(offset, int) or offset < 0):
            problems.append(Problem(field="settings.thumbOffset", message="must be a whole number of milliseconds >= 0"))
        collaborators = settings.get("collaborators")
        if collaborators is not None:
            if not isinstance(collaborators, list) or not all(isinstance(c, str) and c for c in collaborators):
                problems.append(Problem(field="settings.collaborators", message="must be a list of usernames"))
            elif len(collaborators) > MAX_COLLABORATORS:
                problems.append(Problem(field="settings.collaborators",
                                        message=f"{len(collaborators)} collaborators, instagram allows {MAX_COLLABORATORS}"))
        text = draft.text or ""
        problems += caption_problems(text)
        kinds = [kind_of(ref) for ref in draft.media]
        if draft.is_reply:
            if draft.media:
                problems.append(Problem(field="assets", message="an instagram comment is text only"))
            if not text.strip():
                problems.append(Problem(field="description", message="an instagram comment needs text"))
            return problems
        if not draft.media:
            problems.append(Problem(field="assets", message="instagram posts need at least one photo or video"))
        if len(draft.media) > cls.limits.max_media:
            problems.append(Problem(field="assets", message=f"{n(len(draft.media))} media items, instagram allows "
                                                            f"{cls.limits.max_media} in a carousel"))
        for i, kind in enumerate(kinds):
            if kind not in ("image", "video"):
                problems.append(Problem(field=f"assets[{i}]", message="instagram posts photos and videos only"))
        # A story and a reel are one media container each (§3: media_type STORIES / REELS).
        if draft.post_type == "story" and len(draft.media) > 1:
            problems.append(Problem(field="assets", message=f"an instagram story is one photo or video, got {len(draft.media)}"))
        if draft.post_type == "reel" and (len(draft.media) != 1 or kinds[:1] == ["image"]):
            problems.append(Problem(field="assets", message="an instagram reel is exactly one video"))
        return problems

    # --- helpers ------------------------------------------------------------------------------

    def _ig(self, credentials: dict[str, Any]) -> tuple[str, str]:
        token, ig_id = credentials.get("access_token"), credentials.get("ig_user_id")
        if not token or not ig_id:
            raise AuthExpired(f"the {self.provider} credentials lack a token or account id; reconnect the account")
        return str(ig_id), str(token)

    def _auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"{self.auth_scheme} {token}"}

    def _error(self, response: httpx.Response, token: str, *, publishing: bool = False) -> ProviderError:
        return graph_error(response, network=self.provider, secrets=[token], publishing=publishing)

    async def _get(self, path: str, token: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request = self.http.build_request("GET", graph_url(self.base_url, path), params=params,
                                          headers=self._auth(token))
        response = await send_readonly(self.http, request)
        if response.status_code != 200:
            raise self._error(response, token)
        return graph_json(response)

    async def _create(self, ig_id: str, token: str, data: dict[str, Any]) -> str:
        """A container is invisible until published; a lost answer just means a new one next time."""
        request = self.http.build_request("POST", graph_url(self.base_url, f"{ig_id}/media"), data=data,
                                          headers=self._auth(token))
        response = await send_readonly(self.http, request)
        if response.status_code != 200:
            raise self._error(response, token)
        return str(graph_json(response)["id"])

    async def _wait_finished(self, container_id: str, token: str) -> None:
        """Poll ``status_code`` until FINISHED [C]; ERROR is the media's fault, EXPIRED (24 h)
        and a timeout are retried by preparing again (new containers)."""
        deadline = time.monotonic() + self.poll_timeout
        attempt = 0
        while True:
            body = await self._get(container_id, token, {"fields": "status_code,status"})
            status = body.get("status_code")
            if status == "FINISHED":
                return
            if status == "ERROR":
                raise ContentRejected(f"{self.provider} could not process the media: "
                                      f"{truncate(str(body.get('status') or 'ERROR'))}")
            if status in ("EXPIRED", "PUBLISHED"):
                raise ProviderUnavailable(f"{self.provider} container {container_id} is {status}; prepare again")
            if time.monotonic() >= deadline:
                raise ProviderUnavailable(f"{self.provider} is still processing the media after "
                                          f"{self.poll_timeout:.0f} s; try again later")
            delay = self.poll_delays[min(attempt, len(self.poll_delays) - 1)]
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            attempt += 1

    async def _check_quota(self, ig_id: str, token: str) -> None:
        """The publishing quota is read at runtime (its size is disputed: 25/50/100 per rolling
        24 h [3P]); when it is used up, media_publish would fail with code 9 / 2207042. The answer
        says how many posts count but not when the oldest leaves the rolling window, so we ask
        the scheduler to come back in an hour (our choice: the soonest a slot can plausibly free
        without spending calls on a busy account)."""
        body = await self._get(f"{ig_id}/content_publishing_limit", token, {"fields": "config,quota_usage"})
        for entry in body.get("data") or []:
            usage, total = entry.get("quota_usage"), (entry.get("config") or {}).get("quota_total")
            if isinstance(usage, int) and isinstance(total, int) and usage >= total:
                raise RateLimited(f"{self.provider}: the 24 h publishing quota is used up ({usage}/{total})",
                                  retry_after=IG_QUOTA_WAIT, http_status=None)

    @staticmethod
    def _url_of(media: MediaFile) -> str:
        if not media.url:
            raise ContentRejected("instagram fetches media by public URL and this file has none "
                                  "(Herald's public media URL is not configured)")
        return media.url

    def _item(self, media: MediaFile, *, carousel: bool = False, media_type: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if media.kind == "image":
            data["image_url"] = self._url_of(media)
            if media.alt_text and media_type is None:
                data["alt_text"] = media.alt_text  # image posts only [C content publishing]
        else:
            data["video_url"] = self._url_of(media)
            data["media_type"] = "VIDEO" if carousel else (media_type or "REELS")
        if media_type and media.kind == "image":
            data["media_type"] = media_type
        if carousel:
            data["is_carousel_item"] = "true"
        return data

    # --- publishing ---------------------------------------------------------------------------

    async def prepare_publish(self, credentials: dict[str, Any], request: PublishRequest) -> PreparedPublish:
        ig_id, token = self._ig(credentials)
        settings = request.settings or {}
        text = request.text or ""
        media = request.media

        if request.interaction == "comment" or request.reply_to:
            if not request.reply_to:
                raise ContentRejected("an instagram comment needs the id of the media it comments on")
            if media:
                raise ContentRejected("an instagram comment is text only")
            if not text.strip():
                raise ContentRejected("an instagram comment needs text")
            await self._get(request.reply_to, token, {"fields": "id"})  # the parent exists (read only)
            return self._publish_call(f"{request.reply_to}/comments", token, {"message": text}, comment=True)

        post_type = request.post_type or "feed"
        if post_type not in POST_TYPES:
            raise ContentRejected(f"{self.provider} has no post type {post_type!r} (it has: {', '.join(POST_TYPES)})")
        if not media:
            raise ContentRejected("instagram posts need at least one photo or video")
        if any(m.kind not in ("image", "video") for m in media):
            raise ContentRejected("instagram posts photos and videos only")
        if len(media) > LIMITS.max_media:
            raise ContentRejected(f"{len(media)} media items, instagram allows {LIMITS.max_media} in a carousel")
        caption = {"caption": text} if text else {}

        if post_type == "story":
            if len(media) != 1:
                raise ContentRejected("an instagram story is exactly one photo or video (publish one per story)")
            # Stories take no caption [3P §3]: the text is not sent.
            container = await self._create(ig_id, token, self._item(media[0], media_type="STORIES"))
        elif post_type == "reel" or (len(media) == 1 and media[0].kind == "video"):
            if len(media) != 1 or media[0].kind != "video":
                raise ContentRejected("an instagram reel is exactly one video")
            data = {**self._item(media[0], media_type="REELS"), **caption,
                    "share_to_feed": "false" if settings.get("shareToFeed") is False else "true"}
            if isinstance(settings.get("thumbOffset"), int):
                data["thumb_offset"] = str(settings["thumbOffset"])
            if settings.get("collaborators"):
                data["collaborators"] = _json_list(settings["collaborators"])
            container = await self._create(ig_id, token, data)
        elif len(media) == 1:
            data = {**self._item(media[0]), **caption}
            if settings.get("collaborators"):
                data["collaborators"] = _json_list(settings["collaborators"])
            container = await self._create(ig_id, token, data)
        else:
            children = [await self._create(ig_id, token, self._item(m, carousel=True)) for m in media]
            for child in children:
                await self._wait_finished(child, token)
            container = await self._create(ig_id, token, {"media_type": "CAROUSEL", "children": ",".join(children),
                                                          **caption})
        await self._wait_finished(container, token)
        await self._check_quota(ig_id, token)
        return self._publish_call(f"{ig_id}/media_publish", token, {"creation_id": container})

    def _publish_call(self, path: str, token: str, data: dict[str, Any], *, comment: bool = False) -> PreparedRequest:
        request = self.http.build_request("POST", graph_url(self.base_url, path), data=data, headers=self._auth(token))

        def parse(response: httpx.Response) -> PublishResult:
            if response.status_code != 200:
                raise self._error(response, token, publishing=True)
            return PublishResult(provider_post_id=str(graph_json(response)["id"]), http_status=response.status_code)

        async def permalink(result: PublishResult) -> PublishResult:
            # Best effort, after the irreversible call: the link Instagram built for the post.
            body = await self._get(result.provider_post_id, token, {"fields": "permalink"})
            link = body.get("permalink")
            return result.model_copy(update={"provider_url": link}) if isinstance(link, str) else result

        return PreparedRequest(self.http, request, parse, None if comment else permalink)

    async def reconcile(self, credentials: dict[str, Any], request: PublishRequest,
                        provider_post_id: str | None) -> ReconcileResult:
        ig_id, token = self._ig(credentials)
        if provider_post_id:
            lookup = self.http.build_request("GET", graph_url(self.base_url, provider_post_id),
                                             params={"fields": "id"}, headers=self._auth(token))
            response = await send_readonly(self.http, lookup)
            if response.status_code == 200:
                return ReconcileResult(state="found", result=PublishResult(provider_post_id=provider_post_id))
            if not_found(response):
                return ReconcileResult(state="absent", detail=f"{self.provider}: the media does not exist")
            raise self._error(response, token)
        text = request.text or ""
        if request.interaction == "comment" or request.reply_to:
            if not request.reply_to or not text:
                return ReconcileResult(state="unknowable", detail="a comment without text cannot be matched")
            body = await self._get(f"{request.reply_to}/comments", token, {"fields": "id,text,from,timestamp"})
            for item in body.get("data") or []:
                if item.get("text") == text and str((item.get("from") or {}).get("id", ig_id)) == ig_id:
                    return ReconcileResult(state="found", result=PublishResult(provider_post_id=str(item["id"])))
            return ReconcileResult(state="absent", detail="no comment by this account with this text")
        if (request.post_type or "feed") == "story":
            return ReconcileResult(state="unknowable", detail="instagram stories carry no caption to match")
        if not text:
            return ReconcileResult(state="unknowable", detail="a post without a caption cannot be matched")
        body = await self._get(f"{ig_id}/media", token, {"fields": "id,caption,timestamp,permalink", "limit": 50})
        for item in body.get("data") or []:  # newest first
            if item.get("caption") == text:
                return ReconcileResult(state="found", result=PublishResult(
                    provider_post_id=str(item["id"]), provider_url=item.get("permalink")))
        return ReconcileResult(state="absent", detail="no recent media has this exact caption")

    async def delete(self, credentials: dict[str, Any], provider_post_id: str) -> None:
        raise ContentRejected("instagram offers no way to delete published media through its API",
                              code="delete_unsupported")


def _json_list(values: list[str]) -> str:
    import json

    return json.dumps([str(v) for v in values])


# --- Instagram API with Facebook Login ------------------------------------------------------------


class InstagramBusinessAdapter(InstagramContainerAdapter):
    provider = "instagram_business"
    # Facebook Login dialog [C §2]; scopes [C container doc permissions; 3P exact set, §3].
    oauth = OAuthSpec(authorize_path=f"/{V}/dialog/oauth", scope_separator=",", scopes=(
        "instagram_basic", "instagram_content_publish", "instagram_manage_comments",
        "pages_show_list", "pages_read_engagement", "business_management",
    ))
    actions = (("sync_accounts", "Re-list the Instagram accounts linked to this login's Pages"),)
    auth_scheme = "OAuth"

    async def exchange_code(self, app: OAuthApp, code: str, code_verifier: str | None) -> dict[str, Any]:
        return await facebook_login_exchange(self.http, app, code)

    async def _linked(self, user_token: str) -> list[dict[str, Any]]:
        return await list_pages(self.http, self.base_url, user_token,
                                "id,name,access_token,tasks,instagram_business_account{id,username,name}",
                                network=self.provider)

    async def discover(self, app: OAuthApp, credentials: dict[str, Any]) -> list[AccountIdentity]:
        user_token = str(credentials["access_token"])
        out = []
        for page in await self._linked(user_token):
            ig = page.get("instagram_business_account") or {}
            tasks = page.get("tasks") or []
            # Publishing needs MANAGE or CREATE_CONTENT on the linked Page [C ig-user/media].
            if not ig.get("id") or not page.get("access_token") or not {"MANAGE", "CREATE_CONTENT"} & set(tasks):
                continue
            ig_id = str(ig["id"])
            out.append(AccountIdentity(
                handle=f"instagram_business:{ig_id}", external_id=ig_id,
                display_name=ig.get("name") or ig.get("username"), account_type="business",
                credentials={
                    "access_token": page["access_token"], "user_access_token": user_token,
                    "user_expires_at": credentials.get("expires_at"), "page_id": str(page["id"]),
                    "ig_user_id": ig_id,
                },
                metadata={"username": ig.get("username"), "page_id": str(page["id"]), "page_name": page.get("name")},
            ))
        return out

    async def refresh(self, app: OAuthApp, credentials: dict[str, Any]) -> dict[str, Any] | None:
        return None  # a Page token (no expiry, no refresh grant) [C/3P §2/§3]

    def login_credentials(self, credentials: dict[str, Any]) -> dict[str, Any]:
        # discover() lists Pages with the user token the Page token was derived from.
        user_token = credentials.get("user_access_token")
        if not user_token:
            raise AuthExpired("this account has no user token to list Pages with; reconnect it")
        return {"access_token": user_token, "expires_at": credentials.get("user_expires_at"),
                "app_id": credentials.get("app_id")}

    async def check_credentials(self, credentials: dict[str, Any]) -> None:
        ig_id, token = self._ig(credentials)
        await self._get(ig_id, token, {"fields": "id,username"})

    async def run_action(self, app: OAuthApp | None, credentials: dict[str, Any], action: str) -> dict[str, Any]:
        if action != "sync_accounts":
            raise ValueError(f"unknown action {action!r} (instagram_business has: sync_accounts)")
        user_token = credentials.get("user_access_token")
        if not user_token:
            raise AuthExpired("this account has no user token to list Pages with; reconnect it")
        accounts = []
        for page in await self._linked(str(user_token)):
            ig = page.get("instagram_business_account") or {}
            if ig.get("id"):
                accounts.append({"id": str(ig["id"]), "username": ig.get("username"), "pageId": str(page["id"]),
                                 "pageName": page.get("name")})
        current = str(credentials.get("ig_user_id"))
        return {"accounts": accounts, "igUserId": current, "stillLinked": any(a["id"] == current for a in accounts)}


# --- Instagram API with Instagram Login -----------------------------------------------------------

MIN_REFRESH_AGE = 24 * 3600.0  # "at least 24 hours old" [C refresh_access_token reference]


class InstagramLoginAdapter(InstagramContainerAdapter):
    provider = "instagram"
    # www.instagram.com/oauth/authorize [3P URL; C scope names, old business_* deprecated 2025-01-27].
    oauth = OAuthSpec(authorize_path="/oauth/authorize", scope_separator=",", scopes=(
        "instagram_business_basic", "instagram_business_content_publish", "instagram_business_manage_comments",
    ))
    # graph.instagram.com examples send "Authorization: Bearer <token>" [U: docs mostly show the
    # access_token parameter, which would put the token in URLs and logs].
    auth_scheme = "Bearer"

    async def exchange_code(self, app: OAuthApp, code: str, code_verifier: str | None) -> dict[str, Any]:
        # 1. code -> short-lived token (1 h): POST api.instagram.com/oauth/access_token, form [3P postiz].
        request = self.http.build_request("POST", f"{app.token_base}/oauth/access_token", data={
            "client_id": app.client_id, "client_secret": app.client_secret, "grant_type": "authorization_code",
            "redirect_uri": app.redirect_uri, "code": code,
        }, headers={"Accept": "application/json"})
        response = await send_classified(self.http, request)
        body = graph_json(response)
        if response.status_code != 200:
            raise _ig_oauth_error(response, body)
        # Flat {access_token, user_id, permissions} [3P]; some doc versions wrap it in data[] [U].
        if isinstance(body.get("data"), list) and body["data"]:
            body = body["data"][0]
        short, user_id = body.get("access_token"), body.get("user_id")
        if not isinstance(short, str) or not short:
            raise ProviderError("the token endpoint answered without an access_token", code="oauth_bad_response")
        # 2. short -> long-lived (60 days): GET graph.instagram.com/access_token [C].
        long = await self._token_call("access_token", {"grant_type": "ig_exchange_token",
                                                       "client_secret": app.client_secret, "access_token": short})
        creds = token_credentials(long)
        creds["issued_at"] = time.time()
        if user_id is not None:
            creds["ig_user_id"] = str(user_id)
        return creds

    async def _token_call(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        request = self.http.build_request("GET", f"{self.base_url}/{path}", params=params,
                                          headers={"Accept": "application/json"})
        response = await send_readonly(self.http, request)
        if response.status_code != 200:
            err = error_fields(response)
            code = err.get("code")
            secrets = [params.get("access_token"), params.get("client_secret")]
            if code in AUTH_CODES or (code is None and response.status_code in (401, 403)):
                raise graph_error(response, network=self.provider, secrets=secrets)
            if response.status_code >= 500 or code in (1, 2):
                raise ProviderUnavailable(f"{self.provider} token endpoint failed (HTTP {response.status_code})",
                                          http_status=response.status_code)
            # Anything else (e.g. "not old enough to refresh") leaves the grant alive: not a re-auth.
            message = truncate(str(err.get("message") or response.reason_phrase))
            for secret in secrets:
                if secret:
                    message = message.replace(secret, "***")
            raise ProviderError(f"{self.provider} refused the token request: {message}",
                                http_status=response.status_code, code="token_refused")
        body = graph_json(response)
        if not body.get("access_token"):
            raise ProviderError("the token endpoint answered without an access_token", code="oauth_bad_response")
        return body

    async def discover(self, app: OAuthApp, credentials: dict[str, Any]) -> list[AccountIdentity]:
        token = str(credentials["access_token"])
        me = await self._get("me", token, {"fields": "user_id,username,name,account_type"})
        user_id = str(me.get("user_id") or me.get("id"))
        account_type = str(me.get("account_type") or "").lower() or None
        creds = {**credentials, "ig_user_id": user_id}
        return [AccountIdentity(
            handle=f"instagram:{user_id}", external_id=user_id, display_name=me.get("name") or me.get("username"),
            account_type=account_type, credentials=creds,
            metadata={"username": me.get("username"), "account_type": me.get("account_type")},
        )]

    async def refresh(self, app: OAuthApp, credentials: dict[str, Any]) -> dict[str, Any] | None:
        """ig_refresh_token. A token younger than 24 h cannot be refreshed yet [C]: it is still good,
        so it is returned unchanged rather than refused; Meta refusing for another reason than a
        dead token (code 190) is a ProviderError, never AuthExpired."""
        issued = credentials.get("issued_at")
        if isinstance(issued, (int, float)) and time.time() - issued < MIN_REFRESH_AGE:
            return dict(credentials)
        body = await self._token_call("refresh_access_token", {
            "grant_type": "ig_refresh_token", "access_token": str(credentials["access_token"])})
        out = token_credentials(body, previous=credentials)
        out["issued_at"] = time.time()
        return out

    async def check_credentials(self, credentials: dict[str, Any]) -> None:
        _, token = self._ig(credentials)
        await self._get("me", token, {"fields": "user_id"})


def _ig_oauth_error(response: httpx.Response, body: dict[str, Any]) -> ProviderError:
    """api.instagram.com answers {"error_type","code","error_message"} [U] (or Graph's envelope)."""
    status = response.status_code
    err = body.get("error")
    message = str(body.get("error_message") or (err.get("message") if isinstance(err, dict) else err) or "")
    text = f"instagram token request refused ({status}): {truncate(message) or 'no detail'}"
    if status == 429:
        return RateLimited(text, retry_after=60.0)
    if status >= 500:
        return ProviderUnavailable(text, http_status=status)
    if status in (400, 401, 403):
        return AuthExpired(text, http_status=status)
    return ProviderError(text, http_status=status, code="oauth_error")
