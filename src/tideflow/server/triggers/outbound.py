"""Outgoing HTTP for actions and notifications, through the SSRF policy (``egress``).

Before a request connects, its host is resolved here and every answer judged by ``egress``; the
request then goes to the checked address itself (URL rewritten to it, the original Host header and
TLS server name kept), so a second DNS answer can never swap in another target. Redirects are
followed only on the same host, a few times, each judged again. ``pin`` is also what an SMTP sender
connects to.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from tideflow.server.triggers.egress import (
    Address,
    AllowList,
    check_address,
    check_scheme,
    literal_address,
)

if TYPE_CHECKING:  # httpx (with its CLI: rich, click) loads on the first request, not at start
    import httpx

__all__ = ["Egress", "EgressRefused", "Resolver", "resolve_host"]

Resolver = Callable[[str, int], Awaitable[list[Address]]]


async def resolve_host(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to; the lookup runs in a thread, off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[Address] = []
    for *_, sockaddr in infos:
        address = literal_address(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    return found


class EgressRefused(Exception):
    """A request was refused or failed; the message is the sentence to record."""


class Egress:
    """Pinned outgoing requests under one allow list; ``resolve`` is replaceable for tests."""

    def __init__(self, allowed_networks: AllowList, resolve: Resolver = resolve_host) -> None:
        self.allowed_networks = allowed_networks
        self.resolve = resolve
        self._http: httpx.AsyncClient | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        import httpx

        if self._http is None:
            # An explicit transport: no proxy from the environment (the guard would judge the
            # proxy, not the target), while SSL_CERT_FILE still applies. No kept-alive connections:
            # one opened for another host on the same address and verified for its TLS name must
            # not carry this request; every request connects to its own checked address.
            transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
            self._http = httpx.AsyncClient(follow_redirects=False, transport=transport)
        return self._http

    async def request(
        self, method: str, url: str, kwargs: dict[str, Any], timeout: float
    ) -> tuple[str, httpx.Response]:
        """Send, following same-host redirects; ``(final url, response)``. EgressRefused on a
        refused address or redirect; httpx.HTTPError passes through."""
        import httpx

        for _ in range(5):
            response = await self._send(method, url, kwargs, timeout)
            location = response.headers.get("location")
            if not response.is_redirect or not location:
                break
            target = str(httpx.URL(url).join(location))
            if urlparse(target).netloc != urlparse(url).netloc:
                raise EgressRefused(f"refused a redirect to another host: {target}")
            url = target
        return url, response

    async def _send(
        self, method: str, url: str, kwargs: dict[str, Any], timeout: float
    ) -> httpx.Response:
        """One request to ``url``, connected to an address the egress policy accepts."""
        import httpx

        refused = check_scheme(url)
        if refused is not None:
            raise EgressRefused(str(refused))
        target = httpx.URL(url)
        host = target.raw_host.decode("ascii")  # IDNA-encoded: what DNS and TLS see
        port = target.port or (443 if target.scheme == "https" else 80)
        address = await self.pin(url, host, port, timeout)
        headers = httpx.Headers(kwargs.get("headers") or {})
        headers.setdefault("host", target.netloc.decode("ascii"))
        # TLS names and verifies the original host, though the socket goes to the pinned address.
        named = literal_address(host) is None and target.scheme == "https"
        return await self._client().request(
            method, target.copy_with(host=str(address)), timeout=timeout,
            extensions={"sni_hostname": host} if named else {},
            **{**kwargs, "headers": headers},
        )  # fmt: skip

    async def pin(self, url: str, host: str, port: int, timeout: float) -> Address:
        """The first address of ``host`` the policy accepts; EgressRefused naming why if none."""
        addresses: list[Address]
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = await asyncio.wait_for(self.resolve(host, port), timeout)
            except TimeoutError:
                raise EgressRefused(
                    f"webhook URL {url}: resolving {host} took longer than {timeout:g} s"
                ) from None
            except OSError as exc:
                raise EgressRefused(f"webhook URL {url}: cannot resolve {host}: {exc}") from None
        if not addresses:
            raise EgressRefused(f"webhook URL {url}: {host} resolves to no address")
        refusals = []
        for address in addresses:
            refused = check_address(url, host, address, self.allowed_networks)
            if refused is None:
                return address
            refusals.append(refused)
        raise EgressRefused(str(refusals[0]))
