"""The fast fault scenario in CI: the workflows worker SIGKILLed twice during a small burst and
restarted. Every post must be published exactly once and the store must agree with Temporal.
(The full scenarios, with publishers killed too, are `python -m chaos.worker_kill`; see
docs/reliability.md.)"""

from __future__ import annotations

import pytest

from chaos.worker_kill import run

pytestmark = pytest.mark.e2e


def test_killing_the_workflows_worker_loses_and_duplicates_nothing() -> None:
    verdict = run(n=40, kills=2, seed=3, window=15.0, victims=["worker"])
    assert verdict.disagreements == []
    assert (verdict.scheduled, verdict.published, verdict.duplicates, verdict.lost) == (40, 40, 0, 0), verdict
