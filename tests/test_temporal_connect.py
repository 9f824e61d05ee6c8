"""How Herald's processes connect to Temporal."""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.service import GrpcCompression

from herald import temporal as t
from herald.settings import Settings


@pytest.mark.parametrize("setting, expected", [(None, GrpcCompression.NONE), ("gzip", GrpcCompression.GZIP),
                                               ("none", GrpcCompression.NONE)])
async def test_grpc_compression_follows_the_setting(monkeypatch, setting, expected):
    # temporalio gzips every call by default; on loopback that was ~10 % of a publisher's CPU in
    # a burst (docs/benchmarks.md), so Herald turns it off unless asked.
    if setting:
        monkeypatch.setenv("HERALD_TEMPORAL_GRPC_COMPRESSION", setting)
    settings = Settings()
    seen = {}

    async def fake_connect(target, **kwargs):
        seen.update(kwargs, target=target)
        return object()

    monkeypatch.setattr(Client, "connect", fake_connect)
    await t.connect(settings.temporal_target, settings.temporal_namespace, settings.temporal_grpc_compression)
    assert seen["grpc_compression"] == expected
    assert seen["namespace"] == settings.temporal_namespace


def test_an_unknown_compression_is_refused(monkeypatch):
    monkeypatch.setenv("HERALD_TEMPORAL_GRPC_COMPRESSION", "zstd")
    with pytest.raises(ValueError, match="temporal_grpc_compression"):
        Settings()
