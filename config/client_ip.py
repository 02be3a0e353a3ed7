"""The address of the client that sent a request, when the app runs behind reverse proxies.

Behind a proxy or load balancer REMOTE_ADDR is the proxy's address, so keying a limit on it makes every
client share one bucket. X-Forwarded-For can be forged by the client, so it is only read when the direct
peer is a trusted proxy (TRUSTED_PROXIES: addresses or networks, e.g. "10.0.0.0/8,127.0.0.1"), and then
from the right: each trusted proxy appends the address it received from, so the first entry from the
right that is not a trusted proxy is the client. Anything to its left was written by the client itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:  # settings.py imports this module: keep it light
    from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def trusted_proxies_parse(*, values: Iterable[str]) -> tuple[Network, ...]:
    """The TRUSTED_PROXIES setting as networks; a bad entry is a configuration error, not ignored."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES: {value!r} is not an IP address or network (e.g. 10.0.0.0/8)"
            ) from exc
    return tuple(networks)


@lru_cache(maxsize=8)
def _trusted(values: tuple[str, ...]) -> tuple[Network, ...]:
    return trusted_proxies_parse(values=values)


def _address(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the right-most untrusted X-Forwarded-For hop behind proxies."""
    remote = str(request.META.get("REMOTE_ADDR", "") or "")
    trusted = _trusted(tuple(getattr(settings, "TRUSTED_PROXIES", ())))
    peer = _address(remote)
    if peer is None or not trusted:
        return remote
    if not any(peer in network for network in trusted):
        return str(peer)
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR", "") or "")
    hops = [hop for hop in forwarded.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage from the client: the last hop a trusted proxy vouched for is all we know
        client = address
        if not any(address in network for network in trusted):
            break
    return str(client)
