"""
Logins into a box VM as root through a port of the host's loopback
forwarded to the box's ssh port: the user's (--ssh-key, --ssh-port),
and the run's own, which holds the reverse tunnel that sshfs sharing
with a published box needs.

A published box mounts its shares over sshfs from port 10000 of its
own loopback, authenticating with the key pair baked into every copy
of the box. The run logs into the box with a key pair made for the run
(given to the box as its ssh_key), reads the public halves of the keys
the box holds, and forwards the box's port 10000 to the run's own
sshd, which listens on a unix socket of the run's private dir: only
the box reaches it, never the user's sshd, and no other local user
can knock with the publicly known key.
"""
import base64
import logging
import os
import re
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence

from kiwi_boxed_plugin.exceptions import KiwiBoxRequestError
from kiwi_plugin_support.host import find_program, free_port
from kiwi_plugin_support.lifetime import parent_death_signal
from kiwi_plugin_support.text import last_line, read_text

log = logging.getLogger('kiwi')

# The box's ssh port
BOX_SSH_PORT = 22
# Where a published box looks for the host's sshd, on its own loopback
BOX_TUNNEL_PORT = 10000
# The public half of the key pair baked into every published box, as
# the upstream documentation prints it; its private half is public
PUBLISHED_BOX_KEY = (
    'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCtiqDaYgEMkr7za7qc4iPXftgu/j3sodPOtpoG8PinwRX6'
    '/3xZteOJzCH2qCZjEgA5zsP9lxy/119cWXvdxFUvyEINjH77unzRnaHj/yTXPhHuhHgAiEubuHer2gZoOs+'
    'UH4cGJLKCrabjTjZdeK9KvL+hoAgJaWxDUvGsXYDQTBHXlKjniOL1MGbltDBHnYhu4k+PjjJ+UEBN+8+F74Y'
    '5fYgIovXXY88WQrybuEr1eAYjhvk/ln6TKw1P6uvVMuIbAGUgnZFntDCI91Qw8ps1j+lX3vNc8ZBoOwM6nHZ'
    'qq4FAqbXuH+NvQFS/xDM6wwZQhAe+14dTQBA5F1mgCVf+fSbteb0/CraSGmgKIM8aPnK8rfF+BY6Jar3AJFK'
    'VRPshRzrQj6CWYu3BfmOLupCpqOK2XFyoU2lEpaZDejgPSJq/IBGZdjKplWJFF8ZRQ01a8eX8K2fjrQt/4k9'
    'c7Pjlg1aDH8Sf+5+vcehlSNs1d50wnFoaIPrgDdy04omiaJ8= kiwi@boxbuild'
)
# What the run's login does in the box, as root: authorize the user's
# keys given on stdin (the box's ssh_key holds the run's key then),
# forget the host key of the tunnel's far end that an earlier run left
# in a box kept with --no-snapshot (sshfs in the box would refuse the
# new one), and print the public halves of root's private keys, with
# which the box's sshfs logs in
BOX_SETUP_SCRIPT = (
    'umask 077; mkdir -p /root/.ssh; cat >> /root/.ssh/authorized_keys; '
    f"ssh-keygen -R '[localhost]:{BOX_TUNNEL_PORT}' -f /root/.ssh/known_hosts "
    '>/dev/null 2>&1; '
    'for key in /root/.ssh/id_*; do case $key in *.pub) continue;; esac; '
    'ssh-keygen -y -P "" -f "$key" 2>/dev/null; done; true'
)
# Pause between login attempts while the box boots
RETRY_SECONDS = 2.0
# An attempt that takes longer is stopped and tried again (a box under
# software emulation takes seconds for a key exchange)
ATTEMPT_SECONDS = 120
# After this long without a login the user is told why, once
PATIENCE_SECONDS = 300
# How often a running ssh is looked at
POLL_SECONDS = 0.2
PURPOSE = 'for logging into the box'


@dataclass(frozen=True)
class LoginKey:
    """
    A public key of the user's ~/.ssh, for logging into the box

    :param str path: the file it was read from
    """
    key_type: str
    key: str
    path: str = ''

    @property
    def line(self) -> str:
        return f'{self.key_type} {self.key}'


@dataclass(frozen=True)
class LoginPlan:
    """
    Who logs into the box, through which port of the host's loopback

    :param int port: forwarded to the box's ssh port, 0 for none
    :param LoginKey user_key: --ssh-key, or None
    :param bool tunnel: the run logs in itself and holds the reverse
        tunnel of sshfs sharing with a published box
    """
    port: int = 0
    user_key: Optional[LoginKey] = None
    tunnel: bool = False


@dataclass(frozen=True)
class TunnelEnd:
    """
    The run's sshd as the tunnel of a published box reaches it

    :param str socket_path: its unix socket
    :param str authorized_keys: the keys it takes, which the box's own
        keys are added to
    """
    socket_path: str
    authorized_keys: str


