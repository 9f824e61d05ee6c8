"""The safety-net sweep with a real store and Temporal (time-skipping server): runs the API never
started get started once, a never-attempted overdue post gets its workflow, and anything that may
already have reached the network is only reported."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.sweeper import SweepActivities
from herald import temporal as t
from herald.contracts import SweepReport
from store.models import Post, Run
from tests.workflow_harness import Harness
from workflows.sweep import SweepWorkflow


@pytest.fixture
async def harness(temporal_env, tmp_path, clean_sandbox):
    async with Harness(temporal_env, tmp_path, clean_sandbox, sweep_overdue_seconds=600) as h:
        yield h


def _edit_rows(harness: Harness, model, row_id: str, **fields) -> None:  # noqa: ANN001, ANN003
    with harness.db.session() as s:
        row = s.get(model, row_id)
        for k, v in fields.items():
            setattr(row, k, v)
        s.add(row)
        s.commit()


async def test_a_run_the_api_never_started_is_started_once(harness: Harness) -> None:
    account = await harness.connect("telegram")
    now = await harness.soon(0)
    run, inputs = harness.make_run(account, ["lost 1", "lost 2"], now + timedelta(minutes=5))
    # The API wrote the run and died before starting its workflow.
    # The sweep reads the wall clock; the test server's clock may have been skipped ahead.
    _edit_rows(harness, Run, run.id, mode="scheduled", workflow_started=False,
               created_at=datetime.now(timezone.utc) - timedelta(minutes=2))
    sweeper = SweepActivities(harness.settings, harness.db, harness.client)

    report = await sweeper.sweep()
    assert report.runs_started == [run.id]
    assert harness.run_row(run.id).workflow_started is True
    again = await sweeper.sweep()  # a second pass (or a concurrent one) starts nothing
    assert again.runs_started == []

    harness.started.append(harness.client.get_workflow_handle(t.run_workflow_id(run.id)))
    await harness.env.sleep(600)  # past the posts' time (handles not started by this client do not skip time)
    for inp in inputs:
        assert await harness.store_status(inp.post_id, "published", timeout=30) == "published"
    assert sorted(d["text"] for d in harness.deliveries()) == ["lost 1", "lost 2"]


async def test_overdue_posts_never_attempted_are_started_and_the_rest_reported(harness: Harness) -> None:
    account = await harness.connect("discord")
    long_ago = datetime.now(timezone.utc) - timedelta(hours=1)  # wall clock, as the sweep reads it
    _, (fresh, attempted) = harness.make_run(account, ["never started", "may have been sent"], long_ago)
    _edit_rows(harness, Post, attempted.post_id, status="publishing", attempts=1)
    sweeper = SweepActivities(harness.settings, harness.db, harness.client)

    report = await sweeper.sweep()
    assert report.posts_started == [fresh.post_id]
    assert report.overdue == [attempted.post_id]  # reported, never restarted: it may be published
    handle = harness.client.get_workflow_handle(t.post_workflow_id(fresh.post_id))
    harness.started.append(handle)
    assert (await handle.describe()).status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED)
    assert await harness.store_status(fresh.post_id, "published", timeout=30) == "published"
    assert [d["text"] for d in harness.deliveries()] == ["never started"]
    assert harness.post(attempted.post_id).status == "publishing"

    report = await sweeper.sweep()
    assert report.posts_started == [] and report.overdue == [attempted.post_id]


async def test_the_sweep_workflow_runs_the_activity(harness: Harness) -> None:
    report: SweepReport = await harness.client.execute_workflow(
        SweepWorkflow.run, id=f"sweep-{harness.settings.task_queue}", task_queue=harness.settings.task_queue)
    assert report.runs_started == [] and report.posts_started == [] and report.overdue == []


async def test_the_worker_keeps_one_sweep_schedule_up_to_date(temporal_local, tmp_path) -> None:
    from temporalio.service import RPCError

    from herald.settings import Settings
    from workers.main import SWEEP_SCHEDULE_ID, ensure_sweep_schedule

    client = temporal_local.client
    await ensure_sweep_schedule(client, Settings(data_dir=tmp_path, sweep_interval_seconds=60))
    await ensure_sweep_schedule(client, Settings(data_dir=tmp_path, sweep_interval_seconds=120))  # a restart with a new value
    desc = await client.get_schedule_handle(SWEEP_SCHEDULE_ID).describe()
    assert [i.every for i in desc.schedule.spec.intervals] == [timedelta(seconds=120)]
    assert desc.schedule.action.workflow == "SweepWorkflow"
    await ensure_sweep_schedule(client, Settings(data_dir=tmp_path, sweep_interval_seconds=0))
    with pytest.raises(RPCError):
        await client.get_schedule_handle(SWEEP_SCHEDULE_ID).describe()
