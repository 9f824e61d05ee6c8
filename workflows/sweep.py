"""SweepWorkflow: one pass of the safety net (activities/sweeper.py). A Temporal Schedule
(`herald-sweep`, created by the workflows worker) runs it every HERALD_SWEEP_INTERVAL_SECONDS;
each pass's report is its result, visible in Temporal UI."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from herald.contracts import SweepReport


@workflow.defn(name="SweepWorkflow")
class SweepWorkflow:
    @workflow.run
    async def run(self) -> SweepReport:
        return await workflow.execute_activity(
            "sweep", result_type=SweepReport, start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
