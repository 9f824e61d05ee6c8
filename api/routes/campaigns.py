"""POST /v1/campaigns/preview: the campaign graph and an account preflight, creating nothing."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from api import scheduling
from api.deps import CallerDep, SessionDep, SettingsDep
from api.errors import ApiError
from herald.crypto import CredentialCipher
from herald.schedule import ScheduleProblem
from providers import get_adapter_class
from providers.base import AuthExpired, ProviderError
from store.models import Account

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])

TOKEN_CHECK_SECONDS = 10.0


async def _check_token(request: Request, account: Account, cipher: CredentialCipher) -> dict[str, Any]:
    """Ask the network whether the account's credentials still work (read-only call)."""
    settings = request.app.state.settings
    adapter = get_adapter_class(account.provider)(request.app.state.http, settings.provider_base(account.provider))
    out: dict[str, Any] = {"account": account.handle, "accountId": account.id, "provider": account.provider,
                           "status": account.status}
    try:
        await asyncio.wait_for(adapter.check_credentials(cipher.decrypt(account.credentials_encrypted)), TOKEN_CHECK_SECONDS)
        out["token"] = "valid"
    except AuthExpired as exc:
        out |= {"token": "invalid", "reason": exc.message}
    except (ProviderError, asyncio.TimeoutError) as exc:
        # The network could not answer: not a reason to refuse the campaign, but worth showing.
        out |= {"token": "unverified", "reason": getattr(exc, "message", None) or "the network did not answer in time"}
    return out


@router.post("/preview")
async def preview_campaign(request: Request, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                           body: Annotated[Any, Body()] = None) -> dict:
    """Build the graph of a campaigns[] schedule and preflight its accounts (connected, each step
    publishable, credentials accepted by the network). A flat posts[] schedule is a 409."""
    envelope = body.get("schedule", body) if isinstance(body, dict) else body
    if isinstance(envelope, dict) and envelope.get("campaigns") is None and envelope.get("posts") is not None:
        raise ApiError(409, "not_a_campaign_schedule",
                       "campaign preview needs a campaigns[] schedule; check a flat posts[] schedule with /v1/posts/validate")
    schedule, accounts = scheduling.validate(session, caller.workspace.id, body, settings)
    cipher = CredentialCipher(settings.secret_key)
    distinct = {a.id: a for a in accounts.values()}
    preflight = await asyncio.gather(*(_check_token(request, a, cipher) for a in distinct.values()))
    problems = []
    for check in preflight:
        if check["token"] == "invalid":
            where = {p.path.split(".steps[")[0] for p in schedule.posts if accounts[p.index].id == check["accountId"]}
            problems += [ScheduleProblem(path=f"{w}.account",
                                         message=f"{check['account']}: the network rejected its credentials; reconnect it")
                         for w in sorted(where)]
    if problems:
        raise scheduling.problem_error(problems)
    return scheduling.validate_response(caller.workspace.id, schedule, accounts) | {"preflight": list(preflight)}
