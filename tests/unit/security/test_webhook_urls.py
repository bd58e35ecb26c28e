"""Webhook URLs: http(s) only, public addresses only, unless WEBHOOK_ALLOWED_HOSTS lists them."""

from __future__ import annotations

import ipaddress

import pytest

from server.security.webhook_urls import (
    MAX_URL_LENGTH,
    AllowList,
    UnsafeUrl,
    WebhookTarget,
    check_addresses,
    is_public,
    literal_address,
    parse_webhook_url,
)

NOTHING_ALLOWED = AllowList.parse([])

REFUSED_ADDRESSES = [
    # loopback
    "127.0.0.1",
    "127.255.255.254",
    "::1",
    # unspecified
    "0.0.0.0",  # noqa: S104 - the address under test, not a bind
    "::",
    "0.1.2.3",
    # private
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.255",
    # link-local (incl. the cloud metadata service)
    "169.254.169.254",
    "169.254.0.1",
    "fe80::1",
    "febf::1",
    # CGNAT
    "100.64.0.1",
    "100.127.255.254",
    # multicast (``is_global`` is True for some of these)
    "224.0.0.1",
    "239.255.255.250",
    "233.252.0.1",
    "ff02::1",
    "ff0e::1",
    # IPv6 ULA
    "fc00::1",
    "fd00::1",
    "fdff:ffff::1",
    # IPv4-mapped, whatever they map to
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:8.8.8.8",
    "::ffff:0:0",
    # other IPv6 forms embedding IPv4
    "64:ff9b::808:808",
    "64:ff9b::7f00:1",
    "64:ff9b:1::a00:1",
    "2002:7f00:1::1",
    "2002:808:808::1",
    "2001:0:4136:e378::1",
    "::7f00:1",
    # reserved, benchmarking, broadcast, IETF protocol assignments
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.0.1",
    "5f00::1",
    # documentation
    "192.0.2.1",
    "198.51.100.1",
    "203.0.113.1",
    "2001:db8::1",
    "3fff::1",
]

PUBLIC_ADDRESSES = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "172.32.0.1",
    "100.128.0.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
]


def target(host: str) -> WebhookTarget:
    return WebhookTarget(url=f"https://{host}/", scheme="https", host=host, port=443, target="/")


# --- is_public -------------------------------------------------------------------------


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_non_public_addresses_are_refused(address: str) -> None:
    """Every non-public range of the contract (and a few more) is refused."""
    assert is_public(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_are_accepted(address: str) -> None:
    """Ordinary global unicast addresses are deliverable."""
    assert is_public(ipaddress.ip_address(address)) is True


# --- AllowList -------------------------------------------------------------------------


def test_allow_list_splits_hosts_and_networks() -> None:
    """Addresses and CIDRs become networks, anything else a normalised host name."""
    allow = AllowList.parse(
        [" Hooks.Internal. ", "10.0.0.0/8", "192.168.1.5", "fd00::/8", "[::1]", "", "  ", "[]"]
    )
    assert allow.hosts == frozenset({"hooks.internal"})
    assert allow.networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.5/32"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("::1/128"),
    )


def test_allow_list_cidr_with_host_bits_is_its_network() -> None:
    """CIDRs are parsed non-strictly: host bits are masked off."""
    assert AllowList.parse(["10.1.2.3/8"]).networks == (ipaddress.ip_network("10.0.0.0/8"),)


def test_allow_list_malformed_cidr_is_a_host_name() -> None:
    """An entry that is not an address or CIDR can only ever match a host name."""
    allow = AllowList.parse(["10.0.0.0/33"])
    assert allow.networks == ()
    assert allow.hosts == frozenset({"10.0.0.0/33"})


def test_empty_allow_list_allows_nothing() -> None:
    """The default allows no host and no address."""
    assert NOTHING_ALLOWED == AllowList()
    assert NOTHING_ALLOWED.allows_host("localhost") is False
    assert NOTHING_ALLOWED.allows_address(ipaddress.ip_address("127.0.0.1")) is False


@pytest.mark.parametrize("host", ["hooks.internal", "HOOKS.Internal", "hooks.internal."])
def test_allows_host_ignores_case_and_trailing_dot(host: str) -> None:
    """Host names match case-insensitively, with or without the root dot."""
    assert AllowList.parse(["hooks.internal"]).allows_host(host) is True


@pytest.mark.parametrize("host", ["other.internal", "sub.hooks.internal", "hooks.internal.evil"])
def test_allows_host_is_an_exact_match(host: str) -> None:
    """No suffix or prefix matching: only the listed name itself."""
    assert AllowList.parse(["hooks.internal"]).allows_host(host) is False


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("10.1.2.3", True),
        ("11.0.0.1", False),
        ("::ffff:10.1.2.3", True),
        ("::ffff:11.0.0.1", False),
        ("fd00::1", True),
        ("fe80::1", False),
    ],
)
def test_allows_address_by_network(address: str, allowed: bool) -> None:
    """Addresses match their family's networks; IPv4-mapped ones match as IPv4."""
    allow = AllowList.parse(["10.0.0.0/8", "fd00::/8"])
    assert allow.allows_address(ipaddress.ip_address(address)) is allowed


