"""Local Network Access and CORS rules for page-chosen URLs, as pure functions (no
sockets: these addresses are classified, never connected to)."""

from __future__ import annotations

import ipaddress

import pytest

from webmodels.context import Origin
from webmodels.errors import HostError
from webmodels.fetch.access import (
    PAGE_DOWNLOAD_FAILED,
    AddressSpace,
    PageAccess,
    address_space,
    cors_allows,
    origin_space,
    page_error,
    serialize,
)

LOOPBACK, LOCAL, PUBLIC = AddressSpace.LOOPBACK, AddressSpace.LOCAL, AddressSpace.PUBLIC


@pytest.mark.parametrize(
    ("address", "space"),
    [
        ("127.0.0.1", LOOPBACK),
        ("127.255.255.254", LOOPBACK),
        ("::1", LOOPBACK),
        ("0.0.0.0", LOOPBACK),  # reaches this machine
        ("::", LOOPBACK),
        ("10.0.0.1", LOCAL),
        ("10.255.255.255", LOCAL),
        ("172.16.0.1", LOCAL),
        ("172.31.255.254", LOCAL),
        ("192.168.1.1", LOCAL),
        ("100.64.0.1", LOCAL),  # carrier-grade NAT
        ("100.127.255.254", LOCAL),
        ("169.254.169.254", LOCAL),  # link-local: cloud metadata
        ("198.18.0.1", LOCAL),
        ("224.0.0.1", LOCAL),
        ("255.255.255.255", LOCAL),
        ("fc00::1", LOCAL),
        ("fd12:3456:789a::1", LOCAL),
        ("fe80::1", LOCAL),
        ("fe80::1%eth0", LOCAL),
        ("ff02::1", LOCAL),
        # IPv6 forms that carry an IPv4 address are judged by it.
        ("::ffff:127.0.0.1", LOOPBACK),
        ("::ffff:7f00:1", LOOPBACK),
        ("::ffff:10.1.2.3", LOCAL),
        ("::ffff:192.168.0.1", LOCAL),
        ("::127.0.0.1", LOOPBACK),  # IPv4-compatible
        ("::10.0.0.1", LOCAL),
        ("::ffff:0:10.0.0.1", LOCAL),  # IPv4-translated
        ("64:ff9b::127.0.0.1", LOOPBACK),  # NAT64
        ("64:ff9b::169.254.169.254", LOCAL),
        ("64:ff9b:1::a00:1", LOCAL),  # NAT64 local-use prefix, 10.0.0.1
        ("2002:c0a8:101::1", LOCAL),  # 6to4 of 192.168.1.1
        ("2002:7f00:1::1", LOOPBACK),
        # Public.
        ("8.8.8.8", PUBLIC),
        ("1.1.1.1", PUBLIC),
        ("172.15.255.255", PUBLIC),  # just outside 172.16/12
        ("172.32.0.0", PUBLIC),
        ("100.63.255.255", PUBLIC),  # just outside 100.64/10
        ("100.128.0.0", PUBLIC),
        ("11.0.0.1", PUBLIC),
        ("169.253.255.255", PUBLIC),
        ("2606:4700:4700::1111", PUBLIC),
        ("2001:4860:4860::8888", PUBLIC),
        ("::ffff:8.8.8.8", PUBLIC),
        ("64:ff9b::808:808", PUBLIC),  # NAT64 of 8.8.8.8
        ("2002:808:808::1", PUBLIC),
        ("fbff::1", PUBLIC),  # just below fc00::/7
    ],
)
def test_addresses_are_classified_as_local_network_access_says(
    address: str, space: AddressSpace
) -> None:
    parsed = ipaddress.ip_address(address.split("%")[0])
    assert address_space(parsed) is space
    assert PageAccess.for_origin("http://localhost").reaches(address)
    assert PageAccess.for_origin("https://shop.example").reaches(address) is (space is PUBLIC)
    assert PageAccess.for_origin("http://192.168.0.7").reaches(address) is (space is not LOOPBACK)


