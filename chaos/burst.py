"""Schedule a burst through the API, let it settle, and count every post against the sandbox and
Temporal: the verdict every fault scenario reports."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from chaos.stack import ChaosStack
from herald.contracts import PostOutcome

TELEGRAM_TOKEN = "123456:" + "C" * 35
DONE = ("published", "failed", "canceled")


@dataclass
class Burst:
    post_ids: list[str]
    text_of: dict[str, str]
    first_at: datetime
    last_at: datetime


@dataclass
class Verdict:
    scheduled: int
    published: int = 0
    failed: int = 0
    reasons: Counter = field(default_factory=Counter)
    duplicates: int = 0
    lost: int = 0
    disagreements: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and self.lost == 0 and not self.disagreements

    def row(self, scenario: str) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())) or "-"
        return (f"| {scenario} | {self.scheduled} | {self.published} | {self.failed} ({reasons}) | "
                f"{self.duplicates} | {self.lost} | {'yes' if not self.disagreements else len(self.disagreements)} |")


def client(stack: ChaosStack) -> httpx.Client:
    return httpx.Client(base_url=stack.api, headers={"Authorization": f"Bearer {stack.key}"}, timeout=120)


def schedule(stack: ChaosStack, n: int, accounts: int = 10, start_in: float = 40.0, window: float = 30.0,
             tag: str = "chaos") -> Burst:
    """n posts over `accounts` (half Telegram chats, half Discord webhooks), due evenly across
    `window` seconds starting `start_in` seconds from now."""
    handles = []
    with client(stack) as c:
        for i in range(accounts):
            body = ({"provider": "telegram", "botToken": TELEGRAM_TOKEN, "chatId": f"@{tag}{i}"} if i % 2 == 0 else
                    {"provider": "discord", "webhookUrl": f"https://discord.com/api/webhooks/{700000 + i}/{tag}-token-{i}"})
            r = c.post("/v1/connections/start", json=body)
            r.raise_for_status()
            handles.append(r.json()["connection"]["account"]["handle"])
        first = datetime.now(timezone.utc) + timedelta(seconds=start_in)
        step = window / max(1, n - 1)
        ids, text_of = [], {}
        for start in range(0, n, 100):
            posts = [{"account": handles[i % accounts], "text": f"{tag} post {i}",
                      "publish_at": (first + timedelta(seconds=i * step)).isoformat()} for i in range(start, min(n, start + 100))]
            r = c.post("/v1/posts/apply", json={"idempotencyKey": f"{tag}-{first.isoformat()}-{start}", "posts": posts})
            if r.status_code != 201:
                raise SystemExit(f"apply failed: {r.status_code} {r.text[:300]}")
            for post in r.json()["posts"]:
                ids.append(post["id"])
                text_of[post["id"]] = post["description"]
    return Burst(ids, text_of, first, first + timedelta(seconds=window))


def settle(stack: ChaosStack, burst: Burst, timeout: float = 600) -> dict[str, dict]:
    """Wait until every post is final in the store (or the timeout); returns the posts by id."""
    deadline = time.monotonic() + timeout
    with client(stack) as c:
        while True:
            posts = {}
            for offset in range(0, len(burst.post_ids) + 500, 500):
                page = c.get("/v1/posts", params={"limit": 500, "offset": offset}).json()["posts"]
                posts |= {p["id"]: p for p in page if p["id"] in burst.text_of}
                if len(page) < 500:
                    break
            if all(posts.get(pid, {}).get("status") in DONE for pid in burst.post_ids) or time.monotonic() > deadline:
                return posts
            time.sleep(2)


async def _workflow_statuses(stack: ChaosStack, post_ids: list[str]) -> dict[str, str]:
    temporal = await Client.connect(stack.settings.temporal_target, data_converter=pydantic_data_converter)

    async def one(pid: str) -> tuple[str, str]:
        try:
            outcome = await asyncio.wait_for(
                temporal.get_workflow_handle(f"post-{pid}", result_type=PostOutcome).result(), timeout=30)
            return pid, outcome.status
        except Exception as exc:  # noqa: BLE001 - reported as a disagreement
            return pid, f"no result ({type(exc).__name__})"

    results = []
    for start in range(0, len(post_ids), 50):
        results += await asyncio.gather(*(one(pid) for pid in post_ids[start:start + 50]))
    return dict(results)


def verdict(stack: ChaosStack, burst: Burst, posts: dict[str, dict]) -> Verdict:
    deliveries = httpx.get(f"{stack.sandbox}/_sandbox/deliveries", timeout=60).json()["deliveries"]
    sent = Counter(d["text"] for d in deliveries)
    flows = asyncio.run(_workflow_statuses(stack, burst.post_ids))
    v = Verdict(scheduled=len(burst.post_ids))
    for pid in burst.post_ids:
        post = posts.get(pid, {})
        status, copies = post.get("status"), sent[burst.text_of[pid]]
        v.duplicates += max(0, copies - 1)
        if status == "published":
            v.published += 1
            if copies == 0:
                v.lost += 1  # the store says published, the network never got it
        elif status in ("failed", "canceled"):
            v.failed += 1
            v.reasons[post.get("errorCode") or status] += 1
            # A failed post with a copy out there is only acceptable when its failure says so.
            if copies and post.get("errorCode") != "outcome_unknown":
                v.disagreements.append(f"{pid}: {status} ({post.get('errorCode')}) but delivered {copies}x")
        else:
            v.lost += 1  # never reached a final status
        if status in DONE and flows[pid] != status:
            v.disagreements.append(f"{pid}: store {status}, workflow {flows[pid]}")
    return v