# --- parse_webhook_url -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com", ("https", "example.com", 443, "/")),
        ("http://example.com", ("http", "example.com", 80, "/")),
        ("HTTPS://Example.COM/Hook", ("https", "example.com", 443, "/Hook")),
        (
            "https://example.com:8443/a/b?x=1&y=2#frag",
            ("https", "example.com", 8443, "/a/b?x=1&y=2"),
        ),
        ("https://example.com?x=1", ("https", "example.com", 443, "/?x=1")),
        ("https://example.com/p?#f", ("https", "example.com", 443, "/p")),
        ("http://example.com:/", ("http", "example.com", 80, "/")),
        ("http://8.8.8.8:8080/h", ("http", "8.8.8.8", 8080, "/h")),
        ("http://[2606:4700:4700::1111]/h", ("http", "2606:4700:4700::1111", 80, "/h")),
        ("https://[::FFFF:127.0.0.1]:65535/", ("https", "::ffff:127.0.0.1", 65535, "/")),
        ("https://hooks_1.example-site.org./x", ("https", "hooks_1.example-site.org.", 443, "/x")),
        ("https://bücher.de/", ("https", "bücher.de", 443, "/")),
        ("https://xn--bcher-kva.de/", ("https", "xn--bcher-kva.de", 443, "/")),
        ("https://1.2.3.example/", ("https", "1.2.3.example", 443, "/")),
        ("https://localhost/", ("https", "localhost", 443, "/")),
    ],
)
def test_parse_valid_urls(url: str, expected: tuple[str, str, int, str]) -> None:
    """Scheme and host are lower-cased, ports default, the fragment is dropped."""
    parsed = parse_webhook_url(url)
    assert parsed.url == url
    assert (parsed.scheme, parsed.host, parsed.port, parsed.target) == expected


def test_parse_does_not_judge_addresses() -> None:
    """Parsing is syntax only: loopback literals are refused later, by check_addresses."""
    assert parse_webhook_url("http://127.0.0.1/").host == "127.0.0.1"


def test_url_of_maximum_length_is_accepted() -> None:
    """2000 characters is the limit, inclusive."""
    base = "https://example.com/"
    url = base + "a" * (MAX_URL_LENGTH - len(base))
    assert parse_webhook_url(url).target == "/" + "a" * (MAX_URL_LENGTH - len(base))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://example.com/" + "a" * MAX_URL_LENGTH, "longer than"),
        ("https://example.com/a b", "whitespace"),
        ("https://example.com/\tx", "whitespace"),
        (" https://example.com/", "whitespace"),
        ("https://example.com/\n", "whitespace"),
        ("https://exa\x00mple.com/", "control"),
        ("https://example.com/\x7f", "control"),
        ("https://example.com/\u200b", "control"),
        ("ftp://example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://example.com/", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("example.com/hook", "http or https"),
        ("//example.com/hook", "http or https"),
        ("", "http or https"),
        ("https://", "no host"),
        ("https:///path", "no host"),
        ("https://:443/", "no host"),
        ("http:example.com", "no host"),
        ("https://user:pass@example.com/", "credentials"),
        ("https://user@example.com/", "credentials"),
        ("https://@example.com/", "credentials"),
        ("https://example.com@127.0.0.1/", "credentials"),
        ("https://example.com:99999/", "invalid port"),
        ("https://example.com:-1/", "invalid port"),
        ("https://example.com:+80/", "invalid port"),
        ("https://example.com:http/", "invalid port"),
        ("https://example.com:0/", "invalid port"),
        ("http://::1/", "invalid port"),
        ("http://[::1/", "malformed"),
        ("http://[not-an-ip]/", "malformed"),
        ("https://exa%6dple.com/", "valid host name"),
        ("https://example.com\\.evil.com/", "valid host name"),
        ("https://a..b/", "valid host name"),
        ("https://" + "a" * 64 + ".com/", "valid host name"),
        ("https://exa!mple.com/", "valid host name"),
        ("http://2130706433/", "valid IP address"),
        ("http://127.1/", "valid IP address"),
        ("http://0x7f.0.0.1/", "valid IP address"),
        ("http://0177.0.0.01/", "valid IP address"),
        ("http://127.0.0.1./", "valid IP address"),
        ("http://1.2.3.0x/", "valid IP address"),
    ],
)
def test_parse_refuses_bad_urls(url: str, message: str) -> None:
    """Each refusal is an UnsafeUrl (a ValueError) with a user-facing reason."""
    with pytest.raises(UnsafeUrl, match=message) as caught:
        parse_webhook_url(url)
    assert isinstance(caught.value, ValueError)


