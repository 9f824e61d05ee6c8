"""`herald dev` reports a child that dies and exits non-zero instead of hanging."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from tests.support import free_port


def test_a_dying_child_stops_the_stack_with_a_clear_message(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env.update({
        "HERALD_DATA_DIR": str(tmp_path / "data"),
        "HERALD_TEMPORAL_PORT": str(free_port()), "HERALD_TEMPORAL_UI_PORT": str(free_port()),
        "HERALD_SANDBOX_PORT": str(free_port()), "HERALD_API_PORT": str(free_port()),
        # An invalid setting that only the publisher uses: it exits at start-up.
        "HERALD_PUBLISH_POLLERS": "0",
    })
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "herald.cli", "dev"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert re.search(r"herald dev: publisher\d? exited with code 1", proc.stderr), proc.stderr
    assert time.monotonic() - started < 60
    # Everything it started is gone: no child still holds the Temporal port.
    out = subprocess.run(["pgrep", "-f", f"--port {env['HERALD_TEMPORAL_PORT']}"], capture_output=True, text=True)
    assert out.stdout.strip() == ""
