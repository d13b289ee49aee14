"""Notification destination routes: create (409 when the name is taken unless ``overwrite``), list,
read, delete, send a test message, and send a message for a flow run (``runner`` scope: what a
state hook in a running flow calls). A send's outcome is the answer's ``sent`` and ``detail``;
credentials stay on the server and never appear in an answer."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request, status

from tideflow.schemas.notifications import (
    NotificationDestination,
    NotificationDestinationCreate,
    NotificationDestinationFilter,
    NotificationMessage,
    NotificationResult,
)
from tideflow.schemas.variables import VARIABLE_NAME_PATTERN
from tideflow.server.api.deps import DB, get_context
from tideflow.server.secret_box import SecretBox
from tideflow.server.storage import NotFound
from tideflow.server.storage import notification_destinations as storage
from tideflow.server.triggers.egress import parse_allow_list
from tideflow.server.triggers.notifier import Notifier, NotifyFailed, run_context
from tideflow.server.triggers.outbound import Egress
from tideflow.server.triggers.template_budget import TemplateLimits
from tideflow.server.triggers.templates import TemplateError

__all__ = ["router"]

router = APIRouter(prefix="/notification_destinations", tags=["notifications"])

Name = Path(pattern=VARIABLE_NAME_PATTERN, description="The destination's name.")
TEST_SUBJECT = "tideflow test notification"
TEST_BODY = "This is a test message from tideflow to the notification destination {name!r}."


def _missing(name: str) -> NotFound:
    return NotFound(f"no notification destination named {name!r}")


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A destination of that name exists and overwrite is false."}},
)
async def create_destination(
    body: NotificationDestinationCreate, db: DB
) -> NotificationDestination:
    """Create a destination (or replace one with ``overwrite``); its secrets are named, not sent."""
    async with db.write() as session:
        found, _ = await storage.put_destination(session, body)
    return found


@router.post("/filter")
async def read_destinations(
    db: DB, body: NotificationDestinationFilter | None = None
) -> list[NotificationDestination]:
    """Destinations sorted by name."""
    async with db.read() as session:
        return await storage.read_destinations(session, body or NotificationDestinationFilter())


@router.get("/name/{name}")
async def read_destination(db: DB, name: str = Name) -> NotificationDestination:
    async with db.read() as session:
        found = await storage.read_destination(session, name)
    if found is None:
        raise _missing(name)
    return found


@router.delete("/name/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_destination(db: DB, name: str = Name) -> None:
    async with db.write() as session:
        if not await storage.delete_destination(session, name):
            raise _missing(name)


def _notifier(request: Request, db: object) -> Notifier:
    settings = get_context(request).settings
    egress = Egress(parse_allow_list(settings.webhooks_allowed_networks))
    limits = TemplateLimits(
        timeout=settings.templates_render_timeout, max_output=settings.templates_max_output
    )
    return Notifier(get_context(request).database, egress, limits,
                    box=lambda: SecretBox.from_settings(settings))  # fmt: skip


async def _send(request: Request, db: DB, name: str, subject: str, body: str) -> NotificationResult:
    async with db.read() as session:
        if await storage.read_destination(session, name) is None:
            raise _missing(name)
    notifier = _notifier(request, db)
    try:
        detail = await notifier.send(name, subject, body)
    except NotifyFailed as exc:
        return NotificationResult(destination=name, sent=False, detail=str(exc))
    finally:
        await notifier.egress.close()
    return NotificationResult(destination=name, sent=True, detail=detail)


@router.post("/name/{name}/test")
async def test_destination(request: Request, db: DB, name: str = Name) -> NotificationResult:
    """Send a test message; ``sent`` false and ``detail`` say why it could not be delivered."""
    return await _send(request, db, name, TEST_SUBJECT, TEST_BODY.format(name=name))


@router.post("/name/{name}/send")
async def send_notification(
    request: Request, db: DB, body: NotificationMessage, name: str = Name
) -> NotificationResult:
    """Render ``subject`` and ``body`` (with the run's ``flow_run``, ``flow``, ``deployment`` and
    ``state``) and send them; a template problem is ``sent`` false with the reason."""
    notifier = _notifier(request, db)
    async with db.read() as session:
        context = await run_context(session, body.flow_run_id)
    try:
        subject = await notifier.render(body.subject, context, "subject")
        text = await notifier.render(body.body, context, "body")
    except TemplateError as exc:
        return NotificationResult(destination=name, sent=False, detail=str(exc))
    return await _send(request, db, name, subject, text)
