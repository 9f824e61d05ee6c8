"""Two rules that keep a lost or stalled publish from posting twice or failing for nothing:
a lost publish activity counts as unsent only when even a live holder would learn of the loss
before the post's time; a store outage before the call is a transient failure (backed off and
retried), never a final one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.publishing import PublishActivities
from herald import failures
from herald.contracts import PublishInput
from herald.crypto import CredentialCipher
from herald.settings import Settings
from store.db import Database
from tests.support import free_port
from workflows.post import LOST_CALL_GRACE, PUBLISH_HEARTBEAT, lost_call_provably_unsent

T = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def test_a_lost_call_is_unsent_only_outside_the_grace() -> None:
    # A live publisher learns of the loss on its next heartbeat: at most 0.8 x the timeout later.
    assert LOST_CALL_GRACE >= PUBLISH_HEARTBEAT * 0.8 + timedelta(seconds=2)
    assert lost_call_provably_unsent(T - LOST_CALL_GRACE - timedelta(seconds=1), T, LOST_CALL_GRACE)
    assert not lost_call_provably_unsent(T - LOST_CALL_GRACE + timedelta(seconds=1), T, LOST_CALL_GRACE)
    assert not lost_call_provably_unsent(T - timedelta(milliseconds=5), T, LOST_CALL_GRACE)  # the measured duplicate
    assert not lost_call_provably_unsent(T + timedelta(seconds=1), T, LOST_CALL_GRACE)
    # Histories recorded before the rule (workflow.patched false) keep the old boundary.
    assert lost_call_provably_unsent(T - timedelta(milliseconds=5), T, timedelta(0))


async def test_a_store_outage_before_the_call_is_transient(tmp_path) -> None:
    port = free_port()  # nothing listens here: the database is down
    settings = Settings(data_dir=tmp_path, database_url=f"postgresql://herald@127.0.0.1:{port}/herald",
                        secret_key="test-secret")
    db = Database(settings.db_url)
    async with httpx.AsyncClient() as http:
        activities = PublishActivities(settings, db, http, CredentialCipher(settings.secret_key))
        with pytest.raises(ApplicationError) as info:
            await ActivityEnvironment().run(activities.publish, PublishInput(
                post_id="post_x", publish_at=datetime.now(timezone.utc) + timedelta(seconds=30), attempt_no=1))
    err = info.value
    assert err.type == failures.PROVIDER_UNAVAILABLE and err.details[0] == "store_unavailable"
    assert err.message == "the store is unavailable; nothing was sent" and str(port) not in err.message
    db.dispose()
