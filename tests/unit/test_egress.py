"""The SSRF policy for webhook actions, pure: address classification, allow-list parsing, verdicts."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tideflow.server.triggers.egress import (
    AllowList,
    address_kind,
    check_address,
    check_literal_url,
    literal_address,
    parse_allow_list,
)

NOBODY = parse_allow_list("")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("0.1.2.3", "this network"),
        ("100.64.0.1", "shared"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "documentation"),
        ("2001:db8::1", "documentation"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:a9fe:a9fe::", "link-local"),  # 6to4 of 169.254.169.254
        ("::7f00:1", "reserved"),  # IPv4-compatible, deprecated
        ("100::1", "reserved"),  # discard-only
    ],
)
def test_refused_addresses_name_their_kind(address: str, kind: str) -> None:
    found = address_kind(ipaddress.ip_address(address))
    assert found is not None and kind in found


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "2606:4700::1111", "::ffff:8.8.8.8",
     "64:ff9b::808:808", "2002:808:808::"],
)  # fmt: skip
def test_public_addresses_pass(address: str) -> None:
    assert address_kind(ipaddress.ip_address(address)) is None


@given(st.ip_addresses(v=4))
def test_every_ipv4_address_is_judged_the_same_in_its_mapped_ipv6_form(
    address: ipaddress.IPv4Address,
) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert (address_kind(address) is None) == (address_kind(mapped) is None)
    assert (check_address("u", str(mapped), mapped, NOBODY) is None) == (
        check_address("u", str(address), address, NOBODY) is None
    )


@given(st.ip_addresses(network="10.0.0.0/8") | st.ip_addresses(network="fc00::/7")
       | st.ip_addresses(network="127.0.0.0/8") | st.ip_addresses(network="169.254.0.0/16")
       | st.ip_addresses(network="fe80::/10") | st.ip_addresses(network="192.168.0.0/16")
       | st.ip_addresses(network="172.16.0.0/12") | st.ip_addresses(network="ff00::/8"))  # fmt: skip
def test_every_address_of_a_refused_range_is_refused_unless_allowed(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assert check_address("http://x/", "x", address, NOBODY) is not None
    assert check_address("http://x/", "x", address, parse_allow_list("*")) is None
    net = "0.0.0.0/0" if address.version == 4 else "::/0"
    assert check_address("http://x/", "x", address, parse_allow_list(net)) is None


@given(st.ip_addresses(v=6))
def test_ipv6_outside_global_unicast_is_refused(address: ipaddress.IPv6Address) -> None:
    if address not in ipaddress.IPv6Network("2000::/3") and address_kind(address) is None:
        # only the IPv4-carrying prefixes may pass, and only for a public IPv4 inside
        assert address in ipaddress.IPv6Network(
            "::ffff:0:0/96"
        ) or address in ipaddress.IPv6Network("64:ff9b::/96")


def test_allow_list_parsing() -> None:
    allowed = parse_allow_list(" 127.0.0.1/32, hooks.Internal. ,*.corp.example, ::1, 10.0.0.7 ,")
    assert not allowed.allow_all
    assert [str(n) for n in allowed.networks] == ["127.0.0.1/32", "::1/128", "10.0.0.7/32"]
    assert allowed.allows_host("HOOKS.internal") and allowed.allows_host("hooks.internal.")
    assert allowed.allows_host("a.corp.example") and not allowed.allows_host("corp.example")
    assert allowed.allows_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not allowed.allows_address(ipaddress.ip_address("127.0.0.2"))
    assert parse_allow_list("*").allow_all
    assert parse_allow_list(None) == AllowList() == parse_allow_list(" , ")
    assert parse_allow_list("10.1.2.3/8").networks == (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "exa mple", "http://x", "*.", "fe80::/200"])
def test_bad_allow_list_entries_are_named(bad: str) -> None:
    with pytest.raises(ValueError, match="TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS") as info:
        parse_allow_list(f"127.0.0.1/32,{bad}")
    assert repr(bad.strip()) in str(info.value)


@pytest.mark.parametrize(
    ("host", "address"),
    [("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("2130706433", "127.0.0.1"),
     ("017700000001", "127.0.0.1"), ("[::1]", "::1"), ("8.8.8.8", "8.8.8.8"),
     ("example.org", None), ("deadbeef", None), ("abc1", None), ("1e100.net", None)],
)  # fmt: skip
def test_literal_address_reads_the_forms_libc_reads(host: str, address: str | None) -> None:
    found = literal_address(host)
    assert (str(found) if found else None) == address


def test_refusal_sentences() -> None:
    metadata = ipaddress.ip_address("169.254.169.254")
    refused = check_address("http://meta.example/x", "meta.example", metadata, NOBODY)
    assert str(refused) == (
        "webhook URL http://meta.example/x resolves to 169.254.169.254, a link-local address "
        "(the cloud metadata service); allow it with TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS"
    )
    literal = check_literal_url("http://[::ffff:127.0.0.1]:8080/h", NOBODY)
    assert str(literal) == (
        "webhook URL http://[::ffff:127.0.0.1]:8080/h is a loopback address (127.0.0.1 inside "
        "IPv6); allow it with TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS"
    )
    ftp = check_literal_url("ftp://files.example/x", parse_allow_list("*"))
    assert str(ftp) == (
        "webhook URL ftp://files.example/x uses scheme 'ftp'; only http and https are allowed"
    )


def test_save_time_judges_addresses_not_names() -> None:
    assert check_literal_url("http://localhost:8080/", NOBODY) is None  # resolved when it runs
    assert check_literal_url("https://hooks.example.org/x", NOBODY) is None
    assert check_literal_url("http://127.0.0.1:9/", NOBODY) is not None
    assert check_literal_url("http://127.0.0.1:9/", parse_allow_list("127.0.0.0/8")) is None
    assert check_literal_url("http://[fe80::1%25eth0]/", NOBODY) is not None
    assert check_literal_url("http://93.184.216.34/", NOBODY) is None


def test_an_allowed_host_name_allows_whatever_it_resolves_to() -> None:
    allowed = parse_allow_list("hooks.internal")
    inside = ipaddress.ip_address("10.0.0.5")
    assert check_address("http://hooks.internal/", "hooks.internal", inside, allowed) is None
    assert check_address("http://other.internal/", "other.internal", inside, allowed) is not None