def read_login_key(name: str, ssh_dir: str) -> LoginKey:
    """
    --ssh-key NAME: ~/.ssh/NAME.pub (or NAME itself when it is a path)

    :raises KiwiBoxRequestError: if the key is not found or unreadable
    """
    candidates = [name, f'{name}.pub'] if os.sep in name else [
        os.path.join(ssh_dir, f'{name}.pub'), os.path.join(ssh_dir, name)
    ]
    for path in candidates:
        if path.endswith('.pub') and os.path.isfile(path):
            with open(path) as handle:
                fields = handle.read().split()
            if len(fields) >= 2 and is_base64(fields[1]):
                return LoginKey(fields[0], fields[1], path)
            raise KiwiBoxRequestError(
                f'{path} is not an ssh public key: give the name of a key pair in {ssh_dir}'
            )
    raise KiwiBoxRequestError(
        f"ssh public key '{name}' not found (looked for {candidates[0]}): "
        f'give the name of a key pair in {ssh_dir}, e.g. id_ed25519'
    )


def is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True


def plan_login(
    requested_port: int, user_key: Optional[LoginKey], tunnel: bool,
    pick: Optional[Callable[[], int]] = None
) -> LoginPlan:
    """
    The port is the one of --ssh-port, else a free one when a login is
    wanted at all: the user's key, or the run's tunnel

    :param bool tunnel: sshfs sharing with a box without our agent
    :param callable pick: finds a free port, free_port by default
    """
    wanted = bool(user_key) or tunnel
    port = requested_port or ((pick or free_port)() if wanted else 0)
    return LoginPlan(port=port, user_key=user_key, tunnel=tunnel)


def public_keys(output: str) -> List[str]:
    """
    The public keys in the output of 'ssh-keygen -y', as 'type base64'
    (comments dropped); anything else is ignored
    """
    keys = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 2 and re.fullmatch(r'[\w@.-]+', fields[0]) \
                and is_base64(fields[1]):
            keys.append(f'{fields[0]} {fields[1]}')
    return keys


def authorized_keys_text(box_keys: Sequence[str]) -> str:
    """
    What the run's sshd takes from the box: the published boxes' key
    and the keys the box holds, each restricted to what sftp needs (the
    sshd forces sftp in its sandbox anyway)
    """
    keys = list(dict.fromkeys([PUBLISHED_BOX_KEY] + list(box_keys)))
    return ''.join(f'restrict {key}\n' for key in keys)


def write_authorized_keys(path: str, box_keys: Sequence[str]) -> None:
    """
    Replace the file whole: the sshd reads it at every connection
    """
    temporary = f'{path}.new'
    with open(temporary, 'w') as handle:
        handle.write(authorized_keys_text(box_keys))
    os.replace(temporary, path)


def ssh_argv(ssh: str, port: int, identity: str, known_hosts: str) -> List[str]:
    """
    ssh as root into the box with the run's key alone: no config, keys
    or agent of the user, a known_hosts of the run (the box's host key
    is new with every copy of the box)
    """
    return [
        ssh, '-F', '/dev/null', '-i', identity, '-p', str(port),
        '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes',
        '-o', f'UserKnownHostsFile={known_hosts}', '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', 'StrictHostKeyChecking=accept-new', '-o', 'UpdateHostKeys=no',
        '-o', 'ControlPath=none', '-o', 'ConnectTimeout=30',
        '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4',
        '-o', 'LogLevel=ERROR', 'root@127.0.0.1'
    ]


def setup_argv(ssh: str, port: int, identity: str, known_hosts: str) -> List[str]:
    return ssh_argv(ssh, port, identity, known_hosts) + ['-T', BOX_SETUP_SCRIPT]


def tunnel_argv(
    ssh: str, port: int, identity: str, known_hosts: str, socket_path: str
) -> List[str]:
    """
    The box's port 10000 forwarded to the run's sshd, held open

    :param str socket_path: the run's sshd; no white space (the
        RemoteForward value is split on it)
    """
    return ssh_argv(ssh, port, identity, known_hosts)[:-1] + [
        '-N', '-T', '-o', 'ExitOnForwardFailure=yes',
        '-o', f'RemoteForward={BOX_TUNNEL_PORT} {socket_path}', 'root@127.0.0.1'
    ]


def login_hint(port: int, key: LoginKey) -> str:
    """
    The line that tells the user how to log into the box
    """
    private = key.path[:-len('.pub')] if key.path.endswith('.pub') else key.path
    return (
        f'the box takes ssh logins as root on 127.0.0.1 port {port} once it runs: '
        f'ssh -p {port} -i {private} root@127.0.0.1'
    )


