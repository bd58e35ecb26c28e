"""The client's address: the socket peer, unless the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

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


def client_ip(peer: str | None, forwarded_for: Sequence[str], trusted: tuple[Network, ...]) -> str:
    """Resolve the client address.

    ``X-Forwarded-For`` is read right to left, skipping trusted proxies, and only when the
    socket peer itself is trusted; otherwise a client could spoof it. Its header lines are
    one list (RFC 9110, section 5.3): a client's own line comes before the one its proxy
    adds, so it cannot win. A first untrusted hop that is not an address was not written
    by a proxy we trust: the peer is reported instead.

    Args:
        peer: The socket peer's address, if any.
        forwarded_for: Every ``X-Forwarded-For`` header line, in the order received.
        trusted: The networks of ``TRUSTED_PROXIES``.
    """
    address = peer or "unknown"
    if not forwarded_for or not trusted or not _in_any(address, trusted):
        return address
    hops = [part.strip() for line in forwarded_for for part in line.split(",")]
    for hop in reversed(hops):
        if hop and not _in_any(hop, trusted):
            return _normalised(hop) or address
    return address


def _normalised(hop: str) -> str | None:
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


def rate_key(address: str) -> str:
    """The rate-limit bucket of an address: itself, or for IPv6 its /64.

    One IPv6 host commonly holds a whole /64, so a limit per address would be no limit.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
