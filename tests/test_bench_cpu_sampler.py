"""bench/burst.py --cpu: the per-process CPU figures docs/benchmarks.md quotes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("burst_bench", Path(__file__).parent.parent / "bench" / "burst.py")
burst = importlib.util.module_from_spec(spec)
spec.loader.exec_module(burst)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


def test_stack_processes_are_labelled_by_role():
    # A process whose command line looks like `python -m herald.cli worker --role publisher`.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                             "herald.cli", "worker", "--role", "publisher"])
    try:
        time.sleep(0.2)
        assert burst.process_label(str(proc.pid)) == "worker:publisher"
        assert burst.cpu_times()[str(proc.pid)][0] == "worker:publisher"
    finally:
        proc.kill()
        proc.wait()
    assert burst.process_label(str(burst.os.getpid())) == "bench"


def test_a_busy_window_reads_near_one_core(capsys):
    sampler = burst.CpuSampler(datetime.now(timezone.utc) + timedelta(seconds=2.0))
    sampler.start()
    time.sleep(2.05)  # idle until the due time
    spin_until = time.monotonic() + 1.0
    while time.monotonic() < spin_until:  # one core busy for a second
        pass
    time.sleep(0.3)
    sampler.stop.set()
    sampler.join()
    sampler.report([(-1.5, -0.5), (0.2, 0.8)])
    lines = capsys.readouterr().out.splitlines()
    # Other Herald processes on the machine (a test stack) get columns too: find "bench".
    column = lines[1].split()[1:].index("bench")
    rows = [line.split("s", 1)[1].split("%") for line in lines[2:]]
    idle, busy = (float(row[column]) for row in rows)
    assert idle < 30 and busy > 60, lines
