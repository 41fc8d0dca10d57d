"""
Facts about this host that both plugins ask for: its architecture, its
programs and a free port of its loopback.
"""
import os
import platform
import shutil
import socket

from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError

# programs of openssh-server and the like live in sbin, which a normal
# user's PATH often lacks
SBIN_DIRS = ('/usr/sbin', '/sbin')


def host_arch() -> str:
    """
    The architecture of this host in kiwi's names (x86_64, aarch64, ...)
    """
    machine = platform.machine()
    return {'amd64': 'x86_64', 'arm64': 'aarch64'}.get(machine, machine)


def find_program(name: str, package: str, purpose: str) -> str:
    """
    The absolute path of an installed program

    :param str package: the package that has it, named in the error
    :param str purpose: what it is needed for, e.g. 'for --sshfs-sharing'
    :raises KiwiPluginToolMissingError: naming the package to install
    """
    search = os.pathsep.join([os.environ.get('PATH', '')] + list(SBIN_DIRS))
    found = shutil.which(name, path=search)
    if not found:
        raise KiwiPluginToolMissingError(
            f'{name} not found, needed {purpose}: install {package}'
        )
    return os.path.abspath(found)


def free_port() -> int:
    """
    A TCP port of 127.0.0.1 that is free right now (another process may
    take it before the caller binds it)
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]
