"""The README documents every setting, and names no setting that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from herald.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def _env_name(field: str) -> str:
    return "DATABASE_URL" if field == "database_url" else f"HERALD_{field.upper()}"


def test_every_setting_is_documented() -> None:
    missing = [_env_name(f) for f in Settings.model_fields if f"`{_env_name(f)}`" not in README]
    assert missing == []


def test_readme_names_only_real_settings() -> None:
    known = {f"HERALD_{f.upper()}" for f in Settings.model_fields}
    mentioned = set(re.findall(r"HERALD_[A-Z_]+[A-Z]", README))
    test_only = {name for name in mentioned if name.startswith("HERALD_TEST_")}  # the test suite's own knobs
    assert mentioned - known - test_only == set()


def test_readme_shows_the_two_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick_start and "make test" in quick_start