@pytest.mark.parametrize(
    ("origin", "space"),
    [
        ("http://localhost", LOOPBACK),
        ("http://localhost:8080", LOOPBACK),
        ("http://x.localhost:8123", LOOPBACK),
        ("http://a.b.LOCALHOST", LOOPBACK),
        ("http://localhost.", LOOPBACK),
        ("http://127.0.0.1:5000", LOOPBACK),
        ("http://[::1]:5000", LOOPBACK),
        ("http://[::ffff:127.0.0.1]", LOOPBACK),
        ("http://10.0.0.8", LOCAL),
        ("http://192.168.1.20:3000", LOCAL),
        ("http://[fd00::5]", LOCAL),
        ("https://shop.example", PUBLIC),
        ("https://localhost.example.com", PUBLIC),  # not *.localhost
        ("https://mylocalhost", PUBLIC),
        ("https://8.8.8.8", PUBLIC),
        ("https://router.lan", PUBLIC),  # a name counts as public, whatever it resolves to
    ],
)
def test_page_origins_count_as_their_address_space(origin: str, space: AddressSpace) -> None:
    assert origin_space(origin) is space


def test_a_public_page_reaches_only_public_addresses_a_local_one_more() -> None:
    public = PageAccess.for_origin("https://shop.example")
    private = PageAccess.for_origin("http://10.0.0.8:8000")
    loopback = PageAccess.for_origin("http://x.localhost:9000")
    assert [public.reaches(a) for a in ("8.8.8.8", "10.0.0.1", "127.0.0.1")] == [
        True,
        False,
        False,
    ]
    assert [private.reaches(a) for a in ("8.8.8.8", "10.0.0.1", "127.0.0.1")] == [
        True,
        True,
        False,
    ]
    assert [loopback.reaches(a) for a in ("8.8.8.8", "10.0.0.1", "127.0.0.1")] == [True] * 3
    assert not public.reaches("not-an-address")


def test_origins_the_user_allows_reach_the_local_network() -> None:
    allowed = PageAccess.for_origin(
        "https://intranet.example", local_network_origins=("https://intranet.example",)
    )
    other = PageAccess.for_origin(
        "https://shop.example", local_network_origins=("https://intranet.example",)
    )
    everyone = PageAccess.for_origin("https://shop.example", local_network_origins=("*",))
    assert allowed.reaches("10.0.0.1") and allowed.reaches("127.0.0.1")
    assert not other.reaches("10.0.0.1")
    assert everyone.reaches("127.0.0.1")


def test_cors_check_wants_star_or_the_exact_origin() -> None:
    origin = "https://shop.example"
    assert cors_allows({"Access-Control-Allow-Origin": "*"}, origin)
    assert cors_allows({"Access-Control-Allow-Origin": " https://shop.example "}, origin)
    assert not cors_allows({}, origin)
    assert not cors_allows({"Access-Control-Allow-Origin": "https://other.example"}, origin)
    assert not cors_allows({"Access-Control-Allow-Origin": "https://shop.example:443"}, origin)
    assert not cors_allows({"Access-Control-Allow-Origin": "http://shop.example"}, origin)
    assert not cors_allows({"Access-Control-Allow-Origin": "null"}, origin)
    assert not cors_allows({"Access-Control-Allow-Origin": "*, *"}, origin)  # two headers


def test_origins_serialise_as_browsers_send_them() -> None:
    assert serialize(Origin.parse("https://Shop.Example:443")) == "https://shop.example"
    assert serialize(Origin.parse("http://[::1]:8080")) == "http://[::1]:8080"
    assert serialize(Origin.parse("http://x.localhost:81")) == "http://x.localhost:81"


def test_a_page_learns_a_code_and_a_fixed_message() -> None:
    hidden = [
        HostError("download_failed", "http://10.0.0.1/admin: HTTP 403 Forbidden", status=403),
        HostError("network_unavailable", "cannot connect", reason="[Errno 111] refused"),
        HostError("download_failed", "gave up after 6 rounds over 2 URL(s)"),
        HostError("internal", "boom at /home/user/store"),
    ]
    assert {(e.code, e.message, str(e.details)) for e in map(page_error, hidden)} == {
        ("download_failed", PAGE_DOWNLOAD_FAILED, "{}")
    }
    wrong = page_error(
        HostError(
            "integrity_mismatch", f"hash to {'ab' * 32}", expected="cd" * 32, actual="ab" * 32
        )
    )
    assert wrong.code == "integrity_mismatch" and wrong.details == {}
    assert "ab" * 32 not in wrong.message and "cd" * 32 not in wrong.message
    assert page_error(HostError("disk_full", "x", needed=5, free=3)).details == {}
    own = HostError("quota_exceeded", "over this site's quota", left=10)
    assert page_error(own) is own
