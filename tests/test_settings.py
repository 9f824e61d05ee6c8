"""The settings object refuses configurations that would be unsafe or cannot work, with a message
naming the variable to fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from herald.settings import DEV_SECRET_KEY, Settings

PROD = dict(env="production", secret_key="x" * 40, database_url="postgresql://h/db")


def test_production_starts_with_real_secrets() -> None:
    s = Settings(**PROD)
    assert s.env == "production" and s.provider_base("telegram") == "https://api.telegram.org"


@pytest.mark.parametrize("change, names", [
    ({"secret_key": DEV_SECRET_KEY}, "HERALD_SECRET_KEY"),
    ({"secret_key": "short"}, "HERALD_SECRET_KEY"),
    ({"database_url": None}, "DATABASE_URL"),
    ({"allow_private_networks": True}, "HERALD_ALLOW_PRIVATE_NETWORKS"),
])
def test_production_refuses_defaults_and_dev_only_settings(change: dict, names: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**{**PROD, **change})
    assert names in str(info.value)


def test_development_allows_private_networks_and_the_dev_secret() -> None:
    assert Settings(allow_private_networks=True).secret_key == DEV_SECRET_KEY


def test_s3_storage_needs_a_bucket() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(storage="s3")
    assert "HERALD_S3_BUCKET" in str(info.value)
    assert Settings(storage="s3", s3_bucket="media").s3_bucket == "media"
    with pytest.raises(ValidationError):
        Settings(storage="ftp")


def test_production_refuses_the_api_crash_fault_hook() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**PROD, fault_exit_after_run_write=True)
    assert "HERALD_FAULT_EXIT_AFTER_RUN_WRITE" in str(info.value)
    assert Settings(fault_exit_after_run_write=True).fault_exit_after_run_write  # development allows it
