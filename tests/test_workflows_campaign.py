"""Campaign execution, approvals and edits in the workflows, on the time-skipping server with real
activities, a real store and the sandbox over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from herald.contracts import CancelRequest, PostEdit, PostOutcome, PostWorkflowInput, ReviewRequest, RunOutcome
from store.models import Post
from tests.workflow_harness import Harness
from workflows.post import PostWorkflow


@pytest.fixture
async def harness(temporal_env, tmp_path, clean_sandbox):
    async with Harness(temporal_env, tmp_path, clean_sandbox) as h:
        yield h


def _needs_approval(inp: PostWorkflowInput, expires_after: float | None = None) -> PostWorkflowInput:
    return inp.model_copy(update={"requires_approval": True, "approval_expires_after_seconds": expires_after})


def _edit(harness: Harness, inp: PostWorkflowInput, **changes) -> PostEdit:  # noqa: ANN003
    post = harness.post(inp.post_id)
    fields = dict(post_id=post.id, description=post.description, name=post.name, media=post.media,
                  settings=post.settings, account_id=post.account_id, account_handle=post.account_handle,
                  provider=post.provider, publish_at=post.publish_at, timezone=post.timezone)
    fields.update(changes)
    return PostEdit(**fields)


async def test_thread_of_three_publishes_in_order_with_the_real_parent_ids(harness: Harness) -> None:
    account = await harness.connect("telegram")
    at = await harness.soon(60)
    run, inputs = harness.make_run(account, ["1/3", "2/3", "3/3"], at)
    # Same publish second for all three: the order comes from the graph alone.
    inputs = [inputs[0]] + [inp.model_copy(update={"parent_post_id": inputs[i].post_id}) for i, inp in enumerate(inputs[1:])]
    outcome: RunOutcome = await (await harness.start_run(run, inputs)).result()

    assert outcome.counts == {"published": 3}
    deliveries = harness.deliveries("telegram")
    assert [d["text"] for d in deliveries] == ["1/3", "2/3", "3/3"]
    assert deliveries[0]["replyToMessageId"] is None
    assert deliveries[1]["replyToMessageId"] == int(deliveries[0]["id"])
    assert deliveries[2]["replyToMessageId"] == int(deliveries[1]["id"])
    assert [harness.post(i.post_id).provider_post_id for i in inputs] == [d["id"] for d in deliveries]


async def test_failed_parent_fails_its_replies_and_never_posts_them_orphaned(harness: Harness) -> None:
    account = await harness.connect("telegram")
    run, inputs = harness.make_run(account, ["x" * 5000, "reply", "reply to reply"], await harness.soon())
    inputs = [inputs[0]] + [inp.model_copy(update={"parent_post_id": inputs[i].post_id}) for i, inp in enumerate(inputs[1:])]
    outcome: RunOutcome = await (await harness.start_run(run, inputs)).result()

    assert outcome.counts == {"failed": 3}
    assert harness.deliveries() == []
    assert harness.post(inputs[0].post_id).error_code == "content_rejected"
    child = harness.post(inputs[1].post_id)
    assert child.error_code == "parent_not_published"
    assert inputs[0].post_id in child.error and "failed" in child.error
    assert harness.post(inputs[2].post_id).error_code == "parent_not_published"
    assert harness.attempts(inputs[1].post_id) == []


async def test_pending_approval_waits_then_publishes_on_approval_and_records_the_reviewer(harness: Harness) -> None:
    account = await harness.connect("discord")
    at = await harness.soon(3600)
    _, (inp,) = harness.make_run(account, ["needs a yes"], at)
    handle = await harness.start_post(_needs_approval(inp))
    state = await handle.query(PostWorkflow.state)
    assert (state.phase, state.approval) == ("pending_approval", "pending")
    assert await harness.store_status(inp.post_id, "pending_approval") == "pending_approval"

    state = await handle.execute_update(PostWorkflow.approve, ReviewRequest(reviewer="alice", note="ship it"))
    assert (state.phase, state.approval) == ("scheduled", "approved")
    # Approving twice is harmless.
    await handle.execute_update(PostWorkflow.approve, ReviewRequest(reviewer="bob"))
    post = harness.post(inp.post_id)
    assert (post.status, post.review_state, post.reviewed_by, post.review_note) == ("scheduled", "approved", "alice", "ship it")
    assert post.reviewed_at is not None

    assert (await handle.result()).status == "published"
    (attempt,) = harness.attempts(inp.post_id)
    assert attempt.started_at >= at - timedelta(seconds=harness.settings.publish_lead_seconds + 1)
    assert [d["text"] for d in harness.deliveries()] == ["needs a yes"]
    # A finished workflow takes no updates at all (the API answers from the store first).
    with pytest.raises(RPCError):
        await handle.execute_update(PostWorkflow.approve, ReviewRequest(reviewer="alice"))


async def test_approved_after_its_time_publishes_at_once(harness: Harness) -> None:
    account = await harness.connect("discord")
    at = await harness.soon(60)
    _, (inp,) = harness.make_run(account, ["late yes"], at)
    handle = await harness.start_post(_needs_approval(inp))
    await harness.env.sleep(3600)  # an hour past its time, still waiting for a reviewer
    assert harness.deliveries() == []
    assert (await handle.query(PostWorkflow.state)).phase == "pending_approval"

    approved_at = await harness.soon(0)
    await handle.execute_update(PostWorkflow.approve, ReviewRequest(reviewer="alice"))
    assert (await handle.result()).status == "published"
    (attempt,) = harness.attempts(inp.post_id)
    assert approved_at <= attempt.started_at < approved_at + timedelta(seconds=30)


async def test_unapproved_post_expires_after_the_grace_period(harness: Harness) -> None:
    account = await harness.connect("discord")
    at = await harness.soon(600)
    _, (inp,) = harness.make_run(account, ["nobody looked"], at)
    outcome = await (await harness.start_post(_needs_approval(inp, expires_after=900))).result()
    assert (outcome.status, outcome.error_code) == ("failed", "approval_expired")
    post = harness.post(inp.post_id)
    assert (post.status, post.error_code) == ("failed", "approval_expired")
    assert await harness.env.get_current_time() >= at + timedelta(seconds=900)
    assert harness.deliveries() == []


async def test_reject_cancels_with_the_reviewers_note(harness: Harness) -> None:
    account = await harness.connect("discord")
    _, (inp,) = harness.make_run(account, ["typo"], await harness.soon(3600))
    handle = await harness.start_post(_needs_approval(inp))
    outcome: PostOutcome = await handle.execute_update(PostWorkflow.reject, ReviewRequest(reviewer="bob", note="typo in line 1"))
    assert (outcome.status, outcome.error_code) == ("canceled", "approval_rejected")
    post = harness.post(inp.post_id)
    assert (post.status, post.review_state, post.reviewed_by) == ("canceled", "rejected", "bob")
    assert post.error == "rejected by bob: typo in line 1"
    assert harness.deliveries() == []


async def test_approve_is_refused_when_no_approval_is_required(live: Harness) -> None:
    account = await live.connect("discord")
    _, (inp,) = live.make_run(account, ["plain"], await live.soon(3600))
    handle = await live.start_post(inp)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(PostWorkflow.approve, ReviewRequest(reviewer="alice"))
    assert "does not require approval" in str(err.value.cause)
    assert live.post(inp.post_id).review_state is None


async def test_nothing_can_be_approved_edited_or_rejected_once_canceled(live: Harness) -> None:
    account = await live.connect("discord")
    _, (inp,) = live.make_run(account, ["x"], await live.soon(3600))
    handle = await live.start_post(_needs_approval(inp))
    await handle.execute_update(PostWorkflow.cancel, CancelRequest())
    for update, arg in ((PostWorkflow.approve, ReviewRequest(reviewer="a")), (PostWorkflow.reject, ReviewRequest(reviewer="a")),
                        (PostWorkflow.edit, _edit(live, inp, description="y"))):
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update(update, arg)
    post = live.post(inp.post_id)
    assert (post.status, post.description, post.review_state) == ("canceled", "x", None)


async def test_edit_changes_text_and_time_before_publish(harness: Harness) -> None:
    account = await harness.connect("telegram")
    first = await harness.soon(3600)
    _, (inp,) = harness.make_run(account, ["draft text"], first)
    handle = await harness.start_post(inp)
    later = first + timedelta(hours=3)
    state = await handle.execute_update(PostWorkflow.edit, _edit(harness, inp, description="final text", publish_at=later))
    assert state.publish_at == later
    post = harness.post(inp.post_id)
    assert (post.description, post.publish_at, post.status) == ("final text", later, "scheduled")

    assert (await handle.result()).status == "published"
    assert [d["text"] for d in harness.deliveries()] == ["final text"]
    (attempt,) = harness.attempts(inp.post_id)
    assert attempt.started_at >= later - timedelta(seconds=harness.settings.publish_lead_seconds + 1)

    with pytest.raises(RPCError):  # finished: no updates at all (the API answers 409 from the store)
        await handle.execute_update(PostWorkflow.edit, _edit(harness, inp, description="too late"))
    assert harness.post(inp.post_id).description == "final text"


async def test_editing_an_approved_post_needs_approval_again(harness: Harness) -> None:
    account = await harness.connect("discord")
    _, (inp,) = harness.make_run(account, ["v1"], await harness.soon(3600))
    handle = await harness.start_post(_needs_approval(inp))
    await handle.execute_update(PostWorkflow.approve, ReviewRequest(reviewer="alice"))
    state = await handle.execute_update(PostWorkflow.edit, _edit(harness, inp, description="v2", content_changed=True))
    assert (state.phase, state.approval) == ("pending_approval", "pending")
    post = harness.post(inp.post_id)
    assert (post.status, post.review_state, post.reviewed_by) == ("pending_approval", "pending", None)
    await handle.execute_update(PostWorkflow.approve, ReviewRequest(reviewer="carol"))
    assert (await handle.result()).status == "published"
    assert [d["text"] for d in harness.deliveries()] == ["v2"]
    assert harness.post(inp.post_id).reviewed_by == "carol"


async def test_edit_is_refused_when_the_store_says_canceled(live: Harness) -> None:
    account = await live.connect("discord")
    _, (inp,) = live.make_run(account, ["x"], await live.soon(3600))
    handle = await live.start_post(inp)
    assert await live.store_status(inp.post_id, "scheduled") == "scheduled"
    with live.db.session() as s:  # canceled through the API while the workflow was unreachable
        row = s.get(Post, inp.post_id)
        row.status = "canceled"
        s.add(row)
        s.commit()
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(PostWorkflow.edit, _edit(live, inp, description="y"))
    assert "post is canceled" in str(err.value.cause)
    assert live.post(inp.post_id).description == "x"
