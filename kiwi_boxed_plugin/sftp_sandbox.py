"""
The sftp server of sshfs sharing, in a sandbox that holds the shares
and nothing else of the host.

A box that mounts the shares over sshfs holds the run's private key;
whatever the run's sshd serves with that key, a build can reach. The
sshd serves sftp only, by sftp-server in a bubblewrap sandbox: an empty
root, read-only, with each share bound at /<tag> (read-only where the
share is) and, read-only, what sftp-server needs to run. sshd's own
chroot would need root; the sandbox works for root and normal users
alike (bwrap makes a user namespace for a normal user).
"""
import logging
import os
import pwd
import re
import subprocess
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from kiwi_boxed_plugin.exceptions import KiwiBoxShareError
from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError
from kiwi_plugin_support.host import find_program
from kiwi_plugin_support.text import last_line

log = logging.getLogger('kiwi')

PURPOSE = 'for --sshfs-sharing'
# Where distributions install sftp-server, outside of PATH
SFTP_SERVER_LOCATIONS = (
    '/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server',
    '/usr/libexec/ssh/sftp-server', '/usr/lib/ssh/sftp-server'
)
# What sftp-server run by root keeps in its sandbox: what serving files
# takes (owners, modes, files of other users), none of what leaves a
# sandbox (mounts, device nodes)
SFTP_CAPABILITIES = (
    'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID'
)


@dataclass(frozen=True)
class SandboxBind:
    """
    A host directory as the sandbox has it

    :param str source: the host path (links are followed)
    :param str target: where the sandbox has it
    """
    source: str
    target: str
    read_only: bool


def find_sftp_server() -> str:
    """
    :raises KiwiPluginToolMissingError: naming what to install
    """
    for location in SFTP_SERVER_LOCATIONS:
        if os.access(location, os.X_OK):
            return location
    raise KiwiPluginToolMissingError(
        f'sftp-server not found, needed {PURPOSE}: install openssh-sftp-server'
    )


def sandbox_tools() -> Tuple[str, str, str]:
    """
    bwrap, sftp-server and ldd

    :raises KiwiPluginToolMissingError: naming what to install
    """
    return (
        find_program('bwrap', 'bubblewrap', PURPOSE), find_sftp_server(),
        find_program('ldd', 'libc-bin', PURPOSE)
    )


def loaded_files(ldd_output: str) -> List[str]:
    """
    The files the dynamic loader maps for a program, as ldd lists them:
    the loader and each library (linux-vdso is the kernel's, no file)
    """
    return re.findall(
        r'^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$', ldd_output, flags=re.MULTILINE
    )


def program_files(ldd: str, program: str) -> List[str]:
    """
    A program and the files it loads
    """
    listing = subprocess.run(
        [ldd, program], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL
    ).stdout.decode(errors='replace')
    return [program] + loaded_files(listing)


def sandbox_argv(
    bwrap: str, server_files: Sequence[str], passwd: str, binds: Sequence[SandboxBind]
) -> List[str]:
    """
    sftp-server in a sandbox whose root holds the binds and, read-only,
    what sftp-server needs to run: its program files, /dev/null and a
    passwd with the user's line (sftp-server looks it up)

    It gets namespaces of its own (no network, processes or IPC of the
    host) and, run by root, no capability beyond serving files.

    :param list server_files: sftp-server, then the files it loads
    :param str passwd: the passwd file of the sandbox
    """
    argv = [
        bwrap, '--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts',
        '--unshare-cgroup-try', '--die-with-parent', '--new-session', '--clearenv',
        '--cap-drop', 'ALL'
    ]
    for capability in SFTP_CAPABILITIES:
        argv += ['--cap-add', capability]
    for bind in binds:
        argv += ['--ro-bind' if bind.read_only else '--bind', bind.source, bind.target]
    for path in server_files:
        argv += ['--ro-bind', path, path]
    return argv + [
        '--ro-bind', passwd, '/etc/passwd', '--dev-bind', '/dev/null', '/dev/null',
        '--remount-ro', '/', '--chdir', '/', server_files[0]
    ]


def check_sandbox(sandbox: Sequence[str]) -> None:
    """
    Run sftp-server in its sandbox once, so that a host where the
    sandbox cannot be made (no user namespaces) fails now, not in the
    box

    :raises KiwiBoxShareError: with what bwrap said
    """
    probe = subprocess.run(
        list(sandbox) + ['-Q', 'requests'], stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if probe.returncode != 0:
        raise KiwiBoxShareError(
            f'the sandbox of the sftp server {PURPOSE} does not start: '
            f'{last_line(probe.stderr.decode(errors="replace"))}'
        )


def sftp_sandbox(
    runtime_dir: str, account: pwd.struct_passwd, binds: Sequence[SandboxBind]
) -> List[str]:
    """
    The sandboxed sftp-server of a run, tried once

    :param str runtime_dir: the run's private dir, for the passwd file
    :param account: the user sshd serves
    :return: its command
    :raises KiwiBoxShareError: if the sandbox does not start
    :raises KiwiPluginToolMissingError: naming what to install
    """
    bwrap, sftp_server, ldd = sandbox_tools()
    passwd = os.path.join(runtime_dir, 'passwd')
    with open(passwd, 'w') as users:
        users.write(f'{account.pw_name}:x:{account.pw_uid}:{account.pw_gid}::/:/nonexistent\n')
    sandbox = sandbox_argv(bwrap, program_files(ldd, sftp_server), passwd, binds)
    check_sandbox(sandbox)
    return sandbox
