"""Which addresses a page fetch may connect to: public unicast ones only.

A URL in a prompt is the caller's, so a fetch is hostile by default: without this guard the
gateway would read its own loopback services, the private network around it and the cloud
metadata endpoint (169.254.169.254) on the caller's behalf. The check is made on the
addresses a name resolves to (the connection then goes to the checked address, never to a
second resolution) and again on every redirect.
"""

from __future__ import annotations

import ipaddress
from typing import TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that reach a cloud's instance metadata without any address check being able to say
# so beforehand (some resolve only inside the cloud), and RFC 6761's loopback names.
_METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.com", "metadata.tencentyun.com",
})
_SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address inside IPv6 (RFC 6052)


def unsafe_name(host: str) -> str | None:
    """Why a host name is refused before it is resolved, or None."""
    name = host.lower().rstrip(".")
    if name in _METADATA_NAMES:
        return f"{host} is a cloud metadata service"
    if name == "localhost" or name.endswith(".localhost"):
        return f"{host} is a loopback name"
    return None


def unsafe_address(address: IPAddress) -> str | None:
    """Why an address is refused, or None for a public unicast address."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return unsafe_address(embedded)
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED_SPACE:
        return f"{address} is in the shared address space (100.64.0.0/10)"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return f"{address} is a site-local address"
    if address.is_private or address.is_reserved or not address.is_global:
        return f"{address} is not a public address"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo, NAT64), which is what
    a connection to it may reach."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
