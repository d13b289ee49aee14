"""Where an outgoing action (a webhook, any future notification) may connect: the SSRF policy.

Pure: addresses in, a verdict with a reason out; resolving names and connecting is the caller's
job (``actions.py``). By default only publicly routable unicast addresses over http(s) pass;
loopback, link-local (the cloud metadata address), private, shared, multicast and reserved ranges
are refused, whatever IPv6 form carries them (IPv4-mapped, NAT64, 6to4). The operator opens holes
with ``TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS``: CIDRs, bare addresses, host names, ``*.suffix`` or
``*``. The tables are written out here rather than taken from ``ipaddress.is_private``/``is_global``,
whose answers changed between Python patch releases (and call multicast global).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = [
    "ALLOWED_SCHEMES",
    "Address",
    "AllowList",
    "Refused",
    "address_kind",
    "check_address",
    "check_literal_url",
    "check_scheme",
    "literal_address",
    "parse_allow_list",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})
SETTING = "TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# First match wins, so narrower entries come before the ranges that contain them.
_REFUSED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/32"), "an unspecified address"),
    (_V4("0.0.0.0/8"), "a 'this network' address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.169.254/32"), "a link-local address (the cloud metadata service)"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.0.0.0/24"), "a reserved address (IETF protocol assignments)"),
    (_V4("192.0.2.0/24"), "a reserved address (documentation)"),
    (_V4("192.88.99.0/24"), "a reserved address (6to4 relay)"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("198.18.0.0/15"), "a reserved address (benchmarking)"),
    (_V4("198.51.100.0/24"), "a reserved address (documentation)"),
    (_V4("203.0.113.0/24"), "a reserved address (documentation)"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),  # includes 255.255.255.255, the broadcast
)

# IPv6 prefixes that carry an IPv4 address in their low bits: judged by the IPv4 inside, because
# that is where the packet ends up (the kernel, a NAT64 gateway or a 6to4 relay unwraps it).
_MAPPED = _V6("::ffff:0:0/96")
_NAT64 = _V6("64:ff9b::/96")
_SIX_TO_FOUR = _V6("2002::/16")

_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "an unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("64:ff9b:1::/48"), "a private address (local NAT64)"),
    (_V6("2001::/23"), "a reserved address (IETF protocol assignments, Teredo)"),
    (_V6("2001:db8::/32"), "a reserved address (documentation)"),
    (_V6("fc00::/7"), "a private (unique local) address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a private (site-local) address"),
    (_V6("ff00::/8"), "a multicast address"),
)
_GLOBAL_UNICAST_V6 = _V6("2000::/3")

# inet_aton accepts the legacy forms browsers and libc still resolve (127.1, 0x7f.1, 2130706433).
_LEGACY_V4 = re.compile(r"^[0-9a-fA-Fx.]+$")


@dataclass(frozen=True)
class Refused:
    """Why an address or URL may not be reached; ``str()`` is the sentence to record."""

    url: str
    reason: str
    allowable: bool = True  # False when no setting can allow it (a scheme)

    def __str__(self) -> str:
        hint = f"; allow it with {SETTING}" if self.allowable else ""
        return f"webhook URL {self.url} {self.reason}{hint}"


@dataclass(frozen=True)
class AllowList:
    """The parsed setting: networks and host names the operator allows despite the policy."""

    allow_all: bool = False
    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = field(default=())  # from "*.example.org", stored as ".example.org"

    def allows_host(self, host: str) -> bool:
        name = _normal_host(host)
        return (
            self.allow_all
            or name in self.hosts
            or any(name.endswith(suffix) for suffix in self.suffixes)
        )

    def allows_address(self, address: Address) -> bool:
        if self.allow_all:
            return True
        candidates = {address, _embedded_v4(address) or address}
        return any(
            a in net for a in candidates for net in self.networks if a.version == net.version
        )


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def parse_allow_list(text: str | None) -> AllowList:
    """Parse ``"127.0.0.1/32, hooks.internal, *.corp, *"``; ValueError names a bad entry."""
    networks: list[Network] = []
    hosts: set[str] = set()
    suffixes: list[str] = []
    allow_all = False
    for raw in (text or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry == "*":
            allow_all = True
        elif entry.startswith("*."):
            suffix = _normal_host(entry[1:])
            if len(suffix) < 2:
                raise ValueError(f"{SETTING}: {entry!r} names no domain")
            suffixes.append(suffix)
        elif "/" in entry or literal_address(entry) is not None:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                address = literal_address(entry)
                if address is None:
                    raise ValueError(f"{SETTING}: {entry!r} is not a CIDR network") from None
                networks.append(ipaddress.ip_network(address))
        elif re.fullmatch(r"[A-Za-z0-9_.-]+\.?", entry):
            hosts.add(_normal_host(entry))
        else:
            raise ValueError(f"{SETTING}: {entry!r} is neither a CIDR network nor a host name")
    return AllowList(allow_all, tuple(networks), frozenset(hosts), tuple(suffixes))


def literal_address(host: str) -> Address | None:
    """The address ``host`` spells without any DNS lookup (incl. legacy IPv4 forms), or None."""
    text = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _LEGACY_V4.match(text) and text.strip(".") and any(c.isdigit() for c in text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def _embedded_v4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address delivers to (mapped, NAT64, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address in _MAPPED or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    return None


def address_kind(address: Address) -> str | None:
    """Why the policy refuses ``address`` ("a loopback address", ...), None for a public one."""
    inner = _embedded_v4(address)
    if inner is not None:
        kind = address_kind(inner)
        return f"{kind} ({inner} inside IPv6)" if kind else None
    if isinstance(address, ipaddress.IPv4Address):
        return next((kind for net, kind in _REFUSED_V4 if address in net), None)
    bare = ipaddress.IPv6Address(int(address))  # drop any %scope before matching
    found = next((kind for net, kind in _REFUSED_V6 if bare in net), None)
    if found is None and bare not in _GLOBAL_UNICAST_V6:
        return "a reserved address (outside IPv6 global unicast)"
    return found


def check_scheme(url: str) -> Refused | None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return Refused(url, f"uses scheme {scheme or '(none)'!r}; only http and https are allowed",
                       allowable=False)  # fmt: skip
    return None


def check_address(url: str, host: str, address: Address, allowed: AllowList) -> Refused | None:
    """The verdict on connecting to ``address`` (which ``host`` of ``url`` resolved to)."""
    if allowed.allows_host(host) or allowed.allows_address(address):
        return None
    kind = address_kind(address)
    if kind is None:
        return None
    if literal_address(host) == address:
        return Refused(url, f"is {kind}")
    return Refused(url, f"resolves to {str(address).split('%')[0]}, {kind}")


def check_literal_url(url: str, allowed: AllowList) -> Refused | None:
    """What can be judged when a URL is saved: its scheme, and its host when it is an address.

    A host name cannot be judged yet: it is resolved (and checked) each time the action runs."""
    refused = check_scheme(url)
    if refused is not None:
        return refused
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None  # the schema's own URL check answers for malformed URLs
    address = literal_address(host)
    return check_address(url, host, address, allowed) if address is not None else None
