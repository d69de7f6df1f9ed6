"""What a page may make the host fetch: only what it could read itself with `fetch()`.

This module owns the rules, as pure functions and one value (`PageAccess`):

* Local Network Access (WICG "Local Network Access", formerly Private Network
  Access): every IP address is in one address space, loopback < local (private) <
  public. A page may reach only addresses in its own origin's space or a more public
  one: a public page only public addresses, a private page private and public ones,
  a loopback page (``localhost``, ``*.localhost``, loopback IP literals) all.
* CORS (Fetch §3.2.5, "CORS check"): a response a page chose is readable only with
  ``Access-Control-Allow-Origin: *`` or the page's exact origin. The host sends no
  credentials, so ``*`` suffices, as for a credentials-less `fetch()`.
* What a page learns of a failed transfer: a code and a fixed message
  (`page_error`); the real reason goes to the log only.
* How large a download may grow (`check_size_allowed`): without a user gesture it
  stays small, and none goes past its requester's quota.

Where these rules meet the network (the connection made after DNS resolution, at
every redirect hop; each response before its body is read) is `fetch/guard.py`.
URLs the page did not choose (catalogs, configured mirrors, the CLI) are not limited.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from urllib.parse import urlsplit

from webmodels.context import Origin
from webmodels.errors import HostError
from webmodels.store.quotas import quota_exceeded

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressSpace(IntEnum):
    """LNA address spaces, ordered: a page may reach its own space and those above."""

    LOOPBACK = 0
    LOCAL = 1  # "private" in the older Private Network Access spec
    PUBLIC = 2


# Not public (LNA §2.1 and the IANA special-purpose registries it cites). Anything a
# TCP connection cannot sensibly reach on the Internet counts as local, to be safe.
_LOOPBACK = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches this machine on Linux and macOS
        "::1/128",
        "::/128",  # unspecified
    )
)
_LOCAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
        "169.254.0.0/16",  # link-local, incl. cloud metadata 169.254.169.254
        "198.18.0.0/15",  # benchmarking (RFC 2544)
        "192.0.0.0/24",  # IETF protocol assignments
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast 255.255.255.255
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed by some stacks)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use prefix


def parse_address(text: str) -> IPAddress | None:
    """An IP address from a literal (brackets and an IPv6 zone allowed), else None."""
    value = text.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    value = value.split("%", 1)[0]  # fe80::1%eth0: the zone is not part of the address
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries, where connecting to it reaches that
    IPv4 address: IPv4-mapped ``::ffff:a.b.c.d``, IPv4-translated
    ``::ffff:0:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d``
    (a NAT64 gateway forwards to the embedded address) and 6to4 ``2002:AABB:CCDD::``."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    packed = address.packed
    embedded = ipaddress.IPv4Address(packed[12:])
    if address in _NAT64 or address in _NAT64_LOCAL:
        return embedded
    if packed[:12] in (bytes(12), bytes(8) + b"\xff\xff\x00\x00") and int(address) > 1:
        return embedded  # ::a.b.c.d, ::ffff:0:a.b.c.d (not :: or ::1)
    return address


def address_space(address: IPAddress) -> AddressSpace:
    """The LNA address space of the host actually connected to."""
    address = unwrap(address)
    if any(address in net for net in _LOOPBACK if net.version == address.version):
        return AddressSpace.LOOPBACK
    if any(address in net for net in _LOCAL if net.version == address.version):
        return AddressSpace.LOCAL
    return AddressSpace.PUBLIC


def origin_space(origin: str) -> AddressSpace:
    """The address space a page's origin counts as, from its serialisation alone (as
    browsers do for a secure-context check): ``localhost``, ``*.localhost`` and
    loopback IP literals are loopback; private IP literals private; any other name
    public, whatever it resolves to."""
    host = (urlsplit(origin).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return AddressSpace.LOOPBACK
    address = parse_address(host)
    return address_space(address) if address is not None else AddressSpace.PUBLIC


def serialize(origin: Origin) -> str:
    """The origin as a browser sends it in ``Origin`` (IPv6 hosts in brackets)."""
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    port = f":{origin.port}" if origin.port is not None else ""
    return f"{origin.scheme}://{host}{port}"


def cors_allows(headers: Mapping[str, str], origin: str) -> bool:
    """The Fetch spec's CORS check for a request without credentials: exactly one
    ``Access-Control-Allow-Origin`` value, ``*`` or the origin byte for byte."""
    value = headers.get("Access-Control-Allow-Origin")
    return value is not None and value.strip() in ("*", origin)


Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> IP address literals
Classifier = Callable[[IPAddress], AddressSpace]


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (a literal gives itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in found:
            found.append(str(sockaddr[0]))
    return found


@dataclass(frozen=True, slots=True)
class PageAccess:
    """The limits on one page's download: its origin, and what that origin may reach.

    `resolve` and `classify` are seams: tests map public-looking names to loopback
    servers, and may count one loopback address as public to build a redirect chain
    without sending a packet anywhere but this machine.
    """

    origin: str  # serialised, sent as the request's Origin header
    space: AddressSpace
    resolve: Resolver = field(default=system_resolve, compare=False)
    classify: Classifier = field(default=address_space, compare=False)

    @classmethod
    def for_origin(
        cls,
        origin: str,
        *,
        local_network_origins: Iterable[str] = (),
        resolve: Resolver = system_resolve,
        classify: Classifier = address_space,
    ) -> PageAccess:
        """`local_network_origins`: origins the user allows to reach every address
        (``*`` for all), as Chrome's ``LocalNetworkAccessAllowedForUrls`` policy."""
        allowed = set(local_network_origins)
        space = (
            AddressSpace.LOOPBACK if "*" in allowed or origin in allowed else origin_space(origin)
        )
        return cls(origin, space, resolve, classify)

    def reaches(self, address: str) -> bool:
        """Whether this page may connect to `address` (an IP literal)."""
        parsed = parse_address(address)
        return parsed is not None and self.classify(parsed) >= self.space

    def reads(self, headers: Mapping[str, str]) -> bool:
        """Whether this page could read a response with these headers."""
        return cors_allows(headers, self.origin)


