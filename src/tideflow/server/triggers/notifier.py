"""Sending a message to a notification destination: Slack, Microsoft Teams, a generic webhook (all
over ``outbound.Egress``, so the SSRF policy and address pinning apply) and email over SMTP (the
SMTP host is judged and pinned the same way; smtplib runs in a worker thread).

Credentials are read from secrets at send time and decrypted here only; every reason this module
gives has each credential value replaced by the mask, and a secret-held URL is never named.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.notifications import (
    EmailDestination,
    NotificationDestination,
    SlackDestination,
    TeamsDestination,
    WebhookDestination,
    secret_names,
)
from tideflow.schemas.secrets import MASK
from tideflow.server.secret_box import SecretBox, SecretKeyError
from tideflow.server.storage import Database
from tideflow.server.storage.deployments import read_deployment
from tideflow.server.storage.flow_runs import read_flow_run
from tideflow.server.storage.flows import read_flow
from tideflow.server.storage.notification_destinations import read_destination
from tideflow.server.storage.secrets import read_secret_token
from tideflow.server.triggers.outbound import Egress, EgressRefused
from tideflow.server.triggers.template_budget import TemplateLimits
from tideflow.server.triggers.templates import TemplateError, arender_value
from tideflow.settings import get_settings

__all__ = ["Notifier", "NotifyFailed", "run_context"]

MAX_SUBJECT = 998  # an email header line's limit; other destinations get the same bound


class NotifyFailed(Exception):
    """A notification was not sent; the message is the reason (credentials masked)."""


def _scrub(text: str, values: list[str]) -> str:
    for value in sorted(values, key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    return text


async def run_context(session: AsyncSession, flow_run_id: Any) -> dict[str, Any]:
    """``flow_run``, ``flow``, ``deployment`` and ``state`` of a run, as template values."""
    context: dict[str, Any] = {"flow_run": None, "flow": None, "deployment": None, "state": None}
    run = await read_flow_run(session, flow_run_id) if flow_run_id else None
    if run is None:
        return context
    context["flow_run"] = run.model_dump(mode="json")
    context["state"] = context["flow_run"].get("state")
    flow = await read_flow(session, run.flow_id)
    context["flow"] = flow.model_dump(mode="json") if flow else None
    if run.deployment_id:
        deployment = await read_deployment(session, run.deployment_id)
        context["deployment"] = deployment.model_dump(mode="json") if deployment else None
    return context


class Notifier:
    """Sends to stored destinations of one database; ``box`` builds the secrets box on first use."""

    def __init__(
        self,
        database: Database,
        egress: Egress,
        template_limits: TemplateLimits,
        box: Callable[[], SecretBox] | None = None,
    ) -> None:
        self.database = database
        self.egress = egress
        self.template_limits = template_limits
        self._make_box = box or (lambda: SecretBox.from_settings(get_settings()))
        self._box: SecretBox | None = None

    def _secret_box(self) -> SecretBox:
        if self._box is None:
            self._box = self._make_box()
        return self._box

    async def render(self, template: str, context: dict[str, Any], where: str) -> str:
        """A subject or body template rendered in the sandbox, within the limits."""
        return str(await arender_value(template, context, where=where, limits=self.template_limits))

    async def send(self, name: str, subject: str, body: str) -> str:
        """Send to the destination named ``name``; what happened, or NotifyFailed with why."""
        async with self.database.read() as session:
            destination = await read_destination(session, name)
            if destination is None:
                raise NotifyFailed(f"no notification destination named {name!r}")
            tokens = {
                n: await read_secret_token(session, n) for n in secret_names(destination.config)
            }
        secrets: dict[str, str] = {}
        for secret, token in tokens.items():
            if token is None:
                raise NotifyFailed(
                    f"notification destination {name!r} needs the secret {secret!r}, which does "
                    "not exist"
                )
            try:
                secrets[secret] = self._secret_box().decrypt(token, secret)
            except SecretKeyError as exc:
                raise NotifyFailed(f"notification destination {name!r}: {exc}") from None
        subject = " ".join(subject.split())[:MAX_SUBJECT]  # one line: no header injection
        try:
            return await self._dispatch(destination, secrets, subject, body)
        except NotifyFailed as exc:
            raise NotifyFailed(_scrub(str(exc), list(secrets.values()))) from None
        except Exception as exc:  # a sender bug must still be a recorded, masked reason
            reason = f"{type(exc).__name__}: {exc}"
            raise NotifyFailed(
                f"notification destination {name!r} failed: {_scrub(reason, list(secrets.values()))}"
            ) from None

    async def _dispatch(
        self, dest: NotificationDestination, secrets: dict[str, str], subject: str, body: str
    ) -> str:
        config = dest.config
        if isinstance(config, SlackDestination):
            text = f"*{subject}*\n{body}" if body else f"*{subject}*"
            where = f"the Slack webhook URL (secret {config.webhook_url_secret!r})"
            return await self._post(dest.name, "POST", secrets[config.webhook_url_secret], where,
                                    {"json": {"text": text}}, config.timeout)  # fmt: skip
        if isinstance(config, TeamsDestination):
            card = _teams_card(subject, body)
            where = f"the Teams webhook URL (secret {config.webhook_url_secret!r})"
            return await self._post(dest.name, "POST", secrets[config.webhook_url_secret], where,
                                    {"json": card}, config.timeout)  # fmt: skip
        if isinstance(config, WebhookDestination):
            return await self._webhook(dest.name, config, secrets, subject, body)
        assert isinstance(config, EmailDestination)
        return await self._email(dest.name, config, secrets, subject, body)

    async def _post(
        self, name: str, method: str, url: str, where: str, kwargs: dict[str, Any], timeout: float
    ) -> str:
        import httpx  # loaded on the first outgoing request, not at server start

        try:
            _, response = await self.egress.request(method, url, kwargs, timeout)
        except EgressRefused as exc:
            reason = _hide(str(exc), url, where)
            raise NotifyFailed(f"notification destination {name!r}: {reason}") from None
        except httpx.HTTPError as exc:
            reason = _hide(f"{type(exc).__name__}: {exc}", url, where)
            raise NotifyFailed(f"notification destination {name!r}: {method} {where} failed: "
                               f"{reason}") from None  # fmt: skip
        if response.status_code >= 400:
            raise NotifyFailed(
                f"notification destination {name!r}: {method} {where} answered HTTP "
                f"{response.status_code}"
            )
        return f"sent to notification destination {name!r} ({where} answered HTTP " \
               f"{response.status_code})"  # fmt: skip

    async def _webhook(
        self,
        name: str,
        config: WebhookDestination,
        secrets: dict[str, str],
        subject: str,
        body: str,
    ) -> str:
        try:
            payload = await arender_value(config.body, {"subject": subject, "body": body},
                                          where="body", limits=self.template_limits)  # fmt: skip
        except TemplateError as exc:
            raise NotifyFailed(f"notification destination {name!r}: {exc}") from None
        headers = dict(config.headers)
        headers.update({h: secrets[s] for h, s in config.header_secrets.items()})
        kwargs: dict[str, Any] = {"headers": headers}
        if isinstance(payload, str):
            kwargs["content"] = payload
        else:
            kwargs["json"] = payload
        return await self._post(name, config.method, config.url, config.url, kwargs,
                                config.timeout)  # fmt: skip

    async def _email(
        self,
        name: str,
        config: EmailDestination,
        secrets: dict[str, str],
        subject: str,
        body: str,
    ) -> str:
        host = config.host.strip("[]")
        try:
            address = await self.egress.pin(
                f"smtp://{config.host}:{config.port}", host, config.port, config.timeout
            )
        except EgressRefused as exc:
            raise NotifyFailed(f"notification destination {name!r}: {exc}") from None
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = config.from_address
        message["To"] = ", ".join(config.to)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="tideflow")
        message.set_content(body or subject)
        password = secrets.get(config.password_secret or "", None)
        try:
            await asyncio.wait_for(
                asyncio.to_thread(_smtp_send, config, host, str(address), password, message),
                config.timeout * 3,  # connect, handshake and data each have their own timeout
            )
        except TimeoutError:
            raise NotifyFailed(
                f"notification destination {name!r}: SMTP {config.host}:{config.port} took longer "
                f"than {config.timeout * 3:g} s"
            ) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise NotifyFailed(
                f"notification destination {name!r}: SMTP {config.host}:{config.port} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        return (
            f"sent to notification destination {name!r} (email to {len(config.to)} "
            f"recipient{'s' if len(config.to) != 1 else ''} via {config.host}:{config.port})"
        )


def _hide(text: str, url: str, where: str) -> str:
    """``text`` with a secret-held URL (and its host part) replaced by a description of it."""
    import httpx  # loaded on the first outgoing request, not at server start

    if url == where:
        return text
    host = httpx.URL(url).host
    text = text.replace(url, where)
    return text.replace(host, "(the secret URL's host)") if host else text


def _teams_card(subject: str, body: str) -> dict[str, Any]:
    """An Adaptive Card message, which Teams incoming webhooks and Workflows webhooks both accept."""
    blocks: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": subject, "weight": "bolder", "size": "medium", "wrap": True}
    ]
    if body:
        blocks.append({"type": "TextBlock", "text": body, "wrap": True})
    return {
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard", "version": "1.2", "body": blocks,
            },
        }],
    }  # fmt: skip


def _smtp_send(
    config: EmailDestination, host: str, address: str, password: str | None, message: EmailMessage
) -> None:
    """Deliver ``message`` (in a worker thread), connected to the checked ``address``; TLS verifies
    the configured host name."""
    context = ssl.create_default_context()
    cls = _PinnedSSL if config.security == "ssl" else _Pinned
    kwargs: dict[str, Any] = {"context": context} if config.security == "ssl" else {}
    with cls(address, host, config.port, timeout=config.timeout, **kwargs) as smtp:
        if config.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.username:
            smtp.login(config.username, password or "")
        smtp.send_message(message)


class _Pinned(smtplib.SMTP):
    """SMTP over a socket to the checked address; ``_host`` stays the name (STARTTLS verifies it)."""

    def __init__(self, address: str, host: str, port: int, **kwargs: Any) -> None:
        self._pinned = address
        super().__init__(**kwargs)
        self.connect(host, port)

    def _get_socket(self, host: Any, port: Any, timeout: Any) -> Any:
        return super()._get_socket(self._pinned, port, timeout)  # type: ignore[misc]


class _PinnedSSL(smtplib.SMTP_SSL):
    """SMTP over TLS from the first byte, to the checked address, verifying the host name."""

    def __init__(self, address: str, host: str, port: int, **kwargs: Any) -> None:
        self._pinned = address
        super().__init__(**kwargs)
        self.connect(host, port)

    def _get_socket(self, host: Any, port: Any, timeout: Any) -> Any:
        # SMTP_SSL wraps with server_hostname=self._host (the configured name).
        return super()._get_socket(self._pinned, port, timeout)  # type: ignore[misc]
