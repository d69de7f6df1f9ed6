"""Where a page's limits (`fetch/access.py`) meet the network: a `requests` session
that fetches URLs a page chose the way that page's own `fetch()` would.

* Local Network Access is checked on the address actually connected to: the check
  sits in urllib3's connection creation, after DNS resolution, so it runs for every
  connection of every redirect hop and no second resolution can swap the address
  (no DNS-rebinding window).
* No credentials of any kind: the session ignores the environment (``~/.netrc``,
  proxies and their credentials), keeps no cookies, and the adapter drops any
  ``Authorization``, ``Proxy-Authorization`` or ``Cookie`` header at the last moment.
* Every response, redirects included, must pass the CORS check before anything of it
  is used: its body is never read and its Content-Length never reaches the page.
"""

from __future__ import annotations

import http.cookiejar
import socket
from typing import Any

import requests
import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.poolmanager import PoolManager

from webmodels.fetch.access import AccessRefused, PageAccess, parse_address

SocketOptions = list[tuple[int, int, int]]
_CREDENTIALS = ("Authorization", "Proxy-Authorization", "Cookie")


def limit(session: requests.Session, access: PageAccess, *, socket_options: SocketOptions) -> None:
    """Make `session` fetch only what the page of `access` could read itself."""
    session.trust_env = False  # no ~/.netrc, no proxies or CA bundles from the environment
    session.auth = None
    session.proxies = {}
    session.cookies = requests.cookies.RequestsCookieJar(policy=_NoCookies())
    session.headers.pop("Authorization", None)
    for prefix in ("http://", "https://"):
        old = session.adapters.get(prefix)
        if old is not None:
            old.close()
        session.mount(prefix, PageAdapter(access, socket_options=socket_options))


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Neither stores a cookie a response sets nor sends one (a redirect hop's
    ``Set-Cookie`` would otherwise reach the next hop)."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: Any) -> bool:
        return False


class PageAdapter(requests.adapters.HTTPAdapter):
    """Sends the page's Origin and no credentials; refuses responses the page could
    not read; connects only to addresses the page may reach."""

    def __init__(self, access: PageAccess, *, socket_options: SocketOptions) -> None:
        self.access = access  # before super().__init__, which builds the pool manager
        self.socket_options = socket_options
        super().__init__()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _PagePoolManager(
            self.access,
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            socket_options=self.socket_options,
            **pool_kwargs,
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise AccessRefused("a page's download never goes through a proxy")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        for name in _CREDENTIALS:
            request.headers.pop(name, None)
        request.headers["Origin"] = self.access.origin
        response = super().send(request, **kwargs)
        if not self.access.reads(response.headers):
            response.close()  # the body stays unread, its length unused
            raise AccessRefused(
                f"{request.url} answered {response.status_code} without "
                f"Access-Control-Allow-Origin for {self.access.origin}"
            )
        return response


class _PagePoolManager(PoolManager):
    def __init__(self, access: PageAccess, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.access = access

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.ConnectionCls = _PageHTTPSConnection if scheme == "https" else _PageHTTPConnection
        pool.conn_kw["access"] = self.access
        return pool


class _PageHTTPConnection(HTTPConnection):
    def __init__(self, *args: Any, access: PageAccess, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access = access

    def _new_conn(self) -> socket.socket:
        return _connect(self, self.access)


class _PageHTTPSConnection(HTTPSConnection):
    def __init__(self, *args: Any, access: PageAccess, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access = access

    def _new_conn(self) -> socket.socket:
        return _connect(self, self.access)  # TLS (SNI, certificate) still for the name


def _connect(conn: HTTPConnection, access: PageAccess) -> socket.socket:
    """urllib3's ``create_connection``, trying only the resolved addresses the page
    may reach; `AccessRefused` when it may reach none."""
    host = conn._dns_host.strip("[]")
    try:
        addresses = list(access.resolve(host, conn.port))
    except OSError as exc:  # socket.gaierror: as urllib3 reports it
        raise NewConnectionError(conn, f"cannot resolve {host}: {exc}") from exc
    reachable = [a for a in addresses if access.reaches(a)]
    if not reachable:
        raise AccessRefused(
            f"{host} resolves to {', '.join(addresses) or 'nothing'}, which a page of "
            f"{access.origin} may not reach (Local Network Access)"
        )
    last: OSError | None = None
    for address in reachable:
        try:
            return _open(conn, address)
        except TimeoutError as exc:
            last = exc
            error: Exception = ConnectTimeoutError(conn, f"connecting to {host} timed out")
        except OSError as exc:
            last = exc
            error = NewConnectionError(conn, f"cannot connect to {host}: {exc}")
    raise error from last


def _open(conn: HTTPConnection, address: str) -> socket.socket:
    parsed = parse_address(address)
    assert parsed is not None  # `reaches` accepted only literals
    family = socket.AF_INET6 if parsed.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in conn.socket_options or ():
            sock.setsockopt(*option)
        if isinstance(conn.timeout, int | float) or conn.timeout is None:
            sock.settimeout(conn.timeout)
        if conn.source_address:
            sock.bind(conn.source_address)
        sock.connect((address, conn.port))
        return sock
    except BaseException:
        sock.close()
        raise
