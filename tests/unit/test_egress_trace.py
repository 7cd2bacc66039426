"""The strace reader behind the no-egress test: which traced addresses leave the machine.

The lines are strace 6.1's own output for calls made inside a loopback-only namespace."""

from __future__ import annotations

import pytest

from tests.egress import Destination, destinations, leaving

INET_LOOPBACK = (
    '29837 connect(3, {sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("127.0.0.1")}'
    ", 16) = 0"
)
INET_LOOPBACK_53 = (
    '29837 sendto(3, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(53), '
    'sin_addr=inet_addr("127.0.0.53")}, 16) = 1'
)
INET_DNS = (
    "8404  connect(13, {sa_family=AF_INET, sin_port=htons(53), "
    'sin_addr=inet_addr("10.255.255.53")}, 16) = -1 ENETUNREACH (Network is unreachable)'
)
INET_SENDMSG = (
    "29837 sendmsg(3, {msg_name={sa_family=AF_INET, sin_port=htons(53), "
    'sin_addr=inet_addr("8.8.8.8")}, msg_namelen=16, msg_iov=[{iov_base="q", iov_len=1}], '
    "msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = -1 ENETUNREACH (Network is unreachable)"
)
INET6_LOOPBACK = (
    "29837 connect(4, {sa_family=AF_INET6, sin6_port=htons(9), sin6_flowinfo=htonl(0), "
    'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0'
)
INET6_OUTSIDE = (
    "29837 connect(4, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
    'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) '
    "= -1 ENETUNREACH (Network is unreachable)"
)
INET6_MAPPED_LOOPBACK = (
    '29837 sendto(4, "y", 1, 0, {sa_family=AF_INET6, sin6_port=htons(9), '
    'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr), '
    "sin6_scope_id=0}, 28) = 1"
)
INET6_MAPPED_OUTSIDE = (
    '29837 sendto(4, "y", 1, 0, {sa_family=AF_INET6, sin6_port=htons(9), '
    'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::ffff:10.0.0.1", &sin6_addr), '
    "sin6_scope_id=0}, 28) = -1 ENETUNREACH (Network is unreachable)"
)
UNIX_PATH = (
    '29837 connect(5, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 23) '
    "= -1 ENOENT (No such file or directory)"
)
UNIX_ABSTRACT = (
    '29837 connect(5, {sa_family=AF_UNIX, sun_path=@"abstract"}, 11) '
    "= -1 ECONNREFUSED (Connection refused)"
)
NETLINK = (
    "29837 sendto(6, {nlmsg_len=0, nlmsg_type=0 /* NLMSG_??? */, nlmsg_flags=0, nlmsg_seq=0, "
    "nlmsg_pid=0}, 16, 0, {sa_family=AF_NETLINK, nl_pad=0x365, nl_pid=0, "
    "nl_groups=00000000}, 12) = 16"
)
PACKET = (
    '301 sendto(3, "\\0", 1, 0, {sa_family=AF_PACKET, sll_protocol=htons(ETH_P_ALL), '
    'sll_ifindex=if_nametoindex("eth0"), sll_hatype=ARPHRD_NETROM, sll_pkttype=PACKET_HOST, '
    "sll_halen=0}, 20) = 1"
)


@pytest.mark.parametrize(
    ("line", "family", "address"),
    [
        (INET_LOOPBACK, "AF_INET", "127.0.0.1"),
        (INET_LOOPBACK_53, "AF_INET", "127.0.0.53"),
        (INET6_LOOPBACK, "AF_INET6", "::1"),
        (INET6_MAPPED_LOOPBACK, "AF_INET6", "::ffff:127.0.0.1"),
        (UNIX_PATH, "AF_UNIX", '"/var/run/nscd/socket"'),
        (UNIX_ABSTRACT, "AF_UNIX", '@"abstract"'),
        (NETLINK, "AF_NETLINK", ""),
    ],
)
def test_local_destinations_are_read_and_allowed(line: str, family: str, address: str) -> None:
    (found,) = destinations(line)
    assert (found.family, found.address, found.line) == (family, address, line)
    assert not found.leaves_the_machine
    assert leaving(line) == []


@pytest.mark.parametrize(
    ("line", "call", "family", "address"),
    [
        (INET_DNS, "connect", "AF_INET", "10.255.255.53"),
        (INET_SENDMSG, "sendmsg", "AF_INET", "8.8.8.8"),
        (INET6_OUTSIDE, "connect", "AF_INET6", "2001:db8::1"),
        (INET6_MAPPED_OUTSIDE, "sendto", "AF_INET6", "::ffff:10.0.0.1"),
        (PACKET, "sendto", "AF_PACKET", ""),
    ],
)
def test_outside_destinations_are_refused(line: str, call: str, family: str, address: str) -> None:
    assert leaving(line) == [Destination(call=call, family=family, address=address, line=line)]


def test_a_trace_gives_every_address_in_order_and_only_the_outside_ones_leave() -> None:
    trace = "\n".join(
        [
            "29838 +++ exited with 0 +++",
            "29837 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=29838} ---",
            UNIX_PATH,
            INET_DNS,
            '29837 sendto(7, "z", 1, 0, NULL, 0)     = 1',
            INET6_LOOPBACK,
            INET6_OUTSIDE,
        ]
    )
    assert [d.address for d in destinations(trace)] == [
        '"/var/run/nscd/socket"',
        "10.255.255.53",
        "::1",
        "2001:db8::1",
    ]
    assert [d.line for d in leaving(trace)] == [INET_DNS, INET6_OUTSIDE]


def test_an_address_inside_a_payload_string_is_not_a_destination() -> None:
    line = (
        '29837 sendto(3, "{sa_family=AF_INET, sin_addr=inet_addr(\\"8.8.8.8\\")}", 40, 0, '
        '{sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("127.0.0.1")}, 16) = 40'
    )
    assert [d.address for d in destinations(line)] == ["127.0.0.1"]
    assert leaving(line) == []


def test_connected_calls_unfinished_halves_and_other_calls_name_nothing() -> None:
    trace = "\n".join(
        [
            '29837 sendto(7, "z", 1, 0, NULL, 0)     = 1',
            "12 sendmmsg(3, [{msg_hdr={msg_name=NULL, msg_namelen=0, msg_iov=[...]}}], 2, "
            "MSG_NOSIGNAL) = 2",
            "12 <... connect resumed>) = 0",
            '12 openat(AT_FDCWD, "{sa_family=AF_INET, x}", O_RDONLY) = 3',
        ]
    )
    assert destinations(trace) == []


def test_an_unfinished_call_still_names_its_address() -> None:
    line = (
        "[pid  8404] connect(13, {sa_family=AF_INET, sin_port=htons(443), "
        'sin_addr=inet_addr("13.107.5.93")}, 16 <unfinished ...>'
    )
    assert [(d.call, d.address) for d in leaving(line)] == [("connect", "13.107.5.93")]


@pytest.mark.parametrize(
    "line",
    [
        '5 connect(3, {sa_family=AF_UNSPEC, sa_data="\\0\\0"}, 16) = 0',
        "5 connect(3, {sa_family=AF_VSOCK, svm_cid=VMADDR_CID_HOST, svm_port=9}, 16) = 0",
        '5 connect(3, {sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("")}, 16) = 0',
        '5 connect(3, {sa_family=0x2a /* AF_??? */, sa_data=""}, 16) = -1 EINVAL',
    ],
)
def test_other_families_and_unreadable_addresses_fail_closed(line: str) -> None:
    assert [d.line for d in leaving(line)] == [line]
