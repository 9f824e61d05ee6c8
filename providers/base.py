"""What every provider adapter is: limits as data, a pure post check, and the calls.

Error tree (the only exceptions an adapter raises from a network call)::

    ProviderError                 base; carries a stable ``code``, a short ``message`` and the
    │                             HTTP status when there was one. Bodies are truncated first.
    ├── RateLimited               the provider asked us to wait ``retry_after`` seconds.
    ├── AuthExpired               credentials are invalid or revoked -> account_reauth_required.
    ├── ContentRejected           the provider refused this content; retrying cannot help.
    ├── ProviderUnavailable       the provider answered that it failed, or was unreachable before
    │                             the request was sent; nothing was published, retry with backoff.
    └── OutcomeUnknown            the request may have been acted on (timeout or a connection
                                  dropped after sending): reconcile before any retry.

``workflows/post.py`` maps these, through ``activities``, to Temporal ``ApplicationError`` types
(see ``herald.failures``).

Publishing is two-phase so the network call can happen on the exact second: ``prepare_publish``
does every side-effect-free step ahead of time (reading files, building the request) and returns
a ``PreparedPublish`` whose ``send`` performs the one irreversible call.
"""

from __future__ import annotations

import abc
import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, Field

MAX_ERROR_BODY = 300


def truncate(text: str | bytes | None, limit: int = MAX_ERROR_BODY) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "…"


# --- errors -----------------------------------------------------------------------------------


class ProviderError(Exception):
    code = "provider_error"

    def __init__(self, message: str, *, http_status: int | None = None, code: str | None = None):
        super().__init__(truncate(message))
        self.message = truncate(message)
        self.http_status = http_status
        if code:
            self.code = code


class RateLimited(ProviderError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, http_status: int | None = 429):
        super().__init__(message, http_status=http_status)
        self.retry_after = max(0.0, float(retry_after))


class AuthExpired(ProviderError):
    code = "account_reauth_required"


class ContentRejected(ProviderError):
    code = "content_rejected"


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"


class OutcomeUnknown(ProviderError):
    code = "outcome_unknown"


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """A network's publishing limits. Every number cites its source in ``source``."""

    max_text_chars: int
    max_media: int
    max_file_bytes: int
    source: str
    # Text limit when the post carries media (Telegram captions), if it differs.
    max_caption_chars: int | None = None
    # Smallest group when more than one media item is sent together (Telegram albums: 2).
    min_media_group: int = 1
    # Per-kind byte caps where they differ from max_file_bytes (e.g. Telegram photos 10 MB).
    max_bytes_by_kind: dict[str, int] = field(default_factory=dict)
    requires_text_or_media: bool = True


MediaKind = Literal["image", "video", "audio", "other"]


class MediaRef(BaseModel):
    """Media as the schedule describes it, before download (used by the pure check)."""

    url: str
    kind: MediaKind | None = None
    mime: str | None = None
    size: int | None = None
    filename: str | None = None
    alt_text: str | None = None


class MediaFile(BaseModel):
    """Media downloaded to local disk, ready to send."""

    path: str
    filename: str
    mime: str
    size: int
    sha256: str | None = None  # known when the original passes through unchanged
    kind: MediaKind
    alt_text: str | None = None
    # A public URL the network can fetch these exact bytes from (Herald's delivery endpoint,
    # /media/{asset}/{token}/{file}): Instagram and Threads only take media by URL.
    url: str | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


class PostDraft(BaseModel):
    """The provider-relevant part of one normalized post, for ``Adapter.check_post``."""

    provider: str
    text: str | None = None
    title: str | None = None
    media: list[MediaRef] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)
    is_reply: bool = False
    post_type: str | None = None  # providers/post_types.py (story, reel, ...): None = the default


class Problem(BaseModel):
    """One validation problem. ``field`` is relative to the post (``description``, ``assets[1]``)."""

    field: str
    message: str


class PublishRequest(BaseModel):
    post_id: str
    text: str | None = None
    title: str | None = None
    media: list[MediaFile] = Field(default_factory=list)
    reply_to: str | None = None  # provider id of the parent post/message, for replies and threads
    # For a reply or comment: "reply" (a post in the parent's thread: X, Threads) or "comment"
    # (a comment under the parent: Facebook, Instagram, LinkedIn). None for a top-level post.
    interaction: str | None = None
    post_type: str | None = None  # providers/post_types.py: feed | story | reel | ...
    settings: dict[str, Any] = Field(default_factory=dict)


class PublishResult(BaseModel):
    provider_post_id: str
    provider_url: str | None = None
    # The thread the post lives in, when replies must go there rather than to the post itself
    # (a Discord message inside a thread or forum post).
    provider_thread_id: str | None = None
    http_status: int | None = None


class AccountIdentity(BaseModel):
    """What a verified connection yields: the account row's fields and the secret credentials."""

    handle: str
    external_id: str
    display_name: str | None = None
    account_type: str | None = None
    credentials: dict[str, Any]  # encrypted at rest by the store; never logged or returned
    metadata: dict[str, Any] = Field(default_factory=dict)  # non-secret facts (guild id, username)


