"""PostWorkflow and RunWorkflow on the time-skipping server, with real activities, a real store
and the sandbox over HTTP. Hours of waiting take milliseconds here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from herald.contracts import CancelRequest, PostOutcome, RescheduleRequest, RunOutcome
from tests.workflow_harness import Harness
from workflows.post import PostWorkflow


@pytest.fixture
async def harness(temporal_env, tmp_path, clean_sandbox):
    async with Harness(temporal_env, tmp_path, clean_sandbox) as h:
        yield h


async def test_publishes_text_to_telegram_and_records_everything(harness: Harness) -> None:
    account = await harness.connect("telegram")
    _, (inp,) = harness.make_run(account, ["Hello from Herald"], await harness.soon())
    handle = await harness.start_post(inp)
    outcome: PostOutcome = await handle.result()

    assert outcome.status == "published"
    deliveries = harness.deliveries("telegram")
    assert [d["text"] for d in deliveries] == ["Hello from Herald"]
    post = harness.post(inp.post_id)
    assert post.status == "published"
    assert post.provider_post_id == deliveries[0]["id"] == outcome.provider_post_id
    assert post.provider_url and post.provider_url.startswith("https://t.me/heraldtest/")
    attempts = harness.attempts(inp.post_id)
    assert [a.outcome for a in attempts] == ["published"]


async def test_reschedule_moves_the_timer(harness: Harness) -> None:
    account = await harness.connect("discord")
    first = await harness.soon(3600)
    _, (inp,) = harness.make_run(account, ["moved"], first)
    handle = await harness.start_post(inp)
    later = first + timedelta(hours=2)
    state = await handle.execute_update(PostWorkflow.reschedule, RescheduleRequest(publish_at=later))
    assert state.publish_at == later
    assert harness.post(inp.post_id).publish_at == later

    outcome = await handle.result()
    assert outcome.status == "published"
    (attempt,) = harness.attempts(inp.post_id)
    # The publish attempt started in the lead window before the *new* time, not the old one.
    assert attempt.started_at >= later - timedelta(seconds=harness.settings.publish_lead_seconds + 1)


async def test_cancel_before_publish_sends_nothing(harness: Harness) -> None:
    account = await harness.connect("discord")
    _, (inp,) = harness.make_run(account, ["never"], await harness.soon(3600))
    handle = await harness.start_post(inp)
    outcome = await handle.execute_update(PostWorkflow.cancel, CancelRequest())
    assert outcome.status == "canceled"
    assert (await handle.result()).status == "canceled"
    assert harness.post(inp.post_id).status == "canceled"
    assert harness.deliveries() == []


async def test_cancel_after_publish_is_refused(harness: Harness) -> None:
    account = await harness.connect("discord")
    _, (inp,) = harness.make_run(account, ["done"], await harness.soon())
    handle = await harness.start_post(inp)
    # The workflow has completed: an update to a closed workflow is refused.
    await handle.result()
    with pytest.raises(Exception):
        await handle.execute_update(PostWorkflow.cancel, CancelRequest())
    assert harness.post(inp.post_id).status == "published"


async def test_rate_limit_waits_exactly_what_the_provider_asked(harness: Harness) -> None:
    account = await harness.connect("telegram")
    harness.fault("telegram", "rate_limit", retryAfter=45)
    _, (inp,) = harness.make_run(account, ["patient"], await harness.soon())
    outcome = await (await harness.start_post(inp)).result()

    assert outcome.status == "published"
    limited, published = harness.attempts(inp.post_id)
    assert limited.outcome == "rate_limited" and limited.retry_after_seconds == 45
    assert published.outcome == "published"
    waited = (published.started_at - limited.finished_at).total_seconds()
    assert 45 <= waited < 60
    assert len(harness.deliveries()) == 1


async def test_discord_rate_limit_uses_retry_after(harness: Harness) -> None:
    account = await harness.connect("discord")
    harness.fault("discord", "rate_limit", retryAfter=7.5)
    _, (inp,) = harness.make_run(account, ["discord patient"], await harness.soon())
    outcome = await (await harness.start_post(inp)).result()
    assert outcome.status == "published"
    limited, _ = harness.attempts(inp.post_id)
    assert limited.retry_after_seconds == pytest.approx(7.5)


async def test_drop_after_accept_never_duplicates(harness: Harness) -> None:
    """The sandbox stores the message and drops the connection: the outcome is unknown. Discord
    webhooks offer no lookup, so Herald must not retry: exactly one delivery, a clear failure."""
    account = await harness.connect("discord")
    harness.fault("discord", "drop_after_accept")
    _, (inp,) = harness.make_run(account, ["once only"], await harness.soon())
    outcome = await (await harness.start_post(inp)).result()

    assert len(harness.deliveries("discord")) == 1
    assert outcome.status == "failed" and outcome.error_code == "outcome_unknown"
    post = harness.post(inp.post_id)
    assert post.status == "failed" and post.error_code == "outcome_unknown"
    assert [a.outcome for a in harness.attempts(inp.post_id)] == ["unknown"]


async def test_server_errors_retry_then_publish(harness: Harness) -> None:
    account = await harness.connect("telegram")
    harness.fault("telegram", "server_error", count=3)
    _, (inp,) = harness.make_run(account, ["eventually"], await harness.soon())
    outcome = await (await harness.start_post(inp)).result()
    assert outcome.status == "published"
    assert [a.outcome for a in harness.attempts(inp.post_id)] == ["transient"] * 3 + ["published"]
    assert len(harness.deliveries()) == 1


async def test_gives_up_at_the_deadline(harness: Harness) -> None:
    account = await harness.connect("telegram")
    harness.fault("telegram", "server_error", count=1000)
    _, (inp,) = harness.make_run(account, ["hopeless"], await harness.soon(), deadline_seconds=120)
    outcome = await (await harness.start_post(inp)).result()
    assert outcome.status == "failed" and outcome.error_code == "deadline_exceeded"
    attempts = harness.attempts(inp.post_id)
    assert len(attempts) >= 3 and all(a.outcome == "transient" for a in attempts)
    assert harness.deliveries() == []


async def test_auth_error_fails_and_flags_the_account(harness: Harness) -> None:
    account = await harness.connect("discord")
    harness.fault("discord", "auth_error")
    _, (inp,) = harness.make_run(account, ["locked out"], await harness.soon())
    outcome = await (await harness.start_post(inp)).result()
    assert outcome.status == "failed" and outcome.error_code == "account_reauth_required"
    assert harness.account(account.id).status == "needs_reauth"


async def test_rejected_content_fails_at_once_with_the_provider_message(harness: Harness) -> None:
    account = await harness.connect("telegram")
    harness.fault("telegram", "reject_content")
    _, (inp,) = harness.make_run(account, ["bad"], await harness.soon())
    outcome = await (await harness.start_post(inp)).result()
    assert outcome.status == "failed" and outcome.error_code == "content_rejected"
    assert "Bad Request" in (outcome.error or "")
    assert len(harness.attempts(inp.post_id)) == 1


async def test_run_workflow_reports_partial_failure(harness: Harness) -> None:
    account = await harness.connect("telegram")
    run, inputs = harness.make_run(account, ["one", "two", "x" * 5000], await harness.soon())
    outcome: RunOutcome = await (await harness.start_run(run, inputs)).result()
    assert outcome.status == "partial_failed"
    assert outcome.counts == {"published": 2, "failed": 1}
    assert harness.run_row(run.id).status == "partial_failed"
    assert sorted(d["text"] for d in harness.deliveries()) == ["one", "two"]
    failed = harness.post(inputs[2].post_id)
    assert failed.error_code == "content_rejected"


async def test_disconnected_account_fails_clearly(harness: Harness) -> None:
    account = await harness.connect("discord")
    _, (inp,) = harness.make_run(account, ["orphan"], await harness.soon())
    with harness.db.session() as s:
        row = s.get(type(account), account.id)
        row.status = "disconnected"
        s.add(row)
        s.commit()
    outcome = await (await harness.start_post(inp)).result()
    assert outcome.status == "failed" and outcome.error_code == "account_disconnected"
    assert harness.deliveries() == []


async def test_update_validator_refuses_a_naive_time(live: Harness) -> None:
    account = await live.connect("discord")
    _, (inp,) = live.make_run(account, ["x"], await live.soon(3600))
    handle = await live.start_post(inp)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(PostWorkflow.reschedule, RescheduleRequest(publish_at=(await live.soon(7200)).replace(tzinfo=None)))
    await handle.execute_update(PostWorkflow.cancel, CancelRequest())
