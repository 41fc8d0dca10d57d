"""
The host directories a box sees: description, target (bundle) and an
optional extra path, shared through 9p, virtiofs or sshfs.

Each backend is a context manager that yields the qemu arguments and
the parts of the job it needs, and stops its helpers on the way out.
"""
import base64
import logging
import os
import pwd
import socket
import subprocess
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from kiwi_boxed_plugin.agent.kiwi_box_protocol import (
    SSH_IDENTITY_FW_CFG,
    TAG_BUNDLE,
    TAG_CUSTOM,
    TAG_DESCRIPTION,
)
from kiwi_boxed_plugin.exceptions import KiwiBoxRequestError, KiwiBoxShareError
from kiwi_boxed_plugin.helper_process import helper_process
from kiwi_boxed_plugin.qemu import qemu_option_value
from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError
from kiwi_plugin_support.host import find_program, free_port
from kiwi_plugin_support.text import read_text

log = logging.getLogger('kiwi')

# Where Debian, Fedora and openSUSE install virtiofsd outside of PATH
VIRTIOFSD_LOCATIONS = (
    '/usr/libexec/virtiofsd', '/usr/lib/qemu/virtiofsd', '/usr/lib/virtiofsd'
)
# qemu's user network shows the host's loopback to the box at this address
HOST_FROM_BOX = '10.0.2.2'
# Tries when sshd finds its free port taken in the meantime
SSHD_PORT_ATTEMPTS = 5


@dataclass(frozen=True)
class Share:
    """
    A host directory and the mount tag the box agent knows it by
    """
    tag: str
    host_path: str


@dataclass(frozen=True)
class ShareSetup:
    """
    What a sharing backend adds to the qemu call and to the job

    :param bool shared_memory: the box memory must be shareable
        (vhost-user devices map it)
    :param tuple netdev_options: extra options of the user network
    :param dict remotes: sshfs: mount tag -> 'user@host:/path'
    :param int ssh_port: sshfs: the port of the run's sshd
    """
    qemu_args: Tuple[str, ...]
    shared_memory: bool = False
    netdev_options: Tuple[str, ...] = field(default=())
    remotes: Dict[str, str] = field(default_factory=dict)
    ssh_port: int = 0


def box_shares(description: str, target_dir: str, shared_path: str) -> List[Share]:
    shares = [Share(TAG_DESCRIPTION, description), Share(TAG_BUNDLE, target_dir)]
    if shared_path:
        shares.append(Share(TAG_CUSTOM, shared_path))
    return shares


def fuse_option_value(value: str) -> str:
    """
    A value for a FUSE style -o list: backslash and comma escaped
    """
    return value.replace('\\', '\\\\').replace(',', '\\,')


def ninep_qemu_args(shares: Sequence[Share], bus: str) -> List[str]:
    """
    mapped-xattr keeps root owned files, chown and device nodes working
    in the box whoever runs qemu
    """
    arguments: List[str] = []
    for share in shares:
        arguments += [
            '-fsdev',
            f'local,id=fs_{share.tag},path={qemu_option_value(share.host_path)},'
            'security_model=mapped-xattr',
            '-device', f'virtio-9p-{bus},fsdev=fs_{share.tag},mount_tag={share.tag}'
        ]
    return arguments


@contextmanager
def ninep_sharing(shares: Sequence[Share], bus: str) -> Iterator[ShareSetup]:
    """
    9p needs no helper: qemu serves the directories itself
    """
    yield ShareSetup(qemu_args=tuple(ninep_qemu_args(shares, bus)))


def find_virtiofsd() -> str:
    """
    :raises KiwiPluginToolMissingError: naming what to install
    """
    try:
        return find_program(
            'virtiofsd', 'virtiofsd (Debian 12: qemu-system-common), or use --9p-sharing',
            'for --virtiofs-sharing'
        )
    except KiwiPluginToolMissingError:
        for location in VIRTIOFSD_LOCATIONS:
            if os.access(location, os.X_OK):
                return location
        raise


def check_backend_tools(backend: str) -> None:
    """
    Fail before any download if the backend's host tools are missing

    :raises KiwiPluginToolMissingError: naming what to install
    """
    if backend == 'virtiofs':
        find_virtiofsd()
    elif backend == 'sshfs':
        find_program('sshd', 'openssh-server', 'for --sshfs-sharing')
        find_program('ssh-keygen', 'openssh-client', 'for --sshfs-sharing')


