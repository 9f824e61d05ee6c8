"""In a burst, a publisher sends every due post before it reports any result to Temporal.

Reporting costs about as much CPU as a send (docs/benchmarks.md), so a finished publish waits,
for a bounded time, until its process has no send in flight (activities/publishing.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from activities import publishing
from activities.publishing import PublishActivities
from herald.crypto import CredentialCipher
from herald.settings import Settings
from providers.base import PreparedPublish, PublishResult
from store.db import Database


class Prepared(PreparedPublish):
    """A send that is answered when the test says so."""

    def __init__(self, name: str, log: list[str]):
        self.name, self.log = name, log
        self.answer = asyncio.Event()

    async def send(self) -> PublishResult:
        self.log.append(f"send {self.name}")
        await self.answer.wait()
        return PublishResult(provider_post_id=self.name)


async def finish(acts: PublishActivities, prepared: Prepared, log: list[str]) -> None:
    """What the publish activity does from the send to its report."""
    result = await acts._send(prepared)
    await acts._yield_to_sends()
    log.append(f"report {result.provider_post_id}")


@pytest.fixture
async def acts(tmp_path):
    settings = Settings(data_dir=tmp_path, secret_key="test-secret")
    db = Database(settings.db_url)
    async with httpx.AsyncClient() as http:
        yield PublishActivities(settings, db, http, CredentialCipher(settings.secret_key))
    db.dispose()


async def test_results_are_reported_after_the_other_sends(acts):
    log = []
    a, b, c = (Prepared(n, log) for n in "abc")
    tasks = [asyncio.create_task(finish(acts, p, log)) for p in (a, b, c)]
    await asyncio.sleep(0.01)
    a.answer.set()
    await asyncio.sleep(0.05)
    assert "report a" not in log  # b and c are still in flight
    b.answer.set()
    await asyncio.sleep(0.05)
    assert "report a" not in log and "report b" not in log
    c.answer.set()
    await asyncio.gather(*tasks)
    assert log[:3] == ["send a", "send b", "send c"]
    assert sorted(log[3:]) == ["report a", "report b", "report c"]


async def test_a_lone_publish_reports_at_once(acts):
    log = []
    p = Prepared("solo", log)
    p.answer.set()
    started = time.monotonic()
    await finish(acts, p, log)
    assert log == ["send solo", "report solo"] and time.monotonic() - started < 0.05


async def test_the_wait_is_bounded_when_another_send_hangs(acts, monkeypatch):
    monkeypatch.setattr(publishing, "REPORT_YIELD_MAX", 0.2)
    log = []
    slow, fast = Prepared("slow", log), Prepared("fast", log)
    hanging = asyncio.create_task(acts._send(slow))
    await asyncio.sleep(0.01)
    fast.answer.set()
    started = time.monotonic()
    await finish(acts, fast, log)
    waited = time.monotonic() - started
    assert log[-1] == "report fast" and 0.18 < waited < 1.0
    slow.answer.set()
    await hanging
    # A failed send leaves the count right: the next lone publish does not wait.
    class Broken(PreparedPublish):
        async def send(self) -> PublishResult:
            raise RuntimeError("network down")

    try:
        await acts._send(Broken())
    except RuntimeError:
        pass
    assert acts._sending == 0
    solo = Prepared("after", log)
    solo.answer.set()
    started = time.monotonic()
    await finish(acts, solo, log)
    assert time.monotonic() - started < 0.05


async def test_a_cancel_during_the_send_waits_for_the_answer(acts):
    # A publisher shutting down cancels its activities. Once the request is out, a "cancelled"
    # report would read as "nothing sent" and the workflow would post again.
    log = []
    p = Prepared("inflight", log)
    task = asyncio.create_task(finish(acts, p, log))
    await asyncio.sleep(0.01)
    assert log == ["send inflight"]
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # still waiting for the network's answer
    p.answer.set()
    await task  # returns normally: the answer is reported, not a cancel
    assert log == ["send inflight", "report inflight"] and acts._sending == 0


async def test_a_cancel_during_the_report_wait_reports_at_once(acts):
    log = []
    other, mine = Prepared("other", log), Prepared("mine", log)
    hanging = asyncio.create_task(acts._send(other))
    mine.answer.set()
    task = asyncio.create_task(finish(acts, mine, log))
    await asyncio.sleep(0.05)
    assert "report mine" not in log  # waiting for "other"
    task.cancel()
    await task
    assert log[-1] == "report mine"
    other.answer.set()
    await hanging


async def test_a_cancel_before_the_send_still_cancels():
    # Holding until the second is cancellable: nothing has gone out yet.
    task = asyncio.create_task(publishing.hold_until(datetime.now(timezone.utc) + timedelta(seconds=30), 60))
    await asyncio.sleep(0.01)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert task.cancelled()
