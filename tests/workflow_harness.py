"""A real worker (our workflows and activities) on the time-skipping test server, a real SQLite
store, and the real sandbox over HTTP: only the networks are emulated."""

from __future__ import annotations

import concurrent.futures
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from temporalio.client import Client, WorkflowHandle

from herald import temporal as t
from herald.contracts import PostWorkflowInput, RunWorkflowInput
from herald.crypto import CredentialCipher
from herald.ids import new_id
from herald.settings import Settings
from providers import get_adapter_class
from store import keys as key_store
from store.db import Database
from store.migrate import upgrade
from store.models import Account, Job, Post, PostAttempt, Run
from tests.support import DISCORD_WEBHOOK, TELEGRAM_TOKEN
from workers.main import build_workers, provider_http_client
from workflows.post import PostWorkflow
from workflows.run import RunWorkflow


class Harness:
    def __init__(self, env, tmp: Path, sandbox_url: str, **overrides):  # noqa: ANN001, ANN003
        self.env = env
        self.client: Client = env.client
        self.sandbox_url = sandbox_url
        self.settings = Settings(
            data_dir=tmp, database_url=f"sqlite:///{tmp / 'herald.db'}", sandbox_url=sandbox_url,
            task_queue=f"test-{uuid.uuid4().hex[:8]}", publish_task_queue=f"test-calls-{uuid.uuid4().hex[:8]}",
            media_task_queue=f"test-media-{uuid.uuid4().hex[:8]}", publish_lead_seconds=1.0,
            allow_private_networks=True, secret_key="test-secret", provider_timeout_seconds=5.0,
            **overrides,
        )
        tmp.mkdir(parents=True, exist_ok=True)
        upgrade(self.settings.db_url)
        self.db = Database(self.settings.db_url)
        self.cipher = CredentialCipher(self.settings.secret_key)
        self.started: list[WorkflowHandle] = []
        with self.db.session() as s:
            self.workspace = key_store.ensure_workspace(s, "acme")
            s.commit()

    async def __aenter__(self) -> "Harness":
        self.http = provider_http_client(self.settings)
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=8)
        self.workers = build_workers(self.client, self.settings, self.db, self.http, self.executor, "all")
        for worker in self.workers:
            await worker.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:  # noqa: ANN002
        # A workflow left running would hold the shared time-skipping server's clock: its next
        # workflow task waits on this test's task queue, which nobody polls any more.
        for handle in self.started:
            try:
                await handle.terminate("test finished")
            except Exception:  # noqa: BLE001 - already closed
                pass
        for worker in reversed(self.workers):
            await worker.__aexit__(*exc)
        await self.http.aclose()
        self.executor.shutdown()
        self.db.dispose()

    async def connect(self, provider: str) -> Account:
        """Connect through the real adapter against the sandbox, as the API does."""
        adapter = get_adapter_class(provider)(self.http, self.settings.provider_base(provider))
        params = {"botToken": TELEGRAM_TOKEN, "chatId": "@heraldtest"} if provider == "telegram" else {"webhookUrl": DISCORD_WEBHOOK}
        identity = await adapter.connect(params)
        with self.db.session() as s:
            account = Account(
                id=new_id("acct"), workspace_id=self.workspace.id, provider=provider, handle=identity.handle,
                display_name=identity.display_name, external_id=identity.external_id, meta=identity.metadata,
                credentials_encrypted=self.cipher.encrypt(identity.credentials),
            )
            s.add(account)
            s.commit()
            return account

    def make_run(self, account: Account, texts: list[str], publish_at: datetime, media: list[dict] | None = None,
                 deadline_seconds: float = 600.0) -> tuple[Run, list[PostWorkflowInput]]:
        with self.db.session() as s:
            run = Run(id=new_id("run"), workspace_id=self.workspace.id, total_posts=len(texts))
            s.add(run)
            s.flush()
            inputs = []
            for i, text in enumerate(texts):
                post = Post(id=new_id("post"), workspace_id=self.workspace.id, run_id=run.id, position=i,
                            account_id=account.id, account_handle=account.handle, provider=account.provider,
                            description=text, publish_at=publish_at, media=media or [])
                s.add(post)
                s.flush()
                job = Job(id=new_id("job"), workspace_id=self.workspace.id, kind="publish", run_id=run.id,
                          post_id=post.id, provider=post.provider, account_handle=post.account_handle,
                          workflow_id=t.post_workflow_id(post.id))
                s.add(job)
                inputs.append(PostWorkflowInput(
                    post_id=post.id, workspace_id=self.workspace.id, run_id=run.id, provider=account.provider,
                    account_handle=account.handle, publish_at=publish_at,
                    lead_seconds=self.settings.publish_lead_seconds, deadline_seconds=deadline_seconds, job_id=job.id,
                    has_media=bool(media), publish_task_queue=self.settings.publish_task_queue,
                ))
            s.commit()
            return run, inputs

    async def start_post(self, inp: PostWorkflowInput) -> WorkflowHandle:
        handle = await self.client.start_workflow(
            PostWorkflow.run, inp, id=t.post_workflow_id(inp.post_id), task_queue=self.settings.task_queue,
            search_attributes=t.post_search_attributes(inp),
        )
        self.started.append(handle)
        return handle

    async def start_run(self, run: Run, inputs: list[PostWorkflowInput]) -> WorkflowHandle:
        handle = await self.client.start_workflow(
            RunWorkflow.run, RunWorkflowInput(run_id=run.id, workspace_id=run.workspace_id, posts=inputs),
            id=t.run_workflow_id(run.id), task_queue=self.settings.task_queue,
            search_attributes=t.run_search_attributes(run.workspace_id, run.id),
        )
        self.started += [handle] + [self.client.get_workflow_handle(t.post_workflow_id(i.post_id)) for i in inputs]
        return handle

    def post(self, post_id: str) -> Post:
        with self.db.session() as s:
            return s.get(Post, post_id)

    async def store_status(self, post_id: str, expected: str, timeout: float = 10.0) -> str:
        """The post's stored status once it equals `expected` (projection writes are asynchronous)."""
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (status := self.post(post_id).status) != expected and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return status

    def attempts(self, post_id: str) -> list[PostAttempt]:
        from sqlmodel import select

        with self.db.session() as s:
            return list(s.exec(select(PostAttempt).where(PostAttempt.post_id == post_id).order_by(PostAttempt.attempt_no)).all())

    def account(self, account_id: str) -> Account:
        with self.db.session() as s:
            return s.get(Account, account_id)

    def run_row(self, run_id: str) -> Run:
        with self.db.session() as s:
            return s.get(Run, run_id)

    def fault(self, provider: str, kind: str, **extra) -> None:  # noqa: ANN003
        httpx.post(f"{self.sandbox_url}/_sandbox/faults", json={"provider": provider, "kind": kind, **extra}).raise_for_status()

    def deliveries(self, provider: str | None = None) -> list[dict]:
        params = {"provider": provider} if provider else None
        return httpx.get(f"{self.sandbox_url}/_sandbox/deliveries", params=params).json()["deliveries"]


    async def soon(self, seconds: float = 2.0) -> datetime:
        """A time relative to the test server's clock, which earlier tests have skipped ahead."""
        return (await self.env.get_current_time()).astimezone(timezone.utc) + timedelta(seconds=seconds)
