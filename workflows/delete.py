"""DeleteRemotePostWorkflow: POST /v1/posts/{id}/delete removes a published post from its network.

One activity (``delete_remote``) does the call and writes the projection, so the post is marked
``deleted`` only after the network confirmed it. Short-lived and visible in Temporal UI; its id
``delete-<postId>`` makes a second request while one runs join the first instead of calling twice.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from herald import failures
    from herald.contracts import DeleteRemoteInput, DeleteRemoteOutput


@workflow.defn(name="DeleteRemotePostWorkflow")
class DeleteRemotePostWorkflow:
    @workflow.run
    async def run(self, inp: DeleteRemoteInput) -> DeleteRemoteOutput:
        return await workflow.execute_activity(
            "delete_remote", inp, result_type=DeleteRemoteOutput,
            start_to_close_timeout=timedelta(seconds=60),
            # Deleting twice is harmless (the second finds nothing), so transient failures retry.
            retry_policy=RetryPolicy(maximum_attempts=4, maximum_interval=timedelta(seconds=10),
                                     non_retryable_error_types=[failures.AUTH_EXPIRED, failures.CONTENT_REJECTED,
                                                                "NotDeletable"]),
        )
