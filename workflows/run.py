"""RunWorkflow (id ``run-<runId>``): one child PostWorkflow per post; ends when all are terminal.

Campaign replies and comments start with the others and wait inside their own workflow; when a
parent finishes, this workflow signals its dependants with the outcome (`parent_finished`).

Children are abandoned rather than terminated if the run itself is closed by an operator: a
post's workflow owns its own exactly-once bookkeeping and must never be cut off mid-publish.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError
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
        by_post = {post.post_id: handle for post, handle in zip(inp.posts, handles)}
        dependants: dict[str, list[str]] = {}
        for post in inp.posts:
            if post.parent_post_id:
                dependants.setdefault(post.parent_post_id, []).append(post.post_id)
        for post in inp.posts:
            if post.parent_post_id and post.parent_post_id not in by_post:
                # Its parent is not part of this run (canceled while a draft): it must not wait forever.
                await by_post[post.post_id].signal(PostWorkflow.parent_finished, PostOutcome(
                    post_id=post.parent_post_id, status="canceled", error_code="not_in_run"))
        outcomes: list[PostOutcome] = await asyncio.gather(*(
            self._follow(post, handle, [by_post[d] for d in dependants.get(post.post_id, ())])
            for post, handle in zip(inp.posts, handles)
        ))
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        status = "completed" if counts.get("failed", 0) == 0 else "partial_failed"
        await workflow.execute_activity(
            "record_run_state", RunStateRecord(run_id=inp.run_id, status=status), **PROJECTION
        )
        return RunOutcome(run_id=inp.run_id, status=status, counts=counts)

    async def _follow(self, post: PostWorkflowInput, handle, dependants: list) -> PostOutcome:  # noqa: ANN001
        """A post's outcome; replies and comments waiting on it hear about it the moment it is known
        (with its provider id when published, so a thread is built from the real parent)."""
        try:
            outcome: PostOutcome = await handle
        except ChildWorkflowError as err:  # terminated or failed by an operator: never leave replies waiting
            outcome = PostOutcome(post_id=post.post_id, status="failed", error_code="workflow_failed", error=str(err.cause or err))
        for child in dependants:
            try:
                await child.signal(PostWorkflow.parent_finished, outcome)
            except Exception:  # noqa: BLE001 - the reply's workflow already ended (canceled): nothing to tell
                workflow.logger.info("reply %s of %s had already finished", child.id, post.post_id)
        return outcome

    async def _start(self, post: PostWorkflowInput):  # noqa: ANN202
        return await workflow.start_child_workflow(
            PostWorkflow.run,
            post,
            id=post_workflow_id(post.post_id),
            parent_close_policy=ParentClosePolicy.ABANDON,
            search_attributes=post_search_attributes(post),
        )
