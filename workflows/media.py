"""Media workflows: one execution per asset and one per (asset, network profile).

    AssetWorkflow      id asset-<assetId>: [fetch the source URL] -> sniff, probe, previews
    RenditionWorkflow  id rendition-<assetId>-<profile>: make the asset fit one network, once

Both are started with USE_EXISTING by whoever needs them (the API after an upload, a prepare
task, a post's prepare_media activity), so five posts of one video to one network wait on one
transcode. Their activities run on the media task queue, where a long transcode cannot delay a
workflow task or a publish call. The activities write the asset rows themselves; an expected
media problem (a corrupt file, a blocked URL) is an outcome, not an exception.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from herald.contracts import AssetOutcome, AssetWorkflowInput, RenditionInput, RenditionOutcome

# Downloads and transcodes are long; heartbeats tell a dead media worker from a slow file.
MEDIA_ACTIVITY = dict(
    start_to_close_timeout=timedelta(minutes=30),
    heartbeat_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1),
                             maximum_attempts=5),
)


def asset_workflow_id(asset_id: str) -> str:
    return f"asset-{asset_id}"


def rendition_workflow_id(asset_id: str, profile_key: str) -> str:
    return f"rendition-{asset_id}-{profile_key}"


@workflow.defn(name="AssetWorkflow")
class AssetWorkflow:
    @workflow.run
    async def run(self, inp: AssetWorkflowInput) -> AssetOutcome:
        try:
            if inp.fetch_url:
                fetched = await workflow.execute_activity(
                    "fetch_asset_source", inp, result_type=AssetOutcome, task_queue=inp.media_task_queue,
                    **MEDIA_ACTIVITY)
                if fetched.status == "failed":
                    return fetched
            return await workflow.execute_activity(
                "process_asset", inp, result_type=AssetOutcome, task_queue=inp.media_task_queue, **MEDIA_ACTIVITY)
        except ActivityError as err:
            # Retries ran out (a source that kept answering 503, a worker that kept dying): the
            # asset must not stay `processing` forever, so it fails with the last cause.
            cause = err.cause
            message = str(cause.message if isinstance(cause, ApplicationError) else (cause or err))
            return await workflow.execute_activity(
                "mark_asset_failed",
                AssetOutcome(asset_id=inp.asset_id, status="failed", error_code="processing_failed", error=message),
                result_type=AssetOutcome, start_to_close_timeout=timedelta(seconds=60),
            )


@workflow.defn(name="RenditionWorkflow")
class RenditionWorkflow:
    @workflow.run
    async def run(self, inp: RenditionInput) -> RenditionOutcome:
        return await workflow.execute_activity(
            "make_rendition", inp, result_type=RenditionOutcome, task_queue=inp.media_task_queue, **MEDIA_ACTIVITY)
