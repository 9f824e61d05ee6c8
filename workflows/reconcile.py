"""ReconcilePostWorkflow: POST /v1/posts/{id}/reconcile asks the provider about one post.

Short-lived and visible in Temporal UI like everything else that touches a network. When the
provider has a post that the projection lost track of (an unknown outcome), the post becomes
published; nothing is ever published from here.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from herald.contracts import PostStateRecord, ReconcileInput, ReconcileOutput, ReconcileWorkflowInput
    from workflows.post import PROJECTION


@workflow.defn(name="ReconcilePostWorkflow")
class ReconcilePostWorkflow:
    @workflow.run
    async def run(self, inp: ReconcileWorkflowInput) -> ReconcileOutput:
        res: ReconcileOutput = await workflow.execute_activity(
            "reconcile",
            ReconcileInput(post_id=inp.post_id),
            result_type=ReconcileOutput,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        if res.state == "found" and res.provider_post_id:
            await workflow.execute_activity(
                "record_post_state",
                PostStateRecord(post_id=inp.post_id, status="published",
                                provider_post_id=res.provider_post_id, provider_url=res.provider_url),
                **PROJECTION,
            )
        return res
