"""Records the PostWorkflow histories that tests/test_replay.py replays.

Run it only when a workflow change is *meant* to be incompatible (and then guard old histories
with workflow.patched): `python -m tests.record_histories`. It uses the same harness as the
workflow tests: time-skipping server, real activities, the sandbox over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from herald.temporal import ensure_search_attributes
from sandbox.app import create_app
from tests.support import serve_in_thread
from tests.workflow_harness import Harness

OUT = Path(__file__).parent / "data" / "histories"

SCENARIOS = {
    # name: (provider, faults)
    "post_published_after_rate_limit": ("telegram", [{"kind": "rate_limit", "retryAfter": 30}]),
    "post_outcome_unknown": ("discord", [{"kind": "drop_after_accept"}]),
    "post_retried_after_server_error": ("telegram", [{"kind": "server_error", "count": 2}]),
}


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await ensure_search_attributes(env.client, "default")
    with serve_in_thread(create_app()) as sandbox, tempfile.TemporaryDirectory() as tmp:
        for name, (provider, faults) in SCENARIOS.items():
            httpx.delete(f"{sandbox}/_sandbox").raise_for_status()
            async with Harness(env, Path(tmp) / name, sandbox) as h:
                account = await h.connect(provider)
                for fault in faults:
                    h.fault(provider, **fault)
                _, (inp,) = h.make_run(account, [f"recorded {name}"], await h.soon())
                handle = await h.start_post(inp)
                await handle.result()
                history = await handle.fetch_history()
                (OUT / f"{name}.json").write_text(json.dumps(json.loads(history.to_json()), indent=1))
                print("recorded", name)
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
