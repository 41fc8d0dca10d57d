"""
The host directories a box sees: description, target (bundle) and an
optional extra path, shared through 9p, virtiofs or sshfs.

Each backend is a context manager that yields the qemu arguments and
the parts of the job it needs, and stops its helpers on the way out.
"""
import logging
import os
import pwd
import shlex
import socket
import subprocess
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from kiwi_boxed_plugin.agent.kiwi_box_protocol import (
    SSH_IDENTITY_FW_CFG,
    TAG_BUNDLE,
    TAG_CUSTOM,
    TAG_DESCRIPTION,
)
from kiwi_boxed_plugin.box_login import TunnelEnd, generate_key, write_authorized_keys
from kiwi_boxed_plugin.box_network import HOST_FROM_BOX, Forwards
from kiwi_boxed_plugin.exceptions import KiwiBoxRequestError, KiwiBoxShareError
from kiwi_boxed_plugin.helper_process import helper_process
from kiwi_boxed_plugin.leftovers import run_dir
from kiwi_boxed_plugin.qemu import qemu_option_value
from kiwi_boxed_plugin.read_only_view import read_only_view_argv
from kiwi_boxed_plugin.sftp_sandbox import SandboxBind, sandbox_tools, sftp_sandbox
from kiwi_boxed_plugin.socket_service import socket_service
from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError
from kiwi_plugin_support.host import find_program, free_port
from kiwi_plugin_support.text import read_text

log = logging.getLogger('kiwi')

# Where Debian, Fedora and openSUSE install virtiofsd outside of PATH
VIRTIOFSD_LOCATIONS = (
    '/usr/libexec/virtiofsd', '/usr/lib/qemu/virtiofsd', '/usr/lib/virtiofsd'
)
# The Rust virtiofsd's read-only mode; the C virtiofsd of qemu has none
VIRTIOFSD_READ_ONLY = '--readonly'
# Tries when sshd finds its free port taken in the meantime
SSHD_PORT_ATTEMPTS = 5


@dataclass(frozen=True)
class Share:
    """
    A host directory and the mount tag the box agent knows it by

    :param bool read_only: the host serves it read-only, whatever the
        box does (root in the box can remount its side)
    """
    tag: str
    host_path: str
    read_only: bool = False


@dataclass(frozen=True)
class ShareSetup:
    """
    What a sharing backend adds to the qemu call and to the job

    :param bool shared_memory: the box memory must be shareable
        (vhost-user devices map it)
    :param Forwards forwards: the ports of the host's loopback the box
        reaches, or that reach the box
    :param dict remotes: sshfs: mount tag -> 'user@host:/path'
    :param int ssh_port: sshfs with our agent: the port of the run's
        sshd
    :param TunnelEnd tunnel: sshfs with a published box: the run's sshd
        that the box's port 10000 must be forwarded to (box_login)
    """
    qemu_args: Tuple[str, ...] = ()
    shared_memory: bool = False
    forwards: Forwards = Forwards()
    remotes: Dict[str, str] = field(default_factory=dict)
    ssh_port: int = 0
    tunnel: Optional[TunnelEnd] = None


