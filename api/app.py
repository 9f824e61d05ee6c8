"""The FastAPI application: thin by design. Routes authenticate, validate, write the projection,
start or update workflows, and return; they never wait on a workflow's result except for the
short reconcile workflow."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from api.body_limit import BodyLimitMiddleware
from api.errors import install_error_handlers
from api.openapi_responses import install as describe_responses
from api.rate_limits import RateLimits
from api.routes import (assets, campaigns, connections, dashboard, health, keys, media, meta_webhooks, oauth, posts,
                        runs, schedules, workspace)
from herald.account_tokens import TokenKeeper
from herald.settings import Settings, get_settings
from providers.base import GatedAsyncClient
from store import keys as key_store
from store.db import Database

log = logging.getLogger("herald.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        app.state.settings = settings
        app.state.db = Database(settings.db_url)
        app.state.temporal = None
        app.state.temporal_lock = asyncio.Lock()
        app.state.rate_limits = RateLimits(settings)
        app.state.http = GatedAsyncClient(timeout=httpx.Timeout(settings.provider_timeout_seconds, connect=10.0),
                                          max_in_flight=settings.provider_max_connections)
        app.state.token_keeper = TokenKeeper(settings, app.state.db, app.state.http)
        if settings.bootstrap_key:
            with app.state.db.session() as s:
                key_store.ensure_bootstrap_key(s, settings.bootstrap_key)
                s.commit()
            log.info("bootstrap key ensured for workspace 'default'")
        try:
            yield
        finally:
            await app.state.http.aclose()
            app.state.db.dispose()

    app = FastAPI(
        title="Herald API",
        version="0.1.0",
        description="Durable social-media publishing on Temporal. SocialClaw-shaped API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    for module in (health, keys, workspace, connections, schedules, campaigns, runs, posts, dashboard, assets, media,
                   meta_webhooks, oauth):
        app.include_router(module.router)
    describe_responses(app)
    return app
