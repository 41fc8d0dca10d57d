"""
The network of a box: the outside (repositories, PyPI), and of the
host's loopback only what the run forwards for itself.

qemu's own user network shows the whole loopback of the host to the box
at 10.0.2.2: databases, dev servers, other runs' sshd. A box VM is
served by passt instead, which runs in a network namespace of its own
made by pasta: passt maps the gateway, 10.0.2.2, to the loopback of
that namespace, where pasta forwards only the ports the run names (the
sshd of sshfs sharing) to the host's loopback, and pasta connects the
namespace to the outside without the host's loopback (--no-map-gw).
The box sees the addresses of qemu's user network (10.0.2.15/24,
gateway 10.0.2.2, DNS 10.0.2.3), so boxes need no change.

A box container gets podman's bridge network instead of the host's.

KIWI_BOXED_NETWORK=host gives a box the host's network as before:
qemu's user network, podman's --network host (e.g. for a proxy on the
host's loopback).
"""
import ipaddress
import logging
import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Iterator, List, Mapping, Sequence, Tuple

from kiwi_boxed_plugin.exceptions import KiwiBoxNetworkError, KiwiBoxShareError
from kiwi_boxed_plugin.helper_process import helper_process
from kiwi_boxed_plugin.qemu import stream_netdev, user_netdev
from kiwi_plugin_support.host import find_program
from kiwi_plugin_support.text import last_line, read_text

log = logging.getLogger('kiwi')

NETWORK_VARIABLE = 'KIWI_BOXED_NETWORK'
ISOLATED = 'isolated'
HOST = 'host'
NETWORK_MODES = (ISOLATED, HOST)
# what the user is told to set when the isolated network is in the way
USE_HOST_NETWORK = f"set {NETWORK_VARIABLE}={HOST} to give the box the host's network"
NETWORK_PURPOSE = f'for the box network (or {USE_HOST_NETWORK})'

# The addresses of qemu's user network, which the boxes are made for:
# the box's own, its netmask, its gateway (where it finds the host) and
# the resolver in its /etc/resolv.conf
BOX_ADDRESS = '10.0.2.15'
BOX_NETMASK = '24'
HOST_FROM_BOX = '10.0.2.2'
BOX_RESOLVER = '10.0.2.3'

# passt forwards the box's name queries to the first resolver named
# here (this passt cannot be given another without losing the forward)
RESOLV_CONF = '/etc/resolv.conf'

# What passt logs once its socket serves; it logs it even when the bind
# failed, so the socket is looked for as well
PASST_READY = 'You can now start qemu'
# Log lines of passt and pasta on hosts without a syslog socket, which
# say nothing about what went wrong
SYSLOG_NOISE = 'to syslog'


@dataclass(frozen=True)
class Forwards:
    """
    What a run forwards between the host's loopback and the box

    :param tuple to_host: ports of the host's loopback that the box
        reaches at HOST_FROM_BOX (the sshd of sshfs sharing)
    :param tuple to_box: (port of the host's loopback, port of the
        box) pairs (ssh logins into the box)
    """
    to_host: Tuple[int, ...] = ()
    to_box: Tuple[Tuple[int, int], ...] = ()

    def with_login(self, host_port: int, box_port: int) -> 'Forwards':
        """
        These forwards and host_port to the box's ssh port box_port;
        unchanged for host_port 0
        """
        if not host_port:
            return self
        return replace(self, to_box=self.to_box + ((host_port, box_port),))

    def with_host_port(self, host_port: int) -> 'Forwards':
        """
        These forwards and host_port of the host's loopback for the box;
        unchanged for host_port 0
        """
        if not host_port:
            return self
        return replace(self, to_host=self.to_host + (host_port,))


def network_mode(environ: Mapping[str, str]) -> str:
    """
    The box network the user chose: isolated unless KIWI_BOXED_NETWORK
    says host

    :raises KiwiBoxNetworkError: for any other value
    """
    mode = environ.get(NETWORK_VARIABLE) or ISOLATED
    if mode not in NETWORK_MODES:
        raise KiwiBoxNetworkError(
            f"{NETWORK_VARIABLE}={mode!r} is not a box network: set it to "
            f"'{ISOLATED}' (the default) or '{HOST}'"
        )
    return mode


def network_tools() -> Tuple[str, str, str]:
    """
    pasta, passt and setpriv

    :raises KiwiPluginToolMissingError: naming what to install
    """
    return (
        find_program('pasta', 'passt', NETWORK_PURPOSE),
        find_program('passt', 'passt', NETWORK_PURPOSE),
        find_program('setpriv', 'util-linux', NETWORK_PURPOSE)
    )


def check_network_tools(mode: str) -> None:
    """
    Fail before any download if the isolated network cannot be had

    :raises KiwiPluginToolMissingError: naming what to install
    """
    if mode == ISOLATED:
        network_tools()


