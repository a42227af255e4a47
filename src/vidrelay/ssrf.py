"""The guard for every outbound request to a user-given URL (reference images for now).

A URL may only reach a public address, unless the operator allow-lists its host or network
(`VIDRELAY_OUTBOUND_ALLOWLIST`, for local development and tests). This first form checks the
resolved addresses before connecting and refuses redirects; pinning the connection to the
checked address is the webhook issue's hardening.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from vidrelay.domain.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allowlist(entries: Sequence[str]) -> tuple[set[str], list[IPNetwork]]:
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower())
    return hosts, networks


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return _is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


async def check_outbound_url(url: str, *, param: str, allowlist: Sequence[str]) -> None:
    """Refuse a URL whose host resolves to a non-public address (400 naming `param`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"{param} must be an absolute http(s) URL.", param=param)
    host = parts.hostname.lower()
    hosts, networks = parse_allowlist(allowlist)
    if host in hosts:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except OSError as error:
        raise InvalidRequest(
            f"{param}: the host {host!r} cannot be resolved.", param=param
        ) from error
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if any(address in network for network in networks):
            continue
        if not _is_public(address):
            raise InvalidRequest(
                f"{param} points to a private or reserved address, which is not allowed.",
                param=param,
            )