class BoxTunnel:
    """
    The run's login into a published box, in a thread: the setup
    login, then the tunnel, opened again if it drops, until stopped

    The ssh processes are started from the thread and end with it (the
    parent death signal follows the starting thread), and with boxbuild.
    """
    def __init__(
        self, port: int, runtime_dir: str, end: TunnelEnd, user_key: Optional[LoginKey]
    ) -> None:
        self.ssh = find_program('ssh', 'openssh-client', PURPOSE)
        self.port = port
        self.runtime_dir = runtime_dir
        self.end = end
        self.identity = os.path.join(runtime_dir, 'login_identity')
        self.known_hosts = os.path.join(runtime_dir, 'box_known_hosts')
        self.user_keys = os.path.join(runtime_dir, 'login_user_keys')
        with open(self.user_keys, 'w') as handle:
            handle.write(f'{user_key.line} kiwi-boxed-user\n' if user_key else '')
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.hold, name='box-tunnel', daemon=True)

    def hold(self) -> None:
        began = time.monotonic()
        told = False
        while not self.stopping.is_set():
            problem = self.set_up()
            if not problem:
                break
            if not told and time.monotonic() - began > PATIENCE_SECONDS:
                log.warning(
                    f'no login into the box on 127.0.0.1 port {self.port} yet, '
                    f'still trying: {problem}'
                )
                told = True
            self.stopping.wait(RETRY_SECONDS)
        while not self.stopping.is_set():
            log_path = os.path.join(self.runtime_dir, 'tunnel.log')
            code = self.run(
                tunnel_argv(
                    self.ssh, self.port, self.identity, self.known_hosts,
                    self.end.socket_path
                ), os.devnull, os.devnull, log_path, 0
            )
            if code is not None and not self.stopping.is_set():
                # a box that powers off ends it too: no news for the user
                log.debug(
                    f'the sshfs tunnel into the box ended ({last_line(read_text(log_path))}): '
                    'opening it again'
                )
                self.stopping.wait(RETRY_SECONDS)

    def set_up(self) -> str:
        """
        One setup login: the user's key authorized, the box's keys
        authorized for the run's sshd

        :return: '' when done, else what went wrong
        """
        output = os.path.join(self.runtime_dir, 'login.out')
        errors = os.path.join(self.runtime_dir, 'login.log')
        code = self.run(
            setup_argv(self.ssh, self.port, self.identity, self.known_hosts),
            self.user_keys, output, errors, ATTEMPT_SECONDS
        )
        if code is None:
            return f'no answer within {ATTEMPT_SECONDS} s'
        if code != 0:
            return last_line(read_text(errors)) or f'ssh ended with exit code {code}'
        box_keys = public_keys(read_text(output))
        write_authorized_keys(self.end.authorized_keys, box_keys)
        log.info(
            f'logged into the box: its sshfs reaches the run\'s sshd with '
            f'{len(box_keys)} key(s) of its own or the published boxes\' key'
        )
        return ''

    def run(
        self, argv: Sequence[str], stdin: str, stdout: str, stderr: str, timeout: float
    ) -> Optional[int]:
        """
        Run an ssh until it ends, the timeout passes (0: none) or the
        tunnel is stopped

        :return: its exit code, None when stopped or timed out
        """
        with open(stdin, 'rb') as source, open(stdout, 'wb') as output, \
                open(stderr, 'wb') as errors:
            process = subprocess.Popen(
                list(argv), stdin=source, stdout=output, stderr=errors,
                start_new_session=True, preexec_fn=parent_death_signal(signal.SIGKILL)
            )
        ends = time.monotonic() + timeout if timeout else 0
        while process.poll() is None:
            if self.stopping.wait(POLL_SECONDS) or (ends and time.monotonic() > ends):
                process.kill()
                process.wait()
                return None
        return process.returncode

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


@contextmanager
def box_login(
    plan: LoginPlan, runtime_dir: str, end: Optional[TunnelEnd]
) -> Iterator[Optional[LoginKey]]:
    """
    The logins of a box run for the with-block

    :param TunnelEnd end: the run's sshd, for plan.tunnel
    :return: the key the job gives the box as ssh_key: the run's key
        for the tunnel, else the user's, or None
    """
    if plan.user_key:
        log.info(login_hint(plan.port, plan.user_key))
    elif plan.tunnel:
        log.info(f'the run logs into the box through 127.0.0.1 port {plan.port} for sshfs')
    elif plan.port:
        log.info(f'the box\'s ssh port is forwarded from 127.0.0.1 port {plan.port}')
    if not (plan.tunnel and end):
        yield plan.user_key
        return
    tunnel = BoxTunnel(plan.port, runtime_dir, end, plan.user_key)
    generate_key(find_program('ssh-keygen', 'openssh-client', PURPOSE), tunnel.identity)
    with open(f'{tunnel.identity}.pub') as public:
        fields = public.read().split()
    tunnel.thread.start()
    try:
        yield LoginKey(fields[0], fields[1], f'{tunnel.identity}.pub')
    finally:
        tunnel.stop()


def generate_key(ssh_keygen: str, path: str) -> None:
    """
    A key pair of the run, ed25519, which every supported box's sshd
    takes
    """
    subprocess.run(
        [ssh_keygen, '-q', '-t', 'ed25519', '-N', '', '-C', 'kiwi-boxbuild', '-f', path],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
