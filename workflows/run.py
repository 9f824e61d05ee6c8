"""RunWorkflow (id ``run-<runId>``): one child PostWorkflow per post; ends when all are terminal.

Children are abandoned rather than terminated if the run itself is closed by an operator: a
post's workflow owns its own exactly-once bookkeeping and must never be cut off mid-publish.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from herald.contracts import PostOutcome, PostWorkflowInput, RunOutcome, RunStateRecord, RunWorkflowInput
    from herald.temporal import post_workflow_id, post_search_attributes
    from workflows.post import PROJECTION, PostWorkflow


@workflow.defn(name="RunWorkflow")
class RunWorkflow:
    @workflow.run
    async def run(self, inp: RunWorkflowInput) -> RunOutcome:
        await workflow.execute_activity(
            "record_run_state", RunStateRecord(run_id=inp.run_id, status="processing"), **PROJECTION
        )
        # All start commands go out in one workflow task: one round trip for the whole run.
        handles = await asyncio.gather(*(self._start(post) for post in inp.posts))
        outcomes: list[PostOutcome] = await asyncio.gather(*handles)
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        status = "completed" if counts.get("failed", 0) == 0 else "partial_failed"
        await workflow.execute_activity(
            "record_run_state", RunStateRecord(run_id=inp.run_id, status=status), **PROJECTION
        )
        return RunOutcome(run_id=inp.run_id, status=status, counts=counts)

    async def _start(self, post: PostWorkflowInput):  # noqa: ANN202
        return await workflow.start_child_workflow(
            PostWorkflow.run,
            post,
            id=post_workflow_id(post.post_id),
            parent_close_policy=ParentClosePolicy.ABANDON,
            search_attributes=post_search_attributes(post),
        )
