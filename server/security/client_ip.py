"""The client's address: the socket peer, unless the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Parse addresses or CIDRs (``10.0.0.0/8``, ``127.0.0.1``).

    Raises:
        ValueError: an entry is neither.
    """
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _in_any(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """Resolve the client address.

    ``X-Forwarded-For`` is read right to left, skipping trusted proxies, and only when the
    socket peer itself is trusted; otherwise a client could spoof it.
    """
    address = peer or "unknown"
    if not forwarded_for or not trusted or not _in_any(address, trusted):
        return address
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if hop and not _in_any(hop, trusted):
            return hop
    return address
