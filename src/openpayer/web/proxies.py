"""The client's address and scheme behind reverse proxies (`OPENPAYER_TRUSTED_PROXIES`), as plain ASGI.

`X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the connection comes from a trusted proxy
(a configured network); from anyone else they are ignored, since a client can write any header. The client
address is the right-most `X-Forwarded-For` entry that is not itself a trusted proxy (each proxy appends the
address it saw, so entries left of that one were written by the client and prove nothing). The scheme is
the right-most `X-Forwarded-Proto` value, the one the nearest (trusted) proxy wrote.

Sign-in throttling counts failures per client address, so without this every member behind the proxy
would share one address, and with the header trusted from anyone a guesser could pick a fresh address per
attempt.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    """`10.0.0.0/8`, `192.168.1.10`, `::1`: single addresses are /32 (/128) networks. Raises ValueError."""
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip()]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, app: ASGIApp, networks: Iterable[Network]) -> None:
        self.app = app
        self.networks = tuple(networks)

    def trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client and self.trusted(_address(client[0])):
            scope = dict(scope)
            headers = scope.get("headers", ())
            forwarded = ",".join(v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for")
            host = client[0]
            for entry in reversed([part for part in forwarded.split(",") if part.strip()]):
                address = _address(entry)
                if address is None:
                    break  # garbage: keep the last address a trusted hop vouched for
                host = str(address)
                if not self.trusted(address):
                    break
            scope["client"] = (host, 0 if host != client[0] else client[1])
            protos = ",".join(v.decode("latin-1") for k, v in headers if k == b"x-forwarded-proto")
            values = [part.strip().lower() for part in protos.split(",") if part.strip()]
            if values and values[-1] in ("http", "https"):
                scope["scheme"] = values[-1]
        await self.app(scope, receive, send)