def podman_network(mode: str) -> str:
    """
    The --network of a box container: podman's bridge, on which the
    host's loopback is out of reach, unless the user asks for the host's
    """
    return 'host' if mode == HOST else 'bridge'


def port_list(ports: Sequence[str]) -> str:
    """
    A port list of passt and pasta, 'none' when empty (their default
    for some lists is every port)
    """
    return ','.join(ports) or 'none'


def stay_root(as_root: bool) -> List[str]:
    """
    Run by root, pasta and passt drop to nobody before they make the
    namespace (pasta) or bind the socket in the run's private dir
    (passt), which nobody may not; so they stay root, without
    capabilities and sandboxed as ever
    """
    return ['--runas', '0'] if as_root else []


def pasta_argv(pasta: str, forwards: Forwards, as_root: bool) -> List[str]:
    """
    pasta: the namespace passt runs in, connected to the outside, with
    the forwarded ports of the host's loopback and nothing else of it

    :param bool as_root: boxbuild runs as root: a network namespace
        without a user namespace
    """
    argv = [pasta] + stay_root(as_root)
    if as_root:
        argv.append('--netns-only')
    argv += [
        '--foreground', '--quiet', '--config-net', '--no-map-gw',
        '--tcp-ns', port_list([str(port) for port in forwards.to_host]),
        '--udp-ns', 'none', '--udp-ports', 'none',
    ]
    for host_port, _ in forwards.to_box:
        argv += ['--tcp-ports', f'127.0.0.1/{host_port}']
    if not forwards.to_box:
        argv += ['--tcp-ports', 'none']
    return argv


def passt_argv(
    passt: str, socket_path: str, forwards: Forwards, as_root: bool
) -> List[str]:
    """
    passt: the box's network on socket_path, for one qemu

    :param bool as_root: boxbuild runs as root
    """
    return [passt] + stay_root(as_root) + [
        '--foreground', '--quiet', '--one-off', '--socket', socket_path,
        '--address', BOX_ADDRESS, '--netmask', BOX_NETMASK, '--gateway', HOST_FROM_BOX,
        '--dns-forward', BOX_RESOLVER,
        '--tcp-ports', port_list([f'{host}:{box}' for host, box in forwards.to_box]),
        '--udp-ports', 'none',
    ]


def first_nameserver(resolv_conf: str) -> str:
    """
    The first resolver a resolv.conf names, '' for none
    """
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == 'nameserver':
            return words[1]
    return ''


def on_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_resolver(resolv_conf: str = RESOLV_CONF) -> None:
    """
    Warn when the box cannot resolve names: the first resolver of the
    host listens on its loopback (e.g. the stub of systemd-resolved)
    """
    try:
        resolver = first_nameserver(read_text(resolv_conf))
    except OSError:
        return
    if on_loopback(resolver):
        log.warning(
            f'the box will not resolve host names: the first resolver of {resolv_conf}, '
            f'{resolver}, is on the host\'s loopback; {USE_HOST_NETWORK}'
        )


def telling_line(log_text: str) -> str:
    """
    The last line of the helpers' log that says something
    """
    return last_line('\n'.join(
        line for line in log_text.splitlines() if SYSLOG_NOISE not in line
    ))


@contextmanager
def passt_network(forwards: Forwards, runtime_dir: str) -> Iterator[str]:
    """
    passt in pasta's namespace for the with-block

    passt ends with the connection of its qemu, pasta with passt, and
    passt with pasta (parent-death signal through setpriv).

    :return: passt's socket
    :raises KiwiBoxNetworkError: if they do not start
    """
    pasta, passt, setpriv = network_tools()
    as_root = os.geteuid() == 0
    socket_path = os.path.join(runtime_dir, 'passt.socket')
    log_path = os.path.join(runtime_dir, 'network.log')
    argv = pasta_argv(pasta, forwards, as_root) + [
        '--', setpriv, '--pdeathsig', 'KILL', '--'
    ] + passt_argv(passt, socket_path, forwards, as_root)
    check_resolver()
    with ExitStack() as stack:
        try:
            stack.enter_context(helper_process(argv, log_path, PASST_READY))
        except KiwiBoxShareError:
            raise KiwiBoxNetworkError(
                f'the box network did not start: {telling_line(read_text(log_path))}; '
                f'{USE_HOST_NETWORK}'
            )
        if not os.path.exists(socket_path):
            raise KiwiBoxNetworkError(
                f'passt did not create its socket {socket_path}: see {log_path}'
            )
        yield socket_path


@contextmanager
def box_network(mode: str, forwards: Forwards, runtime_dir: str) -> Iterator[str]:
    """
    The network of one box VM for the with-block

    :param str mode: ISOLATED or HOST
    :return: the value of qemu's -netdev
    """
    if mode == HOST:
        yield user_netdev(forwards.to_box)
        return
    with passt_network(forwards, runtime_dir) as socket_path:
        yield stream_netdev(socket_path)
