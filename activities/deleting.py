"""Deleting a published post from its network (DeleteRemotePostWorkflow's one activity).

The projection is written here, after the network confirmed, so a post is never shown
``deleted`` while it is still up. A network that answers "not found" already lost the post:
that is recorded as ``already_gone``, not as an error.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from herald import failures
from herald.account_tokens import TokenKeeper
from herald.contracts import DeleteRemoteInput, DeleteRemoteOutput
from herald.settings import Settings
from providers.base import AuthExpired, ContentRejected, ProviderError, RateLimited
from store.db import Database
from store.models import Account, Post

log = logging.getLogger("herald.delete")


class DeleteActivities:
    def __init__(self, settings: Settings, db: Database, http: httpx.AsyncClient):
        self.settings = settings
        self.db = db
        self.tokens = TokenKeeper(settings, db, http)

    def _load(self, inp: DeleteRemoteInput) -> tuple[Post, Account]:
        with self.db.session() as s:
            post = s.get(Post, inp.post_id)
            if post is None or post.workspace_id != inp.workspace_id:
                raise ApplicationError("the post no longer exists", type="NotDeletable", non_retryable=True)
            account = s.get(Account, post.account_id)
            if account is None or account.status == "disconnected":
                raise ApplicationError("the post's account is disconnected; reconnect it to delete",
                                       type="NotDeletable", non_retryable=True)
            s.expunge_all()
            return post, account

    def _mark_deleted(self, post_id: str) -> None:
        with self.db.write_session() as s:
            post = s.get(Post, post_id)
            if post is None:
                return
            now = datetime.now(timezone.utc)
            post.status, post.deleted_at, post.updated_at = "deleted", now, now
            s.add(post)
            s.commit()

    @activity.defn(name="delete_remote")
    async def delete_remote(self, inp: DeleteRemoteInput) -> DeleteRemoteOutput:
        post, account = await asyncio.to_thread(self._load, inp)
        if post.status == "deleted":
            return DeleteRemoteOutput(state="already_gone", detail="already deleted")
        if not post.provider_post_id:
            raise ApplicationError("the post has no id on the network", type="NotDeletable", non_retryable=True)
        adapter = self.tokens.adapter(post.provider)
        try:
            credentials = await self.tokens.credentials(account)
            try:
                await adapter.delete(credentials, post.provider_post_id)
            except AuthExpired:
                refreshed = await self.tokens.refresh(account.id, stale=account.credentials_encrypted, after_401=True)
                await adapter.delete(refreshed.credentials, post.provider_post_id)
            state, detail = "deleted", ""
        except (AuthExpired, ContentRejected) as exc:
            if exc.http_status == 404:
                state, detail = "already_gone", exc.message
            else:
                raise failures.to_application_error(exc) from None
        except RateLimited as exc:
            raise ApplicationError(exc.message, exc.code, type=failures.RATE_LIMITED,
                                   next_retry_delay=timedelta(seconds=max(1.0, exc.retry_after))) from None
        except ProviderError as exc:
            if exc.http_status == 404:
                state, detail = "already_gone", exc.message
            else:
                # Unavailable or unknown: deleting again is harmless, so Temporal retries.
                raise ApplicationError(exc.message, exc.code, type=failures.PROVIDER_UNAVAILABLE) from None
        await asyncio.to_thread(self._mark_deleted, post.id)
        log.info("post %s deleted from %s (%s)", post.id, post.provider, state)
        return DeleteRemoteOutput(state=state, detail=detail)
