"""Rate limits per API key and route group, with the `limits` library (moving windows).

Groups and their defaults come from SocialHub's published limits; each is a setting:

    auth        POST /v1/keys/validate                               10/minute
    publishing  POST /v1/posts/apply, /v1/runs/{id}/publish,
                POST /v1/posts/{id}/retry                            60/hour
    media       media preparation (when it lands)                    30/hour
    reads       GET /v1/posts..., /v1/runs/..., /v1/jobs             100/hour

Counters live in memory, or in Redis when HERALD_REDIS_URL is set, so every API replica shares
them. A request over its limit gets 429 `rate_limited` with `Retry-After` (whole seconds until
the window lets one more in) and changes nothing: the check runs before the route does any work.
If Redis cannot be reached the request is let through and the failure logged: a limiter outage
must not become a publishing outage.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Annotated, Callable

from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from api.deps import Caller, get_caller
from api.errors import ApiError
from herald.settings import Settings

log = logging.getLogger("herald.api.limits")

GROUPS = ("auth", "publishing", "media", "reads")


class RateLimits:
    def __init__(self, settings: Settings):
        self.enabled = settings.rate_limits_enabled
        url = settings.redis_url
        if url:
            # redis-py's asyncio client (the `redis` package) rather than limits' default coredis.
            scheme_url = "async+" + url if not url.startswith("async+") else url
            self.storage = storage_from_string(scheme_url, implementation="redispy")
        else:
            self.storage = storage_from_string("async+memory://")
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.items: dict[str, RateLimitItem] = {
            "auth": parse(settings.rate_limit_auth),
            "publishing": parse(settings.rate_limit_publishing),
            "media": parse(settings.rate_limit_media),
            "reads": parse(settings.rate_limit_reads),
        }

    async def check(self, group: str, key_id: str) -> None:
        if not self.enabled:
            return
        item = self.items[group]
        try:
            allowed = await self.limiter.hit(item, group, key_id)
            if allowed:
                return
            stats = await self.limiter.get_window_stats(item, group, key_id)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            log.error("rate limiter unavailable (%s); letting the request through", type(exc).__name__)
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise ApiError(429, "rate_limited",
                       f"rate limit for {group} requests reached ({item}); retry in {retry_after} s",
                       {"group": group, "limit": str(item), "retryAfterSeconds": retry_after},
                       headers={"Retry-After": str(retry_after)})


def limited(group: str) -> Callable:
    """A route dependency: authenticate, then count the request against the key's `group`."""
    assert group in GROUPS

    async def dependency(request: Request, caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        await request.app.state.rate_limits.check(group, caller.key.id)
        return caller

    return Depends(dependency)
