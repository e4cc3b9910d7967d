"""The address check itself, for every range that tests may never send traffic to."""

import ipaddress

import pytest
from requests_hardened.ip_filter import InvalidIPAddress, get_ip_address

from classifier.address_policy import embedded_ipv4, forbidden_reason

REFUSED = {
    "169.254.169.254": "cloud metadata server",
    "169.254.10.1": "link-local",
    "fe80::1": "link-local",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "fd00::1": "private",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "224.0.0.251": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "198.18.0.1": "private",
    "192.0.0.8": "IETF protocol assignments",
}


@pytest.mark.parametrize(("address", "reason"), REFUSED.items())
def test_refused_ranges_name_their_reason(address, reason):
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",  # IPv4-mapped metadata server
        "::ffff:8.8.8.8",  # mapped forms are refused even for public addresses
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b::808:808",  # NAT64 of a public address
        "::7f00:1",  # deprecated IPv4-compatible 127.0.0.1
    ],
)
def test_ipv4_embedding_forms_are_refused(address):
    reason = forbidden_reason(ipaddress.ip_address(address), allow_loopback=True)
    assert reason is not None
    assert "IPv" in reason


def test_mapped_form_reports_inner_reason():
    reason = forbidden_reason(ipaddress.ip_address("::ffff:169.254.169.254"))
    assert "169.254.169.254" in reason
    assert "metadata" in reason


@pytest.mark.parametrize("address", ["2002:a9fe:a9fe::1", "2001:0:4136:e378::1"])
def test_tunnel_prefixes_are_refused(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "151.101.1.69", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_loopback_only_by_explicit_opt_in():
    loopback = ipaddress.ip_address("127.0.0.1")
    assert forbidden_reason(loopback) == "loopback"
    assert forbidden_reason(loopback, allow_loopback=True) is None
    # The opt-in covers loopback, never the private ranges or the metadata server.
    assert forbidden_reason(ipaddress.ip_address("10.1.2.3"), allow_loopback=True) == "private"
    metadata = ipaddress.ip_address("169.254.169.254")
    assert forbidden_reason(metadata, allow_loopback=True) == "cloud metadata server"


def test_embedded_ipv4_extraction():
    assert str(embedded_ipv4(ipaddress.ip_address("::ffff:10.0.0.1"))) == "10.0.0.1"
    assert str(embedded_ipv4(ipaddress.ip_address("64:ff9b::a00:1"))) == "10.0.0.1"
    assert embedded_ipv4(ipaddress.ip_address("::1")) is None
    assert embedded_ipv4(ipaddress.ip_address("10.0.0.1")) is None


@pytest.mark.parametrize(
    "literal", ["169.254.169.254", "10.0.0.1", "100.64.0.1", "192.168.0.1", "fe80::1", "::1"]
)
def test_library_layer_refuses_literals_without_connecting(literal):
    # getaddrinfo on an IP literal is a local parse: no packet leaves the machine.
    with pytest.raises(InvalidIPAddress):
        get_ip_address(literal, 80, allow_loopback=False)
