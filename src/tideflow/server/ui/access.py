"""The Access page (admins only): who can get in — UI users and API keys — with forms to create a
user or a key (its secret shown once), revoke a key and delete a user, all through the API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tideflow.schemas.api_keys import SCOPES
from tideflow.server.storage import api_keys as key_storage
from tideflow.server.storage import users as user_storage
from tideflow.server.ui.rendering import database, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_SHOWN = 500  # per list; the API pages the rest


@router.get("/access", response_class=HTMLResponse)
async def access_page(request: Request, revoked: bool = False) -> HTMLResponse:
    async with database(request).read() as session:
        users = await user_storage.read_users(session, limit=_SHOWN)
        keys = await key_storage.read_api_keys(session, include_revoked=revoked, limit=_SHOWN)
    return render(
        request,
        "access.html",
        title="Access",
        users=users,
        keys=keys,
        scopes=SCOPES,
        show_revoked=revoked,
        shown=_SHOWN,
    )
