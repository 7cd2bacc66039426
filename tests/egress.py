"""Read an strace log of connect/sendto/sendmsg/sendmmsg: every socket address a process named,
and which of them leave the machine (anything but loopback, Unix and netlink sockets)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

SYSCALLS = ("connect", "sendto", "sendmsg", "sendmmsg")
STRACE_FILTER = "trace=" + ",".join(SYSCALLS)
LOCAL_FAMILIES = frozenset({"AF_UNIX", "AF_NETLINK"})

# "1234  12:00:00.000001 connect(" or "[pid 1234] connect(": the optional pid and time, the call.
_CALL = re.compile(r"^\s*(?:\[pid\s+\d+\]\s*|\d+\s+)?(?:\d[\d:.]*\s+)?(?P<call>\w+)\(")
# A quoted string is consumed whole, so "sa_family=" inside a payload is not an address.
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_TOKEN = re.compile(rf"{_QUOTED}|\{{sa_family=(?P<family>\w+)(?P<body>(?:{_QUOTED}|[^{{}}\"])*)\}}")
_IPV4 = re.compile(r'inet_addr\("(?P<ip>[^"]*)"\)')
_IPV6 = re.compile(r'inet_pton\(AF_INET6,\s*"(?P<ip>[^"]*)"')
_UNIX = re.compile(r'sun_path=(?P<path>@?"(?:[^"\\]|\\.)*")')


@dataclass(frozen=True, kw_only=True, slots=True)
class Destination:
    """One socket address in one traced call; address is an IP, a Unix path or ""."""

    call: str
    family: str
    address: str
    line: str

    @property
    def leaves_the_machine(self) -> bool:
        """True unless it is loopback (127.0.0.0/8, ::1), a Unix socket or netlink."""
        if self.family in LOCAL_FAMILIES:
            return False
        if self.family not in ("AF_INET", "AF_INET6"):
            return True  # AF_PACKET, AF_VSOCK, AF_UNSPEC, a number: nothing to call local
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            return True  # unreadable: fail closed
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return not ip.is_loopback


def destinations(trace: str) -> list[Destination]:
    """Every socket address named by a traced call, in the order of the log.

    Lines of other calls, signals, exits and "<... resumed>" halves are skipped; a call on a
    connected socket (sendto(..., NULL, 0), msg_name=NULL) names none: its connect did."""
    found = []
    for line in trace.splitlines():
        match = _CALL.match(line)
        if match is None or match["call"] not in SYSCALLS:
            continue
        for token in _TOKEN.finditer(line, match.end()):
            if token["family"] is not None:
                family, body = token["family"], token["body"]
                found.append(
                    Destination(
                        call=match["call"], family=family, address=_address(family, body), line=line
                    )
                )
    return found


def leaving(trace: str) -> list[Destination]:
    """The destinations in the log that are not on this machine."""
    return [d for d in destinations(trace) if d.leaves_the_machine]


def _address(family: str, body: str) -> str:
    pattern = {"AF_INET": _IPV4, "AF_INET6": _IPV6, "AF_UNIX": _UNIX}.get(family)
    match = pattern.search(body) if pattern else None
    return match.group(1) if match else ""