def virtiofsd_argv(binary: str, help_text: str, descriptor: int, source: str) -> List[str]:
    """
    The daemon for one share, in the dialect of the installed virtiofsd

    The Rust virtiofsd takes --shared-dir; the C one of qemu up to 8.0
    takes FUSE style '-o source='. Both get the listening socket as a
    descriptor, so it exists before the daemon runs.
    """
    if '--shared-dir' in help_text:
        return [
            binary, f'--fd={descriptor}', '--shared-dir', source, '--cache', 'never'
        ]
    return [
        binary, f'--fd={descriptor}', '-o', f'source={fuse_option_value(source)}',
        '-o', 'cache=none'
    ]


def virtiofs_qemu_args(tag: str, socket_path: str, bus: str) -> List[str]:
    return [
        '-chardev', f'socket,id=vfs_{tag},path={qemu_option_value(socket_path)}',
        '-device', f'vhost-user-fs-{bus},chardev=vfs_{tag},tag={tag}'
    ]


@contextmanager
def virtiofs_sharing(
    shares: Sequence[Share], bus: str, runtime_dir: str
) -> Iterator[ShareSetup]:
    """
    One virtiofsd per share, each serving a socket of runtime_dir
    """
    binary = find_virtiofsd()
    help_text = subprocess.run(
        [binary, '--help'], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT
    ).stdout.decode(errors='replace')
    qemu_args: List[str] = []
    with ExitStack() as stack:
        for share in shares:
            socket_path = os.path.join(runtime_dir, f'{share.tag}.sock')
            listener = stack.enter_context(
                socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            )
            listener.bind(socket_path)
            listener.listen(1)
            stack.enter_context(helper_process(
                virtiofsd_argv(binary, help_text, listener.fileno(), share.host_path),
                os.path.join(runtime_dir, f'virtiofsd.{share.tag}.log'),
                'Waiting for vhost-user socket connection',
                pass_fds=[listener.fileno()]
            ))
            qemu_args += virtiofs_qemu_args(share.tag, socket_path, bus)
        yield ShareSetup(qemu_args=tuple(qemu_args), shared_memory=True)


@dataclass(frozen=True)
class LoginKey:
    """
    A public key of the user's ~/.ssh, for logging into the box
    """
    key_type: str
    key: str


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
                return LoginKey(fields[0], fields[1])
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


def sshfs_remotes(shares: Sequence[Share], link_dir: str, user: str) -> Dict[str, str]:
    """
    The box mounts user@10.0.2.2:<link>/ for each share; the links in
    the run's private dir point at the real paths, so paths with white
    space or quotes never reach the command line. The trailing slash
    makes the server follow the link: sshfs checks its root with lstat.
    """
    return {
        share.tag: f'{user}@{HOST_FROM_BOX}:{os.path.join(link_dir, share.tag)}/'
        for share in shares
    }


def sshd_config(runtime_dir: str, port: int, user: str) -> str:
    """
    An sshd for this run only: loopback, one user, one key, sftp only
    """
    return '\n'.join([
        f'ListenAddress 127.0.0.1:{port}',
        f'HostKey {os.path.join(runtime_dir, "host_key")}',
        f'AuthorizedKeysFile {os.path.join(runtime_dir, "authorized_keys")}',
        f'AllowUsers {user}',
        'AuthenticationMethods publickey',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'UsePAM no',
        'PidFile none',
        # the run's private dir sits in the world writable /tmp, which
        # StrictModes refuses although the dir itself is 0700
        'StrictModes no',
        'Subsystem sftp internal-sftp',
        'ForceCommand internal-sftp',
        'AllowTcpForwarding no',
        'X11Forwarding no',
        'PermitTTY no',
        ''
    ])


def port_attempts(requested: int, pick: Callable[[], int]) -> List[int]:
    """
    The ports to try for the run's sshd: the one the user asked for,
    or a few free ones (another run may take a free port between the
    probe and sshd's bind)
    """
    if requested:
        return [requested]
    return [pick() for _ in range(SSHD_PORT_ATTEMPTS)]


def generate_key(ssh_keygen: str, path: str) -> None:
    subprocess.run(
        [ssh_keygen, '-q', '-t', 'ed25519', '-N', '', '-C', 'kiwi-boxbuild', '-f', path],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )


@contextmanager
def sshfs_sharing(
    shares: Sequence[Share], runtime_dir: str, requested_port: int,
    login_key: Optional[LoginKey]
) -> Iterator[ShareSetup]:
    """
    An sshd of the invoking user on 127.0.0.1, authorizing only a key
    pair made for this run; the private key reaches the box through
    qemu's firmware config, never through a file the box could share
    """
    sshd = find_program('sshd', 'openssh-server', 'for --sshfs-sharing')
    ssh_keygen = find_program('ssh-keygen', 'openssh-client', 'for --sshfs-sharing')
    # not getpass.getuser(): USER and LOGNAME may name someone else
    # after su or sudo; sshd serves the real owner of this process
    user = pwd.getpwuid(os.geteuid()).pw_name
    identity = os.path.join(runtime_dir, 'box_identity')
    generate_key(ssh_keygen, identity)
    generate_key(ssh_keygen, os.path.join(runtime_dir, 'host_key'))
    with open(f'{identity}.pub') as public:
        box_key = public.read().strip()
    with open(os.path.join(runtime_dir, 'authorized_keys'), 'w') as authorized:
        # the box comes in through qemu's user network, i.e. from loopback
        authorized.write(f'restrict,from="127.0.0.1" {box_key}\n')
    link_dir = os.path.join(runtime_dir, 'shares')
    os.mkdir(link_dir)
    for share in shares:
        os.symlink(share.host_path, os.path.join(link_dir, share.tag))
    if os.geteuid() == 0:
        # sshd run by root insists on its privilege separation dir,
        # which the distribution's service creates at boot
        os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
    login_port = free_port() if login_key else 0
    with ExitStack() as stack:
        port = start_sshd(stack, sshd, runtime_dir, user, requested_port)
        if login_key:
            log.info(
                f'the box will take ssh logins on 127.0.0.1 port {login_port} '
                'with your key once it runs'
            )
        yield ShareSetup(
            qemu_args=(
                '-fw_cfg',
                f'name={SSH_IDENTITY_FW_CFG},file={qemu_option_value(identity)}'
            ),
            netdev_options=(
                (f'hostfwd=tcp:127.0.0.1:{login_port}-:22',) if login_key else ()
            ),
            remotes=sshfs_remotes(shares, link_dir, user),
            ssh_port=port
        )


def start_sshd(
    stack: ExitStack, sshd: str, runtime_dir: str, user: str, requested_port: int
) -> int:
    """
    Start the run's sshd on the stack

    :return: the port it listens on
    :raises KiwiBoxShareError: if it does not start
    """
    config_path = os.path.join(runtime_dir, 'sshd_config')
    log_path = os.path.join(runtime_dir, 'sshd.log')
    ports = port_attempts(requested_port, free_port)
    for port in ports:
        with open(config_path, 'w') as config:
            config.write(sshd_config(runtime_dir, port, user))
        try:
            stack.enter_context(helper_process(
                [sshd, '-D', '-e', '-f', config_path], log_path, 'Server listening on'
            ))
            return port
        except KiwiBoxShareError:
            if 'Address already in use' not in read_text(log_path):
                raise
            log.info(f'port {port} was taken meanwhile: trying another one')
    raise KiwiBoxShareError(
        f"the sshd of --sshfs-sharing found port {', '.join(map(str, ports))} taken: "
        'give a free one with --ssh-port'
    )


@contextmanager
def private_runtime_dir() -> Iterator[str]:
    """
    A directory only this run can enter, for sockets, keys and helper
    logs; short and in the system temp dir because unix socket paths
    are limited to 107 bytes

    :raises KiwiBoxRequestError: if TMPDIR holds white space, which the
        box protocol cannot carry (sshfs paths)
    """
    with tempfile.TemporaryDirectory(prefix='kiwi-boxbuild-') as runtime_dir:
        if any(character.isspace() for character in runtime_dir):
            raise KiwiBoxRequestError(
                f'temporary dir {runtime_dir} contains white space: set TMPDIR '
                'to a path without it'
            )
        yield runtime_dir


@contextmanager
def open_sharing(
    backend: str, shares: Sequence[Share], bus: str, runtime_dir: str,
    ssh_port: int = 0, login_key: Optional[LoginKey] = None
) -> Iterator[ShareSetup]:
    """
    Share the directories with the chosen backend for the with-block
    """
    if backend == 'virtiofs':
        sharing = virtiofs_sharing(shares, bus, runtime_dir)
    elif backend == 'sshfs':
        sharing = sshfs_sharing(shares, runtime_dir, ssh_port, login_key)
    else:
        sharing = ninep_sharing(shares, bus)
    with sharing as setup:
        yield setup