class ReconcileResult(BaseModel):
    """``found``: the provider has the post. ``absent``: it provably does not. ``unknowable``: the
    network offers no way to tell (Discord webhooks, Telegram bots) -- never retry blindly then."""

    state: Literal["found", "absent", "unknowable"]
    result: PublishResult | None = None
    detail: str = ""


class PreparedPublish(abc.ABC):
    """A publish call built ahead of time; ``send`` is the single irreversible step."""

    @abc.abstractmethod
    async def send(self) -> PublishResult: ...


# --- transport --------------------------------------------------------------------------------


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing (see GatedAsyncClient)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class GatedAsyncClient(httpx.AsyncClient):
    """An httpx client that never queues more requests in its pool than it has connections.

    httpcore re-scans every queued request against every connection on each state change, so
    1,000 sends released at one second on a 200-connection pool went quadratic (profiled: the
    first send of a 1,000-post burst left 60 s late). An asyncio semaphore in front keeps the
    pool's queue short; waiting requests wait here, in FIFO order, at no cost.

    It also keeps no cookies. The networks' APIs authenticate each call with its own token, and
    one client serves every account of a network: a cookie set in answer to one account's call
    must not ride along on another's. (httpx's cookie jar was also 5 % of a publisher's CPU in
    the burst benchmark.)
    """

    def __init__(self, *args: Any, max_in_flight: int = 8, **kwargs: Any):
        limits = kwargs.setdefault("limits", httpx.Limits(max_connections=max_in_flight,
                                                         max_keepalive_connections=max_in_flight))
        # httpcore writes a request's headers and body separately; with Nagle on, the body
        # waits for the ACK of the headers, which the peer delays (measured here: ~200 ms per
        # request, 6.3 s for 1,000 sends at 32 in flight). TCP_NODELAY sends both at once.
        kwargs.setdefault("transport", httpx.AsyncHTTPTransport(
            limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]))
        if kwargs.get("cookies"):
            raise ValueError("provider clients keep no cookies")
        self._no_cookies = _NoCookies()
        super().__init__(*args, **kwargs)
        self._gate = asyncio.Semaphore(min(max_in_flight, limits.max_connections or max_in_flight))

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, value: Any) -> None:
        # A jar set here would be silently ignored, so refuse it.
        if value:
            raise ValueError("provider clients keep no cookies")

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        async with self._gate:
            return await super().send(request, **kwargs)


async def send_classified(http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send one request and turn transport failures into the taxonomy.

    Failures before the request left us (connect errors, pool timeouts) are safe to retry;
    anything after it was written may have been acted on by the provider, so it is
    ``OutcomeUnknown``. The response body is read in full before returning.
    """
    try:
        return await http.send(request)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ProviderUnavailable(f"could not reach the provider: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:  # read/write timeouts, dropped connections, protocol errors
        raise OutcomeUnknown(
            f"connection failed after the request was sent ({type(exc).__name__}); "
            "the provider may have published it"
        ) from exc


# --- the adapter ------------------------------------------------------------------------------


class Adapter(abc.ABC):
    """One network. Subclasses set ``provider`` and ``limits`` and implement the calls.

    ``credentials`` are the decrypted dict produced by ``connect``; adapters never log them and
    never put them in an error message.
    """

    provider: ClassVar[str]
    limits: ClassVar[Limits]

    def __init__(self, http: httpx.AsyncClient, base_url: str):
        self.http = http
        self.base_url = base_url.rstrip("/")

    @classmethod
    @abc.abstractmethod
    def check_post(cls, draft: PostDraft) -> list[Problem]:
        """Pure: every way this post breaks the network's limits (no I/O)."""

    @abc.abstractmethod
    async def connect(self, params: dict[str, Any]) -> AccountIdentity:
        """Verify manual credentials (or an OAuth result) with the network; raise ProviderError."""

    @abc.abstractmethod
    async def check_credentials(self, credentials: dict[str, Any]) -> None:
        """Raise AuthExpired when the credentials no longer work (for health checks)."""

    @abc.abstractmethod
    async def prepare_publish(
        self, credentials: dict[str, Any], request: PublishRequest
    ) -> PreparedPublish:
        """Everything up to, but not including, the irreversible call."""

    async def publish(self, credentials: dict[str, Any], request: PublishRequest) -> PublishResult:
        prepared = await self.prepare_publish(credentials, request)
        return await prepared.send()

    @abc.abstractmethod
    async def reconcile(
        self,
        credentials: dict[str, Any],
        request: PublishRequest,
        provider_post_id: str | None,
    ) -> ReconcileResult:
        """Does the provider have this post? With ``provider_post_id`` look it up directly."""

    # False where the network offers no delete (Instagram): POST /v1/posts/{id}/delete says 409.
    can_delete: ClassVar[bool] = True
    # What can be published ("text", "image", "thread", ...) and the settings a post may carry
    # ({"id", "type", "label", ...} descriptors): data for /v1/accounts/{id}/capabilities|settings.
    shapes: ClassVar[list[str]] = []
    settings_fields: ClassVar[list[dict[str, Any]]] = []

    @abc.abstractmethod
    async def delete(self, credentials: dict[str, Any], provider_post_id: str) -> None:
        """Delete a published post on the network."""
