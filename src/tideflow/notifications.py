"""Notifications from Python: send a message to a notification destination, and state hooks that do.

``notify_on_failure("ops-slack")`` is a hook for ``@flow(on_failure=[...])`` (or a task's); ``notify``
is the same for any hook list (``on_completion``, ``on_crashed``, ``on_cancellation``...). Subject and
body are templates the server renders (sandboxed, bounded) with ``flow_run``, ``flow``,
``deployment`` and ``state`` of the run; the destination's credentials are secrets the server reads,
never this process. A send that fails raises ``NotificationFailed`` with the reason: in a hook, that
is logged to the run's logs and changes nothing else. ``send_notification`` / ``asend_notification``
send directly. Destinations are made with ``tideflow notification create`` (or the API).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tideflow.client import AsyncClient
from tideflow.engine.clients import sync_client
from tideflow.engine.context import current_run
from tideflow.exceptions import TideflowError
from tideflow.schemas.notifications import NotificationMessage, NotificationResult
from tideflow.settings import get_settings

__all__ = [
    "DEFAULT_BODY",
    "DEFAULT_SUBJECT",
    "NotificationFailed",
    "asend_notification",
    "notify",
    "notify_on_failure",
    "send_notification",
]

DEFAULT_SUBJECT = "Flow run {{ flow_run.name }} of {{ flow.name }} is {{ flow_run.state_name }}"
DEFAULT_BODY = (
    "Flow run {{ flow_run.name }} ({{ flow_run.id }}) of flow {{ flow.name }}"
    "{% if deployment %} (deployment {{ deployment.name }}){% endif %} entered "
    "{{ flow_run.state_name }} at {{ flow_run.state.timestamp }}."
    "{% if flow_run.state.message %}\n\n{{ flow_run.state.message }}{% endif %}"
)


class NotificationFailed(TideflowError):
    """A notification was not delivered; the message is the server's reason (credentials masked)."""


def _message(subject: str, body: str, flow_run_id: UUID | None) -> NotificationMessage:
    if flow_run_id is None:
        context = current_run()
        flow_run_id = context.flow_run.id if context is not None else None
    return NotificationMessage(subject=subject, body=body, flow_run_id=flow_run_id)


def _checked(result: NotificationResult) -> NotificationResult:
    if not result.sent:
        raise NotificationFailed(result.detail)
    return result


def send_notification(
    destination: str,
    subject: str = DEFAULT_SUBJECT,
    body: str = DEFAULT_BODY,
    *,
    flow_run_id: UUID | None = None,
) -> NotificationResult:
    """Send to ``destination`` (templates rendered with the run ``flow_run_id``, by default the
    current one); NotificationFailed with the reason when it was not delivered."""
    message = _message(subject, body, flow_run_id)
    return _checked(sync_client(get_settings()).send_notification(destination, message))


async def asend_notification(
    destination: str,
    subject: str = DEFAULT_SUBJECT,
    body: str = DEFAULT_BODY,
    *,
    flow_run_id: UUID | None = None,
) -> NotificationResult:
    """The async pair of ``send_notification``."""
    message = _message(subject, body, flow_run_id)
    async with AsyncClient(settings=get_settings()) as client:
        return _checked(await client.send_notification(destination, message))


class _Hook:
    """A state hook (``hook(flow_or_task, run, state)``) that sends one notification."""

    def __init__(self, destination: str, subject: str, body: str) -> None:
        self.destination = destination
        self.subject = subject
        self.body = body
        self.__name__ = f"notify({destination!r})"

    def __call__(self, owner: Any, run: Any, state: Any) -> None:
        # A task run's hook reports on the flow run it belongs to.
        run_id = getattr(run, "flow_run_id", None) or getattr(run, "id", None)
        send_notification(self.destination, self.subject, self.body, flow_run_id=run_id)

    def __repr__(self) -> str:
        return f"notify({self.destination!r})"


def notify(destination: str, subject: str = DEFAULT_SUBJECT, body: str = DEFAULT_BODY) -> _Hook:
    """A state hook sending ``subject`` and ``body`` (templates) to ``destination``."""
    return _Hook(destination, subject, body)


def notify_on_failure(
    destination: str, subject: str = DEFAULT_SUBJECT, body: str = DEFAULT_BODY
) -> _Hook:
    """A hook for ``on_failure=[...]`` (or ``on_crashed``) that tells ``destination`` about it."""
    return _Hook(destination, subject, body)
