"""The dashboard routes of the spec that map onto the same logic as the public ones."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from api.deps import CallerDep, SessionDep, SettingsDep
from api.routes.posts import edit_post

router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])


@router.patch("/posts/{post_id}")
async def dashboard_edit_post(post_id: str, request: Request, caller: CallerDep, session: SessionDep,
                              settings: SettingsDep, body: Annotated[Any, Body()] = None) -> dict:
    """Same as PATCH /v1/posts/{postId}."""
    return await edit_post(post_id, request, caller, session, settings, body)