def box_shares(description: str, target_dir: str, shared_path: str) -> List[Share]:
    """
    The description read-only: a build must not change the user's
    checkout (a rewritten .git/config runs code at the next git call)
    """
    shares = [
        Share(TAG_DESCRIPTION, description, read_only=True), Share(TAG_BUNDLE, target_dir)
    ]
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
            'security_model=mapped-xattr' + (',readonly=on' if share.read_only else ''),
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
    Fail before any download if the backend's host tools are missing,
    or cannot serve the description read-only

    :raises KiwiPluginToolMissingError: naming what to install
    :raises KiwiBoxShareError: if virtiofs needs root to serve it so
    """
    if backend == 'virtiofs':
        read_only_view_tools(virtiofsd_help(find_virtiofsd()))
    elif backend == 'sshfs':
        find_program('sshd', 'openssh-server', 'for --sshfs-sharing')
        find_program('ssh-keygen', 'openssh-client', 'for --sshfs-sharing')
        # a published box is reached through the run's login
        find_program('ssh', 'openssh-client', 'for --sshfs-sharing')
        sandbox_tools()


def virtiofsd_help(binary: str) -> str:
    """
    The --help of virtiofsd, which tells its dialect
    """
    return subprocess.run(
        [binary, '--help'], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT
    ).stdout.decode(errors='replace')


def read_only_view_tools(help_text: str) -> Tuple[str, ...]:
    """
    unshare and mount for a virtiofsd without a read-only mode, which
    serves a read-only share from a read-only view (read_only_view);
    none for a virtiofsd with one

    :raises KiwiBoxShareError: if the view cannot be had: it needs root
    :raises KiwiPluginToolMissingError: naming what to install
    """
    if VIRTIOFSD_READ_ONLY in help_text:
        return ()
    if os.geteuid() != 0:
        raise KiwiBoxShareError(
            'this virtiofsd cannot serve the description read-only, and a read-only '
            'view of it needs root: run as root, or use --9p-sharing'
        )
    purpose = 'for --virtiofs-sharing'
    return find_program('unshare', 'util-linux', purpose), find_program('mount', 'mount', purpose)


def virtiofsd_argv(
    binary: str, help_text: str, descriptor: int, source: str,
    read_only: bool = False, view_tools: Sequence[str] = ()
) -> List[str]:
    """
    The daemon for one share, in the dialect of the installed virtiofsd

    The Rust virtiofsd takes --shared-dir; the C one of qemu up to 8.0
    takes FUSE style '-o source='. Both get the listening socket as a
    descriptor, so it exists before the daemon runs. A read-only share
    takes the daemon's read-only mode, or without one (view_tools
    given) the daemon runs in a read-only view of the directory.
    """
    if '--shared-dir' in help_text:
        argv = [binary, f'--fd={descriptor}', '--shared-dir', source, '--cache', 'never']
    else:
        argv = [
            binary, f'--fd={descriptor}', '-o', f'source={fuse_option_value(source)}',
            '-o', 'cache=none'
        ]
    if not read_only:
        return argv
    if not view_tools:
        return argv + [VIRTIOFSD_READ_ONLY]
    unshare, mount = view_tools
    return read_only_view_argv(unshare, mount, source, argv)


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
    help_text = virtiofsd_help(binary)
    view_tools = read_only_view_tools(help_text)
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
                virtiofsd_argv(
                    binary, help_text, listener.fileno(), share.host_path,
                    share.read_only, view_tools
                ),
                os.path.join(runtime_dir, f'virtiofsd.{share.tag}.log'),
                'Waiting for vhost-user socket connection',
                pass_fds=[listener.fileno()]
            ))
            qemu_args += virtiofs_qemu_args(share.tag, socket_path, bus)
        yield ShareSetup(qemu_args=tuple(qemu_args), shared_memory=True)


def sandbox_path(share: Share) -> str:
    """
    Where the sandbox of sftp-server has a share
    """
    return f'/{share.tag}'


def sshfs_remotes(shares: Sequence[Share], user: str, host: str) -> Dict[str, str]:
    """
    The box mounts user@host:/<tag> for each share, where the sandbox of
    sftp-server has it: the host's paths, with white space or quotes,
    never reach the box's command line

    :param str host: where the box finds the run's sshd: HOST_FROM_BOX
        for our agent, localhost (the tunnel) for a published box
    """
    return {share.tag: f'{user}@{host}:{sandbox_path(share)}' for share in shares}


def sshd_config(runtime_dir: str, port: int, user: str, sftp_command: str) -> str:
    """
    An sshd for this run only: loopback, one user, the run's keys, sftp
    only, served by sftp_command: sftp-server in its sandbox

    sshd runs a command, forced or not, through the user's shell, so
    sftp_command is quoted for a shell. No chroot: an sshd run by a
    normal user cannot, the sandbox works for everyone.

    :param int port: of 127.0.0.1; 0 for an sshd served per connection
        on a unix socket ('sshd -i'), which listens on no port
    """
    return '\n'.join(([f'ListenAddress 127.0.0.1:{port}'] if port else []) + [
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
        f'Subsystem sftp {sftp_command}',
        f'ForceCommand {sftp_command}',
        'AllowTcpForwarding no',
        'X11Forwarding no',
        'PermitTTY no',
        ''
    ])


def port_attempts(pick: Callable[[], int]) -> List[int]:
    """
    The ports to try for the run's sshd: a few free ones (another run
    may take a free port between the probe and sshd's bind)
    """
    return [pick() for _ in range(SSHD_PORT_ATTEMPTS)]


@contextmanager
def sshfs_sharing(
    shares: Sequence[Share], runtime_dir: str, runs_agent: bool = True
) -> Iterator[ShareSetup]:
    """
    An sshd of the invoking user for this run only, serving only sftp
    in a sandbox of the shares

    For a box with our agent it listens on a free port of 127.0.0.1
    and authorizes only a key pair made for this run, whose private key
    reaches the box through qemu's firmware config, never through a
    file the box could share. A published box logs in with the key pair
    baked into it (see box_login): the sshd then listens on no port but
    on a unix socket of the run's private dir, which only the box
    reaches, through the tunnel of the run's login.

    :param bool runs_agent: the box runs our agent
    """
    sshd = find_program('sshd', 'openssh-server', 'for --sshfs-sharing')
    ssh_keygen = find_program('ssh-keygen', 'openssh-client', 'for --sshfs-sharing')
    # not getpass.getuser(): USER and LOGNAME may name someone else
    # after su or sudo; sshd serves the real owner of this process
    account = pwd.getpwuid(os.geteuid())
    user = account.pw_name
    generate_key(ssh_keygen, os.path.join(runtime_dir, 'host_key'))
    authorized_keys = os.path.join(runtime_dir, 'authorized_keys')
    link_dir = os.path.join(runtime_dir, 'shares')
    os.mkdir(link_dir)
    for share in shares:
        os.symlink(share.host_path, os.path.join(link_dir, share.tag))
    sandbox = shlex.join(sftp_sandbox(runtime_dir, account, [
        SandboxBind(os.path.join(link_dir, share.tag), sandbox_path(share), share.read_only)
        for share in shares
    ]))
    if os.geteuid() == 0:
        # sshd run by root insists on its privilege separation dir,
        # which the distribution's service creates at boot
        os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
    if not runs_agent:
        write_authorized_keys(authorized_keys, [])
        config_path = os.path.join(runtime_dir, 'sshd_config')
        with open(config_path, 'w') as config:
            config.write(sshd_config(runtime_dir, 0, user, sandbox))
        with socket_service(
            os.path.join(runtime_dir, 'sshd.socket'), [sshd, '-i', '-e', '-f', config_path],
            os.path.join(runtime_dir, 'sshd.log')
        ) as socket_path:
            yield ShareSetup(
                remotes=sshfs_remotes(shares, user, 'localhost'),
                tunnel=TunnelEnd(socket_path, authorized_keys)
            )
        return
    identity = os.path.join(runtime_dir, 'box_identity')
    generate_key(ssh_keygen, identity)
    with open(f'{identity}.pub') as public:
        box_key = public.read().strip()
    with open(authorized_keys, 'w') as authorized:
        # the box comes in through pasta or qemu's user network: from
        # the host's loopback either way
        authorized.write(f'restrict,from="127.0.0.1" {box_key}\n')
    with ExitStack() as stack:
        port = start_sshd(stack, sshd, runtime_dir, user, sandbox)
        yield ShareSetup(
            qemu_args=(
                '-fw_cfg',
                f'name={SSH_IDENTITY_FW_CFG},file={qemu_option_value(identity)}'
            ),
            forwards=Forwards(to_host=(port,)),
            remotes=sshfs_remotes(shares, user, HOST_FROM_BOX),
            ssh_port=port
        )


def start_sshd(
    stack: ExitStack, sshd: str, runtime_dir: str, user: str, sftp_command: str
) -> int:
    """
    Start the run's sshd on a free port, on the stack

    :param str sftp_command: what serves sftp, see sshd_config
    :return: the port it listens on
    :raises KiwiBoxShareError: if it does not start
    """
    config_path = os.path.join(runtime_dir, 'sshd_config')
    log_path = os.path.join(runtime_dir, 'sshd.log')
    ports = port_attempts(free_port)
    for port in ports:
        with open(config_path, 'w') as config:
            config.write(sshd_config(runtime_dir, port, user, sftp_command))
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
        f"the sshd of --sshfs-sharing found the free ports {', '.join(map(str, ports))} "
        'taken by others meanwhile: try again'
    )


@contextmanager
def private_runtime_dir() -> Iterator[str]:
    """
    A directory only this run can enter, for sockets, keys and helper
    logs; short and in the system temp dir because unix socket paths
    are limited to 107 bytes

    Its name carries the run's identity: if the run is killed, a later
    run removes it (with the key pair of sshfs sharing), see run_dir.

    :raises KiwiBoxRequestError: if TMPDIR holds white space, which the
        config of the sshd of sshfs sharing cannot carry
    """
    with run_dir() as runtime_dir:
        if any(character.isspace() for character in runtime_dir):
            raise KiwiBoxRequestError(
                f'temporary dir {runtime_dir} contains white space: set TMPDIR '
                'to a path without it'
            )
        yield runtime_dir


@contextmanager
def open_sharing(
    backend: str, shares: Sequence[Share], bus: str, runtime_dir: str,
    runs_agent: bool = True
) -> Iterator[ShareSetup]:
    """
    Share the directories with the chosen backend for the with-block

    :param bool runs_agent: the box runs our agent, see sshfs_sharing
    """
    if backend == 'virtiofs':
        sharing = virtiofs_sharing(shares, bus, runtime_dir)
    elif backend == 'sshfs':
        sharing = sshfs_sharing(shares, runtime_dir, runs_agent)
    else:
        sharing = ninep_sharing(shares, bus)
    with sharing as setup:
        yield setup
