"""Facebook Pages through the Graph API, connected with Facebook Login.

Facts: /work/shared/reference/providers.md §2 (tags [C] confirmed, [3P] third party, [U]
unconfirmed) and pages read with the search tool:

* posts guide (developers.facebook.com/docs/pages-api/posts) [C]: POST /{page}/feed with
  message, link, published; permissions pages_manage_engagement, pages_manage_posts,
  pages_read_engagement, pages_read_user_engagement, publish_video; tasks CREATE_CONTENT,
  MANAGE, MODERATE; delete a post with DELETE.
* video API overview [C]: "The graph-video.facebook.com host for video uploads has been
  deprecated. Use the graph.facebook.com host"; "Upload videos using the Resumable Upload API".
* Resumable Upload API (docs/graph-api/guides/upload) [C]: POST /{app-id}/uploads?file_name&
  file_length&file_type -> {"id":"upload:<id>"}; POST /upload:<id> with the headers
  "Authorization: OAuth <USER_ACCESS_TOKEN>" and "file_offset" -> {"h": handle}; "You must include
  the access token in the header or the call will fail".
* video publishing guide [C]: POST /{page}/videos with title, description,
  fbuploader_video_file_chunk=<handle> -> {"id": video id}.
* page stories API (docs/page-stories-api) [C]: photos jpeg/bmp/png/gif/tiff <= 4 MB; videos
  9:16, >= 540x960, 24-60 fps, 3-90 s (a story <= 60 s); permissions pages_manage_posts,
  pages_read_engagement, pages_show_list.

Two phases. Everything that leaves no visible trace happens in ``prepare_publish``: photos are
uploaded unpublished (published=false) and videos through the Resumable Upload API (a file
handle) or a video_reels / video_stories upload session. ``send`` is then one small call:
POST /{page}/feed with attached_media, /{page}/videos with the handle, photo_stories, or the
``finish`` phase of a reel or video story. A single photo goes through the same unpublished
upload + feed attach, so even a photo post leaves on the exact second without its bytes.

Page tokens derived from a long-lived user token do not expire and there is no refresh grant
[3P/C §2]: ``refresh`` returns None and a dead token (code 190) means reconnect.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, ClassVar
from urllib.parse import urlsplit

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
    PublishRequest,
    PublishResult,
    ReconcileResult,
)
from providers.graph import GRAPH_VERSION, graph_error, graph_json, not_found
from providers.http_media import (
    PreparedRequest,
    kind_of,
    media_fit_problems,
    n,
    send_readonly,
    unknown_settings,
)
from providers.oauth import OAuthAdapter, OAuthApp, OAuthSpec, token_credentials, token_request

V = GRAPH_VERSION
MB = 1_000_000
MIB = 1024 * 1024

LIMITS = Limits(
    max_text_chars=63_206,  # post message [3P postiz facebook.provider.ts]
    max_media=10,  # photos in one multi-photo post [3P mixpost config]; or exactly 1 video
    max_file_bytes=10 * 1024 * MIB,  # video <= 10 GB [3P §2]
    max_bytes_by_kind={"image": 4 * MIB},  # "Files can not exceed 4MB" [C page-stories-api; 3P postiz 1366046]
    source=(
        "providers.md §2: message 63,206 [3P postiz], <= 10 photos [3P mixpost], video <= 10 GB [3P]; "
        "photos <= 4 MB [C developers.facebook.com/docs/page-stories-api]"
    ),
)
SETTINGS = ("link",)
POST_TYPES = ("feed", "story", "reel")
# Resumable Upload chunk size: our choice (the API takes any chunking, file_offset tracks it [C]).
UPLOAD_CHUNK = 16 * MIB

# Facebook Login scopes for Pages publishing [C posts guide + page-stories-api; 3P exact set]:
SCOPES = (
    "pages_show_list", "pages_read_engagement", "pages_manage_posts", "pages_manage_engagement",
    "pages_read_user_engagement", "publish_video", "business_management",
)

SETTINGS_FIELDS: list[dict[str, Any]] = [
    {"id": "link", "type": "string", "label": "A link to attach to a text post (Facebook shows its preview)"},
]
SHAPES = ["text", "link", "image", "images", "video", "comment", "story", "reel"]

# --- media profiles -------------------------------------------------------------------------------
# Feed photos: JPEG/PNG pass, everything else becomes JPEG; <= 4 MB [C page-stories-api "Files
# can not exceed 4MB"; 3P postiz error 1366046 "smaller than 4 MB and saved as JPG, PNG"]; Ayrshare
# says 10 MB [3P], we keep the stricter number. Video: MP4/MOV H.264/AAC [3P §2], <= 10 GB, <= 240
# min [3P]. Reels: MP4 9:16, 3-90 s, 24-60 fps [C reels-publishing via providers.md §2 and
# page-stories-api]. Stories: photo as feed; video 9:16, 3-60 s [C page-stories-api].
FEED_IMAGE = ImageRules(formats=("image/jpeg", "image/png"), convert_to="image/jpeg", max_bytes=4 * MIB)
FACEBOOK_FEED = MediaProfile(
    key="facebook.v1",
    image=FEED_IMAGE,
    video=VideoRules(containers=("video/mp4", "video/quicktime"), video_codecs=("h264",),
                     audio_codecs=("aac",), pixel_formats=("yuv420p",), max_bytes=10 * 1024 * MIB,
                     max_duration=240 * 60.0, needs_faststart=True),
    max_other_bytes=None,
    source="providers.md §2 [3P postiz/Ayrshare]; developers.facebook.com/docs/page-stories-api (4 MB) [C]",
)
FACEBOOK_REEL = MediaProfile(
    key="facebook.reel.v1",
    image=None,
    video=VideoRules(containers=("video/mp4",), video_codecs=("h264",), audio_codecs=("aac",),
                     pixel_formats=("yuv420p",), max_bytes=1024 * MIB, max_fps=60.0, min_duration=3.0,
                     max_duration=90.0, min_aspect=0.54, max_aspect=0.58, needs_faststart=True),
    max_other_bytes=None,
    source="reels: MP4 9:16 (>= 540x960), 24-60 fps, 3-90 s [C providers.md §2, page-stories-api]",
)
FACEBOOK_STORY = MediaProfile(
    key="facebook.story.v1",
    image=FEED_IMAGE,
    video=VideoRules(containers=("video/mp4",), video_codecs=("h264",), audio_codecs=("aac",),
                     pixel_formats=("yuv420p",), max_bytes=1024 * MIB, max_fps=60.0, min_duration=3.0,
                     max_duration=60.0, min_aspect=0.54, max_aspect=0.58, needs_faststart=True),
    max_other_bytes=None,
    source="developers.facebook.com/docs/page-stories-api: photo <= 4 MB; video 9:16, 3-60 s [C]",
)
MEDIA_PROFILES: dict[str, dict[str | None, MediaProfile]] = {
    "facebook": {None: FACEBOOK_FEED, "feed": FACEBOOK_FEED, "reel": FACEBOOK_REEL, "story": FACEBOOK_STORY},
}


# --- Facebook Login, shared with instagram_business ------------------------------------------------


def graph_url(base: str, path: str) -> str:
    return f"{base}/{V}/{path.lstrip('/')}"


async def facebook_login_exchange(http: httpx.AsyncClient, app: OAuthApp, code: str) -> dict[str, Any]:
    """code -> short-lived user token -> long-lived user token (~60 days) [C §2]. The credentials
    carry ``app_id`` (not secret): the Resumable Upload API is an edge of the app."""
    url = graph_url(app.token_base, "oauth/access_token")
    short = await token_request(http, "GET", url, params={
        "client_id": app.client_id, "redirect_uri": app.redirect_uri,
        "client_secret": app.client_secret, "code": code,
    })
    short_token = short.get("access_token")
    if not isinstance(short_token, str) or not short_token:
        raise ProviderError("the token endpoint answered without an access_token", code="oauth_bad_response")
    long = await token_request(http, "GET", url, params={
        "grant_type": "fb_exchange_token", "client_id": app.client_id,
        "client_secret": app.client_secret, "fb_exchange_token": short_token,
    })
    creds = token_credentials(long)
    creds["app_id"] = app.client_id
    return creds


async def graph_get(http: httpx.AsyncClient, base: str, path: str, token: str, params: dict[str, Any] | None = None,
                    *, network: str, scheme: str = "OAuth") -> dict[str, Any]:
    """A read: the JSON body on 200, else the classified error (never OutcomeUnknown)."""
    request = http.build_request("GET", graph_url(base, path), params=params,
                                 headers={"Authorization": f"{scheme} {token}"})
    response = await send_readonly(http, request)
    if response.status_code != 200:
        raise graph_error(response, network=network, secrets=[token])
    return graph_json(response)


async def list_pages(http: httpx.AsyncClient, base: str, user_token: str, fields: str, *,
                     network: str) -> list[dict[str, Any]]:
    """GET /me/accounts, following the ``after`` cursor while ``paging.next`` says there is more."""
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"fields": fields, "limit": 100}
    for _ in range(20):
        body = await graph_get(http, base, "me/accounts", user_token, params, network=network)
        pages += [p for p in body.get("data") or [] if isinstance(p, dict)]
        paging = body.get("paging") or {}
        after = (paging.get("cursors") or {}).get("after")
        if not paging.get("next") or not after:
            break
        params = {**params, "after": after}
    return pages


# --- the adapter ------------------------------------------------------------------------------------


class FacebookAdapter(OAuthAdapter):
    provider = "facebook"
    limits = LIMITS
    oauth = OAuthSpec(authorize_path=f"/{V}/dialog/oauth", scopes=SCOPES, scope_separator=",")
    actions = (("sync_pages", "Re-list the Pages this login manages"),)
    can_delete = True
    shapes: ClassVar[list[str]] = SHAPES
    settings_fields: ClassVar[list[dict[str, Any]]] = SETTINGS_FIELDS

    # --- pure check ---------------------------------------------------------------------------

    @classmethod
    def check_post(cls, draft: PostDraft) -> list[Problem]:
        lim = cls.limits
        settings = draft.settings or {}
        problems = unknown_settings(settings, SETTINGS, "facebook") + media_fit_problems(settings)
        text = draft.text or ""
        link = settings.get("link")
        if link is not None and (not isinstance(link, str) or urlsplit(link).scheme not in ("http", "https")
                                 or not urlsplit(link).netloc):
            problems.append(Problem(field="settings.link", message="must be an http(s) URL"))
        if len(text) > lim.max_text_chars:
            problems.append(Problem(field="description",
                                    message=f"{n(len(text))} characters, facebook allows {n(lim.max_text_chars)}"))
        if not text.strip() and not draft.media and not link:
            problems.append(Problem(field="description",
                                    message="the post is empty: facebook needs text, a link or media"))
        kinds = [kind_of(ref) for ref in draft.media]
        for i, kind in enumerate(kinds):
            if kind not in ("image", "video"):
                problems.append(Problem(field=f"assets[{i}]",
                                        message="facebook posts photos and videos only"))
        if draft.is_reply:
            if len(draft.media) > 1 or any(k != "image" for k in kinds):
                problems.append(Problem(field="assets", message="a facebook comment can carry one photo at most"))
            if link:
                problems.append(Problem(field="settings.link", message="a facebook comment cannot carry a link preview"))
            return problems
        if "video" in kinds and len(kinds) > 1:
            problems.append(Problem(field="assets",
                                    message="a facebook post carries one video, or up to 10 photos, not both"))
        elif len(kinds) > lim.max_media:
            problems.append(Problem(field="assets",
                                    message=f"{n(len(kinds))} photos, facebook allows {lim.max_media} in one post"))
        if link and draft.media:
            problems.append(Problem(field="settings.link",
                                    message="a facebook link post cannot carry photos or videos"))
        return problems

    # --- OAuth --------------------------------------------------------------------------------

    async def exchange_code(self, app: OAuthApp, code: str, code_verifier: str | None) -> dict[str, Any]:
        return await facebook_login_exchange(self.http, app, code)

    async def discover(self, app: OAuthApp, credentials: dict[str, Any]) -> list[AccountIdentity]:
        user_token = str(credentials["access_token"])
        pages = await list_pages(self.http, self.base_url, user_token,
                                 "id,name,access_token,tasks,category", network="facebook")
        out = []
        for page in pages:
            tasks = page.get("tasks") or []
            if "CREATE_CONTENT" not in tasks or not page.get("access_token"):
                continue  # publishing needs CREATE_CONTENT on the Page [C]
            page_id = str(page["id"])
            out.append(AccountIdentity(
                handle=f"facebook:{page_id}", external_id=page_id, display_name=page.get("name"),
                account_type="page",
                credentials={
                    "access_token": page["access_token"], "page_access_token": page["access_token"],
                    "user_access_token": user_token, "user_expires_at": credentials.get("expires_at"),
                    "page_id": page_id, "app_id": credentials.get("app_id") or app.client_id,
                },
                metadata={"page_id": page_id, "category": page.get("category"), "tasks": tasks},
            ))
        return out

    async def refresh(self, app: OAuthApp, credentials: dict[str, Any]) -> dict[str, Any] | None:
        return None  # Page tokens do not expire and Graph has no refresh grant [C/3P §2]

    def login_credentials(self, credentials: dict[str, Any]) -> dict[str, Any]:
        # discover() lists Pages with the user token the Page token was derived from.
        user_token = credentials.get("user_access_token")
        if not user_token:
            raise AuthExpired("this account has no user token to list Pages with; reconnect it")
        return {"access_token": user_token, "expires_at": credentials.get("user_expires_at"),
                "app_id": credentials.get("app_id")}

    async def run_action(self, app: OAuthApp | None, credentials: dict[str, Any], action: str) -> dict[str, Any]:
        if action != "sync_pages":
            raise ValueError(f"unknown action {action!r} (facebook has: sync_pages)")
        user_token = credentials.get("user_access_token")
        if not user_token:
            raise AuthExpired("this account has no user token to list Pages with; reconnect it")
        pages = await list_pages(self.http, self.base_url, str(user_token), "id,name,tasks,category",
                                 network="facebook")
        listed = [{"id": str(p.get("id")), "name": p.get("name"), "category": p.get("category"),
                   "tasks": p.get("tasks") or [], "canPublish": "CREATE_CONTENT" in (p.get("tasks") or [])}
                  for p in pages]
        page_id = str(credentials.get("page_id"))
        current = next((p for p in listed if p["id"] == page_id), None)
        return {"pages": listed, "pageId": page_id,
                "stillManaged": bool(current and current["canPublish"])}

    # --- calls --------------------------------------------------------------------------------

    def _page(self, credentials: dict[str, Any]) -> tuple[str, str]:
        token = credentials.get("page_access_token") or credentials.get("access_token")
        if not token or not credentials.get("page_id"):
            raise AuthExpired("the facebook credentials lack a Page token; reconnect the account")
        return str(credentials["page_id"]), str(token)

    def _auth(self, token: str) -> dict[str, str]:
        # "Authorization: OAuth <token>" keeps tokens out of URLs (and logs) [C upload guide].
        return {"Authorization": f"OAuth {token}"}

    def _error(self, response: httpx.Response, *tokens: str, publishing: bool = False) -> ProviderError:
        return graph_error(response, network="facebook", secrets=tokens, publishing=publishing)

    async def _prepare_call(self, method: str, path: str, token: str, *, data: Any = None,
                            files: Any = None, params: Any = None, headers: dict[str, str] | None = None,
                            url: str | None = None, content: bytes | None = None) -> dict[str, Any]:
        """A reversible call made while preparing (an unpublished upload): an unknown outcome is
        simply retried, so it is ProviderUnavailable, never OutcomeUnknown."""
        request = self.http.build_request(method, url or graph_url(self.base_url, path), data=data, files=files,
                                          params=params, content=content,
                                          headers={**self._auth(token), **(headers or {})})
        response = await send_readonly(self.http, request)
        if response.status_code != 200:
            raise self._error(response, token)
        return graph_json(response)

    async def check_credentials(self, credentials: dict[str, Any]) -> None:
        page_id, token = self._page(credentials)
        await graph_get(self.http, self.base_url, page_id, token, {"fields": "id,name"}, network="facebook")

    async def _read_bytes(self, media: MediaFile) -> bytes:
        return await asyncio.to_thread(lambda: open(media.path, "rb").read())

    async def _upload_photo(self, page_id: str, token: str, media: MediaFile) -> str:
        """An unpublished photo (published=false): no post, no trace until attached [C posts guide]."""
        blob = await self._read_bytes(media)
        data = {"published": "false"}
        if media.alt_text:
            data["alt_text_custom"] = media.alt_text  # Photo field [U: not in providers.md]
        body = await self._prepare_call("POST", f"{page_id}/photos", token, data=data,
                                        files={"source": (media.filename, blob, media.mime)})
        return str(body["id"])

    async def _resumable_upload(self, credentials: dict[str, Any], media: MediaFile) -> str:
        """Resumable Upload API -> a file handle, with the user token [C upload guide]."""
        user_token, app_id = credentials.get("user_access_token"), credentials.get("app_id")
        if not user_token or not app_id:
            raise AuthExpired("the facebook credentials lack the user token or app id a video upload needs; "
                              "reconnect the account")
        user_token = str(user_token)
        size = os.path.getsize(media.path)
        start = await self._prepare_call("POST", f"{app_id}/uploads", user_token, params={
            "file_name": media.filename, "file_length": size, "file_type": "video/mp4"})
        session = str(start["id"])
        offset = 0
        for _ in range(size // UPLOAD_CHUNK + 3):
            chunk = await asyncio.to_thread(_read_chunk, media.path, offset, UPLOAD_CHUNK)
            body = await self._prepare_call("POST", session, user_token, content=chunk,
                                            headers={"file_offset": str(offset)})
            if body.get("h"):
                return str(body["h"])
            new_offset = int(body.get("file_offset", offset + len(chunk)))
            if new_offset <= offset:
                break
            offset = new_offset
        raise ProviderError("the facebook upload session did not return a file handle", code="upload_incomplete")

    async def _upload_session(self, page_id: str, token: str, edge: str, media: MediaFile) -> str:
        """video_reels / video_stories: start -> bytes to the returned upload_url [C start; U rest]."""
        start = await self._prepare_call("POST", f"{page_id}/{edge}", token, data={"upload_phase": "start"})
        video_id, upload_url = str(start["video_id"]), str(start["upload_url"])
        self._check_upload_url(upload_url)
        blob = await self._read_bytes(media)
        await self._prepare_call("POST", "", token, url=upload_url, content=blob,
                                 headers={"offset": "0", "file_size": str(len(blob))})
        return video_id

    def _check_upload_url(self, url: str) -> None:
        """The page token goes to this URL: only rupload.facebook.com or our own API host."""
        parts, base = urlsplit(url), urlsplit(self.base_url)
        if parts.hostname == "rupload.facebook.com" and parts.scheme == "https":
            return
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return
        raise ProviderError(f"unexpected upload host {parts.hostname!r}", code="bad_upload_url")

    def _call(self, path: str, token: str, data: dict[str, Any],
              parse: Any, files: Any = None) -> PreparedRequest:
        request = self.http.build_request("POST", graph_url(self.base_url, path), data=data, files=files,
                                          headers=self._auth(token))

        def checked(response: httpx.Response) -> PublishResult:
            if response.status_code != 200:
                raise self._error(response, token, publishing=True)
            return parse(graph_json(response), response.status_code)

        return PreparedRequest(self.http, request, checked)

    async def prepare_publish(self, credentials: dict[str, Any], request: PublishRequest) -> PreparedPublish:
        page_id, token = self._page(credentials)
        settings = request.settings or {}
        text = request.text or ""
        media = request.media
        kinds = [m.kind for m in media]
        if any(k not in ("image", "video") for k in kinds):
            raise ContentRejected("facebook posts photos and videos only")

        if request.interaction == "comment" or request.reply_to:
            if not request.reply_to:
                raise ContentRejected("a facebook comment needs the id of the post it comments on")
            if len(media) > 1 or any(k != "image" for k in kinds):
                raise ContentRejected("a facebook comment can carry one photo at most")
            files = None
            if media:
                blob = await self._read_bytes(media[0])
                files = {"source": (media[0].filename, blob, media[0].mime)}
            data = {"message": text} if text else {}
            return self._call(f"{request.reply_to}/comments", token, data,
                              lambda body, status: PublishResult(provider_post_id=str(body["id"]),
                                                                 http_status=status), files=files)

        post_type = request.post_type or "feed"
        if post_type not in POST_TYPES:
            raise ContentRejected(f"facebook has no post type {post_type!r} (it has: {', '.join(POST_TYPES)})")

        if post_type == "story":
            if len(media) != 1:
                raise ContentRejected("a facebook story is exactly one photo or one video")
            if kinds[0] == "image":
                photo_id = await self._upload_photo(page_id, token, media[0])
                return self._call(f"{page_id}/photo_stories", token, {"photo_id": photo_id},
                                  lambda body, status: self._story_result(body, status))
            video_id = await self._upload_session(page_id, token, "video_stories", media[0])
            return self._call(f"{page_id}/video_stories", token,
                              {"upload_phase": "finish", "video_id": video_id},
                              lambda body, status: self._story_result(body, status))

        if post_type == "reel":
            if len(media) != 1 or kinds[0] != "video":
                raise ContentRejected("a facebook reel is exactly one video")
            video_id = await self._upload_session(page_id, token, "video_reels", media[0])
            data = {"upload_phase": "finish", "video_id": video_id, "video_state": "PUBLISHED"}
            if text:
                data["description"] = text

            def reel(body: dict[str, Any], status: int) -> PublishResult:
                if body.get("success") is not True:
                    raise ValueError("no success flag")
                return PublishResult(provider_post_id=video_id, http_status=status,
                                     provider_url=f"https://www.facebook.com/reel/{video_id}")  # [3P postiz]

            return self._call(f"{page_id}/video_reels", token, data, reel)

        # feed
        if "video" in kinds:
            if len(media) != 1:
                raise ContentRejected("a facebook post carries one video, or up to 10 photos, not both")
            data = {"description": text} if text else {}
            if request.title:
                data["title"] = request.title
            files = None
            try:
                data["fbuploader_video_file_chunk"] = await self._resumable_upload(credentials, media[0])
            except AuthExpired:
                # The 60-day user token died while the Page token still works: upload the bytes
                # with the publish call itself (multipart "source" [C page/videos reference]).
                blob = await self._read_bytes(media[0])
                files = {"source": (media[0].filename, blob, media[0].mime)}

            def video(body: dict[str, Any], status: int) -> PublishResult:
                vid = str(body["id"])
                return PublishResult(provider_post_id=vid, http_status=status,
                                     provider_url=f"https://www.facebook.com/{page_id}/videos/{vid}")

            return self._call(f"{page_id}/videos", token, data, video, files=files)

        if len(media) > LIMITS.max_media:
            raise ContentRejected(f"{len(media)} photos, facebook allows {LIMITS.max_media} in one post")
        data: dict[str, Any] = {}
        if text:
            data["message"] = text
        if settings.get("link"):
            data["link"] = str(settings["link"])
        photo_ids = []
        for m in media:
            photo_ids.append(await self._upload_photo(page_id, token, m))
        for i, photo_id in enumerate(photo_ids):
            data[f"attached_media[{i}]"] = json.dumps({"media_fbid": photo_id})
        if not data:
            raise ContentRejected("the post is empty: facebook needs text, a link or media")

        def feed(body: dict[str, Any], status: int) -> PublishResult:
            post_id = str(body["id"])
            return PublishResult(provider_post_id=post_id, http_status=status, provider_url=post_url(post_id))

        return self._call(f"{page_id}/feed", token, data, feed)

    @staticmethod
    def _story_result(body: dict[str, Any], status: int) -> PublishResult:
        post_id = str(body["post_id"])
        return PublishResult(provider_post_id=post_id, http_status=status,
                             provider_url=f"https://www.facebook.com/stories/{post_id}")  # [3P §2]

    async def reconcile(self, credentials: dict[str, Any], request: PublishRequest,
                        provider_post_id: str | None) -> ReconcileResult:
        page_id, token = self._page(credentials)
        if provider_post_id:
            lookup = self.http.build_request("GET", graph_url(self.base_url, provider_post_id),
                                             params={"fields": "id,created_time"}, headers=self._auth(token))
            response = await send_readonly(self.http, lookup)
            if response.status_code == 200:
                return ReconcileResult(state="found", result=PublishResult(
                    provider_post_id=provider_post_id, provider_url=post_url(provider_post_id)))
            if not_found(response):
                return ReconcileResult(state="absent", detail="facebook: the object does not exist")
            raise self._error(response, token)
        text = request.text or ""
        if request.interaction == "comment" or request.reply_to:
            if not request.reply_to or not text:
                return ReconcileResult(state="unknowable", detail="a comment without text cannot be matched")
            body = await graph_get(self.http, self.base_url, f"{request.reply_to}/comments", token,
                                   {"fields": "id,message,from,created_time", "order": "reverse_chronological",
                                    "limit": 100}, network="facebook")
            for item in body.get("data") or []:
                if item.get("message") == text and str((item.get("from") or {}).get("id")) == page_id:
                    return ReconcileResult(state="found", result=PublishResult(provider_post_id=str(item["id"])))
            return ReconcileResult(state="absent", detail="no comment by the Page with this text")
        if (request.post_type or "feed") == "story":
            return ReconcileResult(state="unknowable", detail="facebook stories carry no text to match")
        if not text:
            return ReconcileResult(state="unknowable", detail="a post without text cannot be matched")
        edge = "video_reels" if request.post_type == "reel" else "published_posts"
        field = "description" if edge == "video_reels" else "message"
        body = await graph_get(self.http, self.base_url, f"{page_id}/{edge}", token,
                               {"fields": f"id,{field},created_time", "limit": 50}, network="facebook")
        for item in body.get("data") or []:  # newest first
            if item.get(field) == text:
                post_id = str(item["id"])
                return ReconcileResult(state="found", result=PublishResult(
                    provider_post_id=post_id, provider_url=post_url(post_id)))
        return ReconcileResult(state="absent", detail=f"no recent Page {edge} entry has this exact text")

    async def delete(self, credentials: dict[str, Any], provider_post_id: str) -> None:
        _, token = self._page(credentials)
        request = self.http.build_request("DELETE", graph_url(self.base_url, provider_post_id),
                                          headers=self._auth(token))
        response = await send_readonly(self.http, request)  # deleting twice is harmless
        if response.status_code == 200 or not_found(response):
            return
        raise self._error(response, token)


def post_url(post_id: str) -> str | None:
    """``{page}_{post}`` -> https://www.facebook.com/{page}/posts/{post} [3P]."""
    page, sep, post = post_id.partition("_")
    return f"https://www.facebook.com/{page}/posts/{post}" if sep else f"https://www.facebook.com/{post_id}"


def _read_chunk(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(size)
