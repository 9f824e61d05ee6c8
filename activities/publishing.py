"""Side effects of publishing: hold until the second and publish, reconcile. (Media is prepared
before, by activities/media.py; the publish call only reads the prepared files.)

Activities are methods of one class that receives its dependencies (a shared httpx client, the
settings, the database and the credential cipher), as in Temporal's hello_activity_method sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TypeVar

import httpx
from temporalio import activity
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import select
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from herald.contracts import (
    PublishInput,
    PublishOutput,
    ReconcileInput,
    ReconcileOutput,
)
from herald.account_tokens import TokenKeeper
from herald.assets import rendition_url, storage_for
from herald.crypto import CredentialCipher
from herald import failures
from herald.failures import not_publishable, to_application_error
from herald.settings import Settings
from providers import get_adapter_class
from providers.base import (Adapter, AuthExpired, MediaFile, PreparedPublish, ProviderError, PublishRequest,
                            PublishResult)
from storage import ObjectMissing, StorageUnavailable
from store.db import Database
from store.models import Account, Asset, Post

HEARTBEAT_EVERY = 2.0  # well inside the publish activity's 10 s heartbeat timeout
# How long a finished publish may wait for this process's other sends before it reports (see
# PublishActivities._yield_to_sends).
REPORT_YIELD_MAX = 1.0
log = logging.getLogger("herald.publish")
T = TypeVar("T")


class PublishActivities:
    def __init__(self, settings: Settings, db: Database, http: httpx.AsyncClient, cipher: CredentialCipher,
                 client_factory: Callable[[], httpx.AsyncClient] | None = None):
        self.settings = settings
        self.db = db
        self.http = http
        self.cipher = cipher
        self.tokens = TokenKeeper(settings, db, http)
        # One connection pool and in-flight cap per network (workers pass a factory): a network
        # that is slow or rate limiting fills only its own pool, never another network's.
        self._client_factory = client_factory
        self._clients: dict[str, httpx.AsyncClient] = {}
        # Sends past their hold and not yet answered, in this process.
        self._sending = 0
        self._no_sends = asyncio.Event()
        self._no_sends.set()

    def _client(self, provider: str) -> httpx.AsyncClient:
        if self._client_factory is None:
            return self.http
        client = self._clients.get(provider)
        if client is None:
            client = self._clients[provider] = self._client_factory()
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    # --- helpers ------------------------------------------------------------------------------

    def _load(self, post_id: str, mark_publishing: bool = False) -> tuple[Post, Account]:
        with (self.db.write_session() if mark_publishing else self.db.session()) as s:
            post = s.get(Post, post_id)
            if post is None:
                raise not_publishable("post_not_found", f"post {post_id} no longer exists")
            account = s.get(Account, post.account_id)
            if account is None or account.status == "disconnected":
                raise not_publishable("account_disconnected", f"account {post.account_handle} is disconnected")
            if account.status == "needs_reauth":
                raise not_publishable("account_reauth_required",
                                      f"account {post.account_handle} must be reconnected"
                                      + (f": {account.status_reason}" if account.status_reason else ""))
            if mark_publishing and post.status in ("scheduled", "retry_pending"):
                post.status = "publishing"
                post.updated_at = datetime.now(timezone.utc)
                s.add(post)
                s.commit()
            # Delivery tokens of the post's assets: networks that fetch media by URL get one.
            asset_ids = [m["assetId"] for m in post.media if m.get("assetId")]
            tokens = {a.id: a.delivery_token for a in s.exec(select(Asset).where(Asset.id.in_(asset_ids))).all()} \
                if asset_ids else {}
            s.expunge_all()
            post.media = [dict(m, deliveryToken=tokens.get(m.get("assetId"))) for m in post.media]
            return post, account

    def _adapter(self, provider: str) -> Adapter:
        return get_adapter_class(provider)(self._client(provider), self.settings.provider_base(provider))

    def _media_files(self, post: Post) -> list[MediaFile]:
        """The prepared rendition of every media item, as local files (downloaded from object
        storage into the worker's cache when storage is remote)."""
        files = []
        storage = storage_for(self.settings)
        for index, item in enumerate(post.media):
            r = item.get("rendition")
            if not r:
                raise not_publishable("media_unavailable", f"assets[{index}]: media was not prepared")
            path = storage.local_path(r["objectKey"])
            if path is None:
                path = (self.settings.data_dir / "cache" / r["objectKey"]).resolve()
                if not path.exists():
                    storage.download_to(r["objectKey"], path)
            elif not path.exists():
                raise not_publishable("media_unavailable", f"assets[{index}]: the prepared file is gone")
            token = item.get("deliveryToken")
            url = rendition_url(self.settings, item["assetId"], token, r["id"], r["filename"]) \
                if token and r.get("id") else None
            files.append(MediaFile(path=str(path), filename=r["filename"], mime=r["mime"], size=r["size"],
                                   sha256=r.get("sha256"), kind=r["kind"], alt_text=item.get("altText"), url=url,
                                   width=r.get("width"), height=r.get("height"),
                                   duration_seconds=r.get("duration")))
        return files

    async def _send(self, prepared: PreparedPublish) -> PublishResult:
        self._sending += 1
        self._no_sends.clear()
        try:
            return await finish_despite_cancel(prepared.send())
        finally:
            self._sending -= 1
            if not self._sending:
                self._no_sends.set()

    async def _yield_to_sends(self) -> None:
        """Let the sends still waiting in this process go before this result is reported.

        Reporting a result (serialising it, the bridge call into the Temporal core, the gRPC
        call) costs about as much CPU as a send; in a burst, when hundreds of posts are due at the
        same second, reporting each one as it finishes delays the sends still queued behind it
        (profiled: a quarter of a publisher's CPU in the burst window). So a finished publish
        waits until this process has no send in flight, for at most REPORT_YIELD_MAX. The post is
        already out; the heartbeat task keeps the activity alive meanwhile, and if the process
        died in this second the workflow would reconcile before any retry, as for any lost call.
        With nothing else sending (the usual case) there is no wait at all. A cancel (the
        publisher shutting down) ends the wait: the result is reported at once, never dropped.
        """
        if self._sending:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(REPORT_YIELD_MAX):
                    await self._no_sends.wait()

    def _parent_provider_id(self, post: Post) -> str | None:
        """The network's id of the post this one replies to or comments on (for reconcile)."""
        if not post.parent_post_id:
            return None
        with self.db.session() as s:
            parent = s.get(Post, post.parent_post_id)
            if parent is None:
                return None
            return parent.provider_thread_id or parent.provider_post_id

    # --- activities ---------------------------------------------------------------------------

    @activity.defn(name="publish")
    async def publish(self, inp: PublishInput) -> PublishOutput:
        # Heartbeats come from a task of their own for the activity's whole life -- while it
        # loads, holds, and waits on the provider -- so the short heartbeat timeout notices a
        # dead publisher quickly and never mistakes a slow provider for one.
        beat = asyncio.create_task(_keep_alive())
        try:
            return await self._publish(inp)
        finally:
            beat.cancel()

    async def _publish(self, inp: PublishInput) -> PublishOutput:
        early = (inp.publish_at - datetime.now(timezone.utc)).total_seconds()
        if early < 1.0 and inp.attempt_no == 1:
            # Started too late to hold: the lead window was consumed by queueing upstream.
            log.warning("publish of %s started %.2f s before its time (attempt %d)", inp.post_id, early, inp.attempt_no)
        try:
            post, account = await asyncio.to_thread(self._load, inp.post_id, True)
            if post.status == "canceled":
                raise not_publishable("canceled", "the post was canceled")
            media = await asyncio.to_thread(self._media_files, post) if post.media else []
        except ObjectMissing:
            raise not_publishable("media_unavailable", "a prepared media file is gone from storage") from None
        except (OperationalError, InterfaceError, StorageUnavailable) as exc:
            # The store or the object storage is down (a restart): nothing was sent, so the workflow backs off
            # and tries again. The driver's message names hosts and ports: it stays in the log.
            log.warning("publish of %s: store unavailable (%s)", inp.post_id, exc)
            raise ApplicationError("the store is unavailable; nothing was sent", "store_unavailable", None, None,
                                   type=failures.PROVIDER_UNAVAILABLE, non_retryable=True,
                                   category=ApplicationErrorCategory.BENIGN) from None
        request = PublishRequest(
            post_id=post.id,
            text=post.description,
            title=post.name,
            media=media,
            settings=post.settings,
            reply_to=inp.reply_to,
            interaction=post.interaction_type if post.interaction_type != "post" else None,
            post_type=post.post_type,
        )
        adapter = self._adapter(post.provider)
        try:
            credentials = await self.tokens.credentials(account)
            try:
                prepared = await adapter.prepare_publish(credentials, request)
                await hold_until(inp.publish_at, inp.max_hold_seconds)
                sent_at = datetime.now(timezone.utc)
                result = await self._send(prepared)
            except AuthExpired:
                # A 401 means the network refused the call: nothing was published. Refresh once
                # (or learn that the account needs re-auth) and try again -- still not before the
                # post's time, when the 401 came from the preparation ahead of it.
                refreshed = await self.tokens.refresh(account.id, stale=account.credentials_encrypted, after_401=True)
                prepared = await adapter.prepare_publish(refreshed.credentials, request)
                await hold_until(inp.publish_at, inp.max_hold_seconds)
                sent_at = datetime.now(timezone.utc)
                result = await self._send(prepared)
        except ProviderError as exc:
            raise to_application_error(exc) from None
        await self._yield_to_sends()
        return PublishOutput(
            provider_post_id=result.provider_post_id, provider_url=result.provider_url,
            provider_thread_id=result.provider_thread_id,
            http_status=result.http_status, sent_at=sent_at,
        )

    @activity.defn(name="reconcile")
    async def reconcile(self, inp: ReconcileInput) -> ReconcileOutput:
        post, account = await asyncio.to_thread(self._load, inp.post_id)
        request = PublishRequest(post_id=post.id, text=post.description, title=post.name, settings=post.settings,
                                 interaction=post.interaction_type if post.interaction_type != "post" else None,
                                 post_type=post.post_type, reply_to=await asyncio.to_thread(self._parent_provider_id, post))
        try:
            credentials = await self.tokens.credentials(account)
            res = await self._adapter(post.provider).reconcile(credentials, request, post.provider_post_id)
        except ProviderError as exc:
            # A failed lookup is not an answer: let Temporal retry the read.
            raise ApplicationError(f"reconcile lookup failed: {exc.message}", type="ReconcileFailed") from None
        return ReconcileOutput(
            state=res.state,
            provider_post_id=res.result.provider_post_id if res.result else None,
            provider_url=res.result.provider_url if res.result else None,
            provider_thread_id=res.result.provider_thread_id if res.result else None,
            detail=res.detail,
        )


async def finish_despite_cancel(call: Awaitable[T]) -> T:
    """Await a provider call to its end even if the activity is cancelled meanwhile.

    A publisher that shuts down (SIGTERM) cancels its running activities. Before the send that
    is right: nothing went out, and the workflow tries again. Once the request is on its way,
    a cancel would report "cancelled", which the workflow reads as "nothing happened" and
    retries: a second post. So the call runs to its answer (it has its own timeout), and the
    activity reports what the network said.
    """
    task = asyncio.ensure_future(call)
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            log.warning("publisher asked to stop while a publish call is in flight; finishing the call first")
    return task.result()


async def _keep_alive() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY)


async def hold_until(instant: datetime, max_hold_seconds: float) -> None:
    """Sleep until `instant`, then return as close to it as the loop allows.

    Workflow timers fire "no earlier than" and queue behind other work in a burst, so the
    workflow wakes `lead` seconds early and this activity holds for the exact second.
    """
    target = min(instant.timestamp(), time.time() + max_hold_seconds)
    while True:
        remaining = target - time.time()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, HEARTBEAT_EVERY))