# --- literal_address -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("8.8.8.8", "8.8.8.8"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
    ],
)
def test_literal_address_of_ip_literals(host: str, expected: str) -> None:
    """IP literals come back as addresses, so the caller can skip DNS."""
    assert literal_address(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize(
    "host", ["example.com", "localhost", "127.1", "2130706433", "[example]", ""]
)
def test_literal_address_of_names_is_none(host: str) -> None:
    """Anything but a canonical address is a name to resolve."""
    assert literal_address(host) is None


# --- check_addresses -------------------------------------------------------------------


def test_public_addresses_pass_deduplicated_in_order() -> None:
    """All public: every distinct address is returned, in resolver order."""
    addresses = ["2606:4700:4700::1111", "8.8.8.8", "8.8.8.8", "2606:4700:4700::1111"]
    assert check_addresses(target("example.com"), addresses, NOTHING_ALLOWED) == [
        ipaddress.ip_address("2606:4700:4700::1111"),
        ipaddress.ip_address("8.8.8.8"),
    ]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_non_public_address_is_refused(address: str) -> None:
    """A single non-public answer refuses the host."""
    with pytest.raises(UnsafeUrl, match=r"^example\.com resolves to a non-public address$"):
        check_addresses(target("example.com"), [address], NOTHING_ALLOWED)


@pytest.mark.parametrize("order", [["8.8.8.8", "127.0.0.1"], ["10.0.0.1", "8.8.8.8"]])
def test_mixed_public_and_private_is_refused_whole(order: list[str]) -> None:
    """A private answer is not silently dropped: the whole host is refused."""
    with pytest.raises(UnsafeUrl, match="non-public"):
        check_addresses(target("example.com"), order, NOTHING_ALLOWED)


def test_no_addresses_does_not_resolve() -> None:
    """An empty answer is refused, even for an allow-listed host."""
    for allow in (NOTHING_ALLOWED, AllowList.parse(["example.com"])):
        with pytest.raises(UnsafeUrl, match=r"^example\.com does not resolve$"):
            check_addresses(target("example.com"), [], allow)


def test_ipv6_zone_id_is_stripped() -> None:
    """``getaddrinfo`` may append ``%iface``; the address itself is judged."""
    with pytest.raises(UnsafeUrl, match="non-public"):
        check_addresses(target("example.com"), ["fe80::1%eth0"], NOTHING_ALLOWED)
    assert check_addresses(target("example.com"), ["2606:4700:4700::1111%0"], NOTHING_ALLOWED) == [
        ipaddress.ip_address("2606:4700:4700::1111")
    ]


def test_unparseable_answer_is_refused() -> None:
    """Something that is not an address is never connected to."""
    with pytest.raises(UnsafeUrl, match="invalid address"):
        check_addresses(target("example.com"), ["8.8.8.8", "not-an-ip"], NOTHING_ALLOWED)


@pytest.mark.parametrize("host", ["hooks.internal", "HOOKS.internal."])
def test_allow_listed_host_may_resolve_anywhere(host: str) -> None:
    """A listed host name is exempt: all its addresses, private ones included, are returned."""
    allow = AllowList.parse(["hooks.internal"])
    assert check_addresses(target(host), ["10.0.0.7", "::1", "8.8.8.8"], allow) == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("8.8.8.8"),
    ]


def test_allow_listed_host_does_not_exempt_other_hosts() -> None:
    """The exemption is per host name, not for the addresses it resolves to."""
    allow = AllowList.parse(["hooks.internal"])
    with pytest.raises(UnsafeUrl, match="non-public"):
        check_addresses(target("other.internal"), ["10.0.0.7"], allow)


def test_allow_listed_network_exempts_its_addresses() -> None:
    """Private addresses inside a listed CIDR pass, mixed with public ones too."""
    allow = AllowList.parse(["10.0.0.0/8", "::1"])
    assert check_addresses(target("svc.internal"), ["10.9.8.7", "::1", "8.8.8.8"], allow) == [
        ipaddress.ip_address("10.9.8.7"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("8.8.8.8"),
    ]


def test_allow_listed_network_does_not_exempt_other_private_addresses() -> None:
    """An address outside every listed network is still refused."""
    allow = AllowList.parse(["10.0.0.0/8"])
    with pytest.raises(UnsafeUrl, match="non-public"):
        check_addresses(target("svc.internal"), ["10.9.8.7", "192.168.1.1"], allow)


def test_literal_url_end_to_end() -> None:
    """A literal host skips DNS: its own address is checked, with the allow-list applied."""
    parsed = parse_webhook_url("http://[::ffff:127.0.0.1]:8080/hook")
    literal = literal_address(parsed.host)
    assert literal is not None
    with pytest.raises(UnsafeUrl, match="non-public"):
        check_addresses(parsed, [str(literal)], NOTHING_ALLOWED)
    allow = AllowList.parse(["127.0.0.0/8"])
    assert check_addresses(parsed, [str(literal)], allow) == [literal]
