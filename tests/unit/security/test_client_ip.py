"""The client address: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest

from server.security.client_ip import client_ip, parse_networks, rate_key

PROXIES = parse_networks(["10.0.0.0/8", "127.0.0.1", "::1"])


def test_parse_networks_accepts_addresses_and_cidrs() -> None:
    """Single addresses become /32 (or /128) networks; whitespace is ignored."""
    assert parse_networks([" 10.1.2.3/8 ", "192.168.1.1", "::1"]) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.1/32"),
        ipaddress.ip_network("::1/128"),
    )


def test_parse_networks_of_nothing_is_empty() -> None:
    """No entries, no trusted networks."""
    assert parse_networks([]) == ()


@pytest.mark.parametrize("entry", ["proxy.internal", "10.0.0.0/33", "300.1.1.1", ""])
def test_parse_networks_refuses_bad_entries(entry: str) -> None:
    """Host names and malformed addresses raise ValueError."""
    with pytest.raises(ValueError):
        parse_networks([entry])


def test_trusted_proxy_forwards_the_client_address() -> None:
    """Behind a trusted proxy the right-most untrusted hop is the client."""
    assert client_ip("10.0.0.5", ["203.0.113.9"], PROXIES) == "203.0.113.9"


def test_chain_of_trusted_proxies_is_skipped_right_to_left() -> None:
    """Spoofed left-most entries are ignored: the first untrusted hop from the right wins."""
    forwarded = "198.51.100.66, 203.0.113.9, 10.0.0.7, 10.0.0.6"
    assert client_ip("10.0.0.5", [forwarded], PROXIES) == "203.0.113.9"


def test_ipv6_trusted_peer_is_honoured() -> None:
    """A trusted IPv6 loopback proxy forwards an IPv6 client."""
    assert client_ip("::1", ["2001:db8::1"], PROXIES) == "2001:db8::1"


def test_untrusted_peer_cannot_spoof_the_header() -> None:
    """A direct client's own X-Forwarded-For is ignored."""
    assert client_ip("198.51.100.7", ["203.0.113.9"], PROXIES) == "198.51.100.7"


def test_no_trusted_proxies_means_the_peer() -> None:
    """With no proxies configured the header is never read."""
    assert client_ip("10.0.0.5", ["203.0.113.9"], ()) == "10.0.0.5"


@pytest.mark.parametrize("forwarded", [[], [""]])
def test_trusted_peer_without_header_is_the_client(forwarded: list[str]) -> None:
    """A trusted proxy that sends no header (or an empty one) is itself reported."""
    assert client_ip("10.0.0.5", forwarded, PROXIES) == "10.0.0.5"


def test_all_hops_trusted_falls_back_to_the_peer() -> None:
    """When every forwarded hop is a trusted proxy, the peer address is used."""
    assert client_ip("10.0.0.5", ["10.0.0.9, 127.0.0.1"], PROXIES) == "10.0.0.5"


def test_empty_hops_are_skipped() -> None:
    """Blank entries between commas are not clients."""
    assert client_ip("10.0.0.5", ["203.0.113.9, , ,10.0.0.8"], PROXIES) == "203.0.113.9"


def test_unparseable_hop_falls_back_to_the_peer() -> None:
    """A first untrusted hop that is not an address was not written by our proxy."""
    assert client_ip("10.0.0.5", ["203.0.113.9, not-an-ip"], PROXIES) == "10.0.0.5"


def test_a_clients_own_header_line_cannot_win() -> None:
    """Header lines are one list: the proxy's line, added last, names the client."""
    lines = ["198.51.100.66", "203.0.113.9"]
    assert client_ip("10.0.0.5", lines, PROXIES) == "203.0.113.9"


def test_a_chain_spread_over_lines_is_read_right_to_left() -> None:
    """Trusted hops in the last line are skipped into the line before it."""
    lines = ["198.51.100.66, 203.0.113.9", "10.0.0.7, 10.0.0.6"]
    assert client_ip("10.0.0.5", lines, PROXIES) == "203.0.113.9"


def test_the_client_address_is_normalised() -> None:
    """One address spelled two ways is one rate-limit bucket."""
    assert client_ip("10.0.0.5", ["2001:DB8:0::1"], PROXIES) == "2001:db8::1"


def test_unknown_peer() -> None:
    """Without a socket peer the address is 'unknown' and the header is not trusted."""
    assert client_ip(None, ["203.0.113.9"], PROXIES) == "unknown"


def test_peer_that_is_not_an_address_is_not_trusted() -> None:
    """A peer such as a unix socket path is reported as is."""
    assert client_ip("/run/app.sock", ["203.0.113.9"], PROXIES) == "/run/app.sock"


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::77", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("unknown", "unknown"),
    ],
)
def test_rate_buckets_are_addresses_and_ipv6_slash_64s(address: str, bucket: str) -> None:
    """An IPv6 host holds a /64: its addresses share one bucket; IPv4 stays per address."""
    assert rate_key(address) == bucket
