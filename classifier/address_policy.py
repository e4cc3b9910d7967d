"""Which IP addresses an image URL may reach.

requests-hardened resolves the host, pins the connection to the address it
checked and refuses private and loopback ranges; this policy is stricter on top
of it (reserved, unspecified, IPv4-compatible and Teredo forms, 6to4, NAT64)
and names the reason, so the client's error says why. It is a pure function of
the address, so every range is tested without opening a connection.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAMED_NETWORKS: tuple[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network], ...] = (
    ("carrier-grade NAT", ipaddress.ip_network("100.64.0.0/10")),
    ("IETF protocol assignments", ipaddress.ip_network("192.0.0.0/24")),
    ("6to4 relay", ipaddress.ip_network("192.88.99.0/24")),
    ("benchmarking", ipaddress.ip_network("198.18.0.0/15")),
    ("NAT64", ipaddress.ip_network("64:ff9b::/96")),
    ("local NAT64", ipaddress.ip_network("64:ff9b:1::/48")),
    ("6to4", ipaddress.ip_network("2002::/16")),
    ("Teredo", ipaddress.ip_network("2001::/32")),
    ("ORCHIDv2", ipaddress.ip_network("2001:20::/28")),
    ("IPv6 documentation", ipaddress.ip_network("3fff::/20")),
    ("segment routing", ipaddress.ip_network("5f00::/16")),
)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, compatible, NAT64), if any."""
    if ip.version == 4:
        return None
    assert isinstance(ip, ipaddress.IPv6Address)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    packed = ip.packed
    if packed[:12] == bytes(12) and packed[12:] not in (bytes(4), b"\x00\x00\x00\x01"):
        return ipaddress.IPv4Address(packed[12:])  # deprecated IPv4-compatible ::a.b.c.d
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(packed[12:])
    return None


def forbidden_reason(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why a connection to `ip` is refused, or None when it is a public address."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        reason = forbidden_reason(inner, allow_loopback=allow_loopback)
        mapped = isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None
        kind = "IPv4-mapped" if mapped else "IPv4-embedding"
        return f"{kind} IPv6 form of {inner}" + (f" ({reason})" if reason else "")
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    if str(ip) == "169.254.169.254":
        return "cloud metadata server"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    )
    for reason, hit in checks:
        if hit:
            return reason
    for reason, network in _NAMED_NETWORKS:
        if ip.version == network.version and ip in network:
            return reason
    if not ip.is_global:
        return "not globally routable"
    return None
