"""A publisher stopped (SIGTERM) while its publish call is in flight finishes the call and
reports the network's answer before it exits, so the post is published once and never retried.

Without that, the SDK's cancel at shutdown would report the activity as cancelled, which the
workflow reads as "nothing was sent": it would retry and post a second copy.
"""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from chaos import burst as b
from chaos.stack import chaos_stack
from tests.support import wait_for

pytestmark = pytest.mark.e2e

SLOW = 4.0  # seconds the sandbox takes to answer the send


def test_a_publisher_stopped_mid_call_reports_the_answer_and_posts_once() -> None:
    with chaos_stack(publishers=1) as stack, b.client(stack) as c:
        [handle] = b.connect_accounts(c, 1, "shutdown")
        httpx.post(f"{stack.sandbox}/_sandbox/faults",
                   json={"provider": "telegram", "kind": "slow", "delaySeconds": SLOW}).raise_for_status()
        due = (datetime.now(timezone.utc) + timedelta(seconds=8)).replace(microsecond=0)
        r = c.post("/v1/posts/apply", json={"posts": [
            {"account": handle, "text": "sent while the publisher stops", "publish_at": due.isoformat()}]})
        assert r.status_code == 201, r.text
        post_id = r.json()["posts"][0]["id"]

        # The call reaches the sandbox at the due time (the fault is taken) and is answered SLOW
        # seconds later.
        wait_for(lambda: not httpx.get(f"{stack.sandbox}/_sandbox/faults").json()["faults"],
                 timeout=30, interval=0.05, what="the send to reach the sandbox")
        assert not httpx.get(f"{stack.sandbox}/_sandbox/deliveries").json()["deliveries"]
        started = time.monotonic()
        stack.stop("publisher1", signal.SIGTERM, timeout=30)
        stopped_after = time.monotonic() - started
        # It waited for the network's answer before exiting (the sandbox was still holding it).
        assert stopped_after > SLOW / 2, f"the publisher exited {stopped_after:.1f} s after SIGTERM"

        # A publisher comes back; a retry would now send a second copy.
        stack.start("publisher1")
        post = wait_for(lambda: (p := c.get(f"/v1/posts/{post_id}").json()["post"])["status"]
                        in ("published", "failed") and p, timeout=60, what="the post to be final")
        time.sleep(3)  # room for a wrong retry to arrive
        deliveries = httpx.get(f"{stack.sandbox}/_sandbox/deliveries").json()["deliveries"]
        attempts = c.get(f"/v1/posts/{post_id}/attempts").json()["attempts"]

    assert post["status"] == "published", post
    assert len(deliveries) == 1, deliveries
    assert [a["outcome"] for a in attempts] == ["published"], attempts
