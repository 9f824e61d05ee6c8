"""Recorded PostWorkflow histories must replay against the current code: a change that would
break running workflows fails here (guard it with workflow.patched and record new histories
with `python -m tests.record_histories`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.post import PostWorkflow
from workflows.reconcile import ReconcilePostWorkflow
from workflows.run import RunWorkflow

HISTORIES = sorted((Path(__file__).parent / "data" / "histories").glob("*.json"))


def test_histories_are_present() -> None:
    assert len(HISTORIES) >= 3


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=[RunWorkflow, PostWorkflow, ReconcilePostWorkflow], data_converter=pydantic_data_converter)
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


@workflow.defn(name="PostWorkflow")
class ChangedPostWorkflow:
    """PostWorkflow as a careless edit might leave it: a different first command."""

    @workflow.run
    async def run(self, inp: dict) -> None:
        await workflow.sleep(timedelta(seconds=1))


async def test_a_changed_workflow_is_caught() -> None:
    """The replay check itself can fail."""
    replayer = Replayer(workflows=[ChangedPostWorkflow], data_converter=pydantic_data_converter)
    history = WorkflowHistory.from_json("changed", HISTORIES[0].read_text())
    with pytest.raises(Exception, match="[Nn]ondeterminism|TMPRL1100"):
        await replayer.replay_workflow(history, raise_on_replay_failure=True)