class AccessRefused(Exception):
    """A connection or response the page could not have made or read itself. Not an
    OSError, so that no HTTP layer retries it or wraps it as a network failure."""


PAGE_DOWNLOAD_FAILED = "the model could not be downloaded from the URL(s) the page gave"
PAGE_INTEGRITY_MISMATCH = "the downloaded bytes do not match the integrity the page gave"


def page_error(error: HostError) -> HostError:
    """What a page may learn of a failed transfer of URLs it chose: a code and a fixed
    message. Refused, unreachable, not CORS-readable and HTTP errors all read the same
    (else a page could scan ports and hosts it cannot reach); no hash, size, status
    line or server text. Its own limits (gesture, quota) keep their messages."""
    if error.code in ("user_activation_required", "quota_exceeded", "cancelled"):
        return error
    if error.code == "integrity_mismatch":
        return HostError("integrity_mismatch", PAGE_INTEGRITY_MISMATCH)
    if error.code == "disk_full":
        return HostError("disk_full", "the disk holding the store is full")
    return HostError("download_failed", PAGE_DOWNLOAD_FAILED)


def check_size_allowed(size: int | None, *, quota_left: int | None, size_limit: int | None) -> None:
    """A download started without a user gesture stays small, and none goes past
    its requester's quota (docs/design.md#privacy). ``size``: what the server says."""
    if quota_left is not None and size is not None and size > quota_left:
        raise quota_exceeded()  # the same reply as every quota a page can hit
    if size_limit is not None and size is not None and size > size_limit:
        raise HostError(
            "user_activation_required",
            f"a download of more than {size_limit} bytes needs a user gesture "
            "on the page (a click or a key press) to start",
            limit=size_limit,
        )
