"""Webhook URL safety: http(s) only, public addresses only, unless allow-listed.

Pure functions, no I/O: callers resolve the host themselves (skipping DNS for IP literals,
see :func:`literal_address`) and pass the answers to :func:`check_addresses`, both when a
webhook is registered (refused with 400) and before every delivery (skipped), so that a
host re-pointed at an internal address after registration is still refused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2000
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
# A last label like these makes browsers and some resolvers read the host as an IPv4
# address in a legacy form (``127.1``, ``0x7f.0.0.1``, ``2130706433``): never a name.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# Ranges ``is_global`` lets through although they embed or reach other addresses.
_REFUSED_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "::ffff:0:0/96",  # IPv4-mapped: whatever it maps to
        "64:ff9b::/96",  # NAT64 well-known prefix
        "64:ff9b:1::/48",  # NAT64 local-use prefix
        "2002::/16",  # 6to4: embeds an IPv4 address, possibly a private one
        "2001::/32",  # Teredo
        "3fff::/20",  # documentation (RFC 9637)
    )
)


class UnsafeUrl(ValueError):
    """A webhook URL that may not be registered or delivered to (user-facing message)."""


@dataclass(frozen=True, slots=True)
class AllowList:
    """``WEBHOOK_ALLOWED_HOSTS``: host names and networks exempt from the public-only rule."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Split entries into networks (addresses or CIDRs) and host names; blanks are skipped."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip()
            if entry.startswith("[") and entry.endswith("]"):
                entry = entry[1:-1]
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(_normalise_host(entry))
        return cls(hosts=frozenset(hosts), networks=tuple(networks))

    def allows_host(self, host: str) -> bool:
        """Whether the host name is listed (case-insensitive, trailing dot ignored)."""
        return _normalise_host(host) in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        """Whether the address (or the IPv4 address it maps to) is in a listed network."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(ip in network for ip in candidates for network in self.networks)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A syntactically valid webhook URL, split for connecting."""

    url: str
    scheme: str
    host: str
    port: int
    target: str


def _normalise_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _check_characters(url: str) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise UnsafeUrl("URL contains whitespace or control characters")


def _check_host_name(host: str) -> None:
    if literal_address(host) is not None:
        return
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UnsafeUrl("URL host is not a valid host name") from None
    if not _HOST_NAME.fullmatch(ascii_host):
        raise UnsafeUrl("URL host is not a valid host name")
    if _NUMERIC_LABEL.fullmatch(ascii_host.rstrip(".").rsplit(".", 1)[-1]):
        raise UnsafeUrl("URL host is not a valid IP address")


def parse_webhook_url(url: str) -> WebhookTarget:
    """Check a webhook URL's syntax and split it; the host is not resolved.

    Raises:
        UnsafeUrl: too long, whitespace or control characters, not http(s), no host,
            user info, a bad port, or a malformed host.
    """
    _check_characters(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("URL is malformed or has an invalid port") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise UnsafeUrl("URL must use http or https")
    if "@" in parts.netloc:
        raise UnsafeUrl("URL must not contain user credentials")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("URL has no host")
    if port == 0:
        raise UnsafeUrl("URL has an invalid port")
    _check_host_name(host)
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return WebhookTarget(
        url=url,
        scheme=parts.scheme,
        host=host,
        port=_DEFAULT_PORTS[parts.scheme] if port is None else port,
        target=target,
    )


def is_public(address: IPAddress) -> bool:
    """Whether a delivery may connect to the address without an allow-list entry.

    Refuses whatever ``is_global`` refuses (loopback, private, link-local, CGNAT,
    unspecified, ULA, documentation...) plus multicast and reserved addresses and every
    IPv6 form embedding an IPv4 address (mapped, NAT64, 6to4, Teredo).
    """
    if address.is_multicast or address.is_reserved or not address.is_global:
        return False
    return not any(address in network for network in _REFUSED_NETWORKS)


def literal_address(host: str) -> IPAddress | None:
    """The host as an IP address when it is a literal (brackets allowed), else None."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _parse_resolved(host: str, addresses: Sequence[str]) -> list[IPAddress]:
    parsed: list[IPAddress] = []
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise UnsafeUrl(f"{host} resolves to an invalid address") from None
        if address not in parsed:
            parsed.append(address)
    return parsed


def check_addresses(
    target: WebhookTarget, addresses: Sequence[str], allow: AllowList
) -> list[IPAddress]:
    """The addresses (deduplicated, in order) a delivery to ``target`` may connect to.

    Args:
        target: the parsed webhook URL.
        addresses: the host's resolved addresses, as ``getaddrinfo`` returns them
            (an IPv6 zone id such as ``%eth0`` is dropped).
        allow: ``WEBHOOK_ALLOWED_HOSTS``.

    Raises:
        UnsafeUrl: no address, or any address is neither public nor allow-listed (a host
            resolving to both a public and a private address is refused as a whole).
    """
    parsed = _parse_resolved(target.host, addresses)
    if not parsed:
        raise UnsafeUrl(f"{target.host} does not resolve")
    if allow.allows_host(target.host):
        return parsed
    if not all(is_public(ip) or allow.allows_address(ip) for ip in parsed):
        raise UnsafeUrl(f"{target.host} resolves to a non-public address")
    return parsed
