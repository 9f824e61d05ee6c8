"""Scenario 4 in CI, small: the real API process exits between an apply's commit and its
workflow start (HERALD_FAULT_EXIT_AFTER_RUN_WRITE) on 2 of 4 applies and is restarted. One
unanswered apply is repeated by the client with its idempotencyKey; the other is left to the
sweep, which must start it 30 s after the write (its posts, due earlier, then publish late).
tests/test_sweeper.py covers the sweep itself; this covers the crash, the restart, the schedule
in a real worker and two sweeps racing. The full run is `python -m chaos.api_crash`
(docs/reliability.md)."""

from __future__ import annotations

import pytest

from chaos.api_crash import run

pytestmark = pytest.mark.e2e


def test_runs_the_api_wrote_but_never_started_are_started_once_by_the_sweep() -> None:
    out = run(n=20, window=5.0, seed=2, runs=4, crashes=2, start_in=15.0, final_sweeps=False)
    assert out.problems == []
    assert out.verdict.disagreements == []
    assert (out.verdict.scheduled, out.verdict.published, out.verdict.duplicates, out.verdict.lost) == (20, 20, 0, 0)
