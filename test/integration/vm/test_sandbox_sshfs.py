"""
The sshd of --sshfs-sharing serves the shares and nothing else of the
host (issue 12, finding 1): the real sshd of a run, opened as root and
as a normal user, and the real sftp client with the run's key, which a
box holds; no VM needed. For a published box the same, through the
unix socket its tunnel reaches, with the box's key authorized as the
run's login into the box authorizes it.
"""
import json
import os
import pwd
import shlex
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List

import pytest

from harness.unprivileged import kiwi_ng_for
from kiwi_boxed_plugin.box_login import public_keys, write_authorized_keys

pytestmark = pytest.mark.integration

ODD_NAME = "a b 'q' $(touch X)"
SECRET = 'not for the box\n'

# Opens the sshfs sharing of a run for the shares of argv (for our
# agent's box or, with 'published', for a published box), says where
# its key and port or socket are, and serves until its stdin closes
SERVE = '''
import json, sys
from kiwi_boxed_plugin.shares import box_shares, private_runtime_dir, sshfs_sharing
with private_runtime_dir() as runtime_dir:
    with sshfs_sharing(
        box_shares(*sys.argv[1:4]), runtime_dir, runs_agent=sys.argv[4] != 'published'
    ) as setup:
        print(json.dumps({
            'runtime_dir': runtime_dir, 'port': setup.ssh_port, 'remotes': setup.remotes,
            'socket': setup.tunnel.socket_path if setup.tunnel else '',
            'authorized_keys': setup.tunnel.authorized_keys if setup.tunnel else '',
        }), flush=True)
        sys.stdin.read()
'''
# What the box's tunnel does for sftp: stdin and stdout to the socket
CONNECT = '''
import os, socket, sys, threading
connection = socket.socket(socket.AF_UNIX)
connection.connect(sys.argv[1])
def upstream():
    for data in iter(lambda: os.read(0, 65536), b''):
        connection.sendall(data)
    connection.shutdown(socket.SHUT_WR)
threading.Thread(target=upstream, daemon=True).start()
for data in iter(lambda: connection.recv(65536), b''):
    os.write(1, data)
'''


@dataclass(frozen=True)
class Served:
    """
    A run's sshd as the box sees it: its port, the run's key and the
    remote of each share
    """
    port: int
    identity: str
    remotes: Dict[str, str]
    socket: str = ''

    @property
    def login(self) -> str:
        return self.remotes['kiwibundle'].split(':')[0].replace('10.0.2.2', '127.0.0.1')

    @property
    def connection(self) -> List[str]:
        """
        How sftp reaches the sshd: its port, or its socket
        """
        if not self.socket:
            return ['-P', str(self.port)]
        return [
            '-o', 'ProxyCommand=' + shlex.join([sys.executable, '-c', CONNECT, self.socket])
        ]

    def path(self, tag: str) -> str:
        return self.remotes[tag].split(':', 1)[1].rstrip('/')

    def sftp(self, *commands: str) -> subprocess.CompletedProcess:
        """
        One sftp session with the run's key, as the box would open it;
        the batch stops at the first command that fails
        """
        completed = subprocess.run(
            [
                'sftp', '-b', '-', '-i', self.identity, *self.connection,
                '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', self.login
            ],
            input='\n'.join(commands) + '\n', stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=60
        )
        print(completed.stdout)
        return completed


@dataclass(frozen=True)
class Layout:
    """
    The host side: the shares, a dir beside them, the user's home
    """
    description: str
    target: str
    shared: str
    beside: str
    home: str


@contextmanager
def served(
    user: pwd.struct_passwd, python: str, layout: Layout, box: str = 'ours'
) -> Iterator[Served]:
    """
    The sshfs sharing of a run of user for the layout's shares

    :param str box: 'published': for a box without our agent; the
        box's own key is made here and authorized as the run's login
        does it
    """
    process = subprocess.Popen(
        [python, '-c', SERVE, layout.description, layout.target, layout.shared, box],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, user=user.pw_uid,
        group=user.pw_gid, extra_groups=[], cwd='/'
    )
    try:
        assert process.stdout is not None
        opened = json.loads(process.stdout.readline())
        if box != 'published':
            yield Served(
                opened['port'], os.path.join(opened['runtime_dir'], 'box_identity'),
                opened['remotes']
            )
            return
        assert opened['port'] == 0
        # the box's baked key, as the run's login reads it from the box
        identity = os.path.join(os.path.dirname(layout.beside), 'box_baked_key')
        subprocess.run(
            ['ssh-keygen', '-q', '-t', 'rsa', '-N', '', '-f', identity], check=True
        )
        with open(f'{identity}.pub') as public:
            write_authorized_keys(opened['authorized_keys'], public_keys(public.read()))
        yield Served(0, identity, opened['remotes'], opened['socket'])
    finally:
        process.communicate(timeout=60)
    assert process.returncode == 0


def host_layout(workdir: str, user: pwd.struct_passwd) -> Layout:
    """
    Shares with odd names and a file in each, a secret beside them,
    and a link in the target to the secret dir, as a build can plant
    """
    layout = Layout(
        *(os.path.join(workdir, f'{name} {ODD_NAME}') for name in ('desc', 'target', 'shared')),
        beside=os.path.join(workdir, 'beside'), home=user.pw_dir
    )
    for directory in (layout.description, layout.target, layout.shared, layout.beside):
        os.makedirs(directory)
        os.chown(directory, user.pw_uid, user.pw_gid)
    for directory, content in (
        (layout.description, 'read from the description\n'), (layout.beside, SECRET)
    ):
        with open(os.path.join(directory, 'file.txt'), 'w') as handle:
            handle.write(content)
    os.symlink(layout.beside, os.path.join(layout.target, 'planted-link'))
    return layout


def read(path):
    with open(path) as handle:
        return handle.read()


def assert_only_the_shares(served_run: Served, layout: Layout, workdir: str) -> None:
    local = os.path.join(workdir, 'local')
    os.makedirs(local)
    upload = os.path.join(local, 'upload.txt')
    with open(upload, 'w') as handle:
        handle.write('written over sftp\n')
    bundle = served_run.path('kiwibundle')
    description = served_run.path('kiwidescription')

    # the shares: list, read and write the bundle and the shared path,
    # read the description
    assert served_run.sftp(
        f'ls {bundle}', f'put {upload} {bundle}/from-sftp.txt',
        f'put {upload} {served_run.path("custompath")}/from-sftp.txt',
        f'get {description}/file.txt {local}/description.txt'
    ).returncode == 0
    assert read(os.path.join(layout.target, 'from-sftp.txt')) == 'written over sftp\n'
    assert read(os.path.join(layout.shared, 'from-sftp.txt')) == 'written over sftp\n'
    assert read(os.path.join(local, 'description.txt')) == 'read from the description\n'

    # nothing else of the host: its passwd, the user's home, a dir
    # beside the shares, directly or through a link planted in a share
    fetched = os.path.join(local, 'passwd')
    served_run.sftp(f'get /etc/passwd {fetched}')
    assert not os.path.exists(fetched) or read(fetched) != read('/etc/passwd')
    for path in (layout.home, layout.beside, '/var', '/tmp', f'{bundle}/planted-link/'):
        assert served_run.sftp(f'ls {path}').returncode != 0, path
    for path in (f'{layout.beside}/file.txt', f'{bundle}/planted-link/file.txt'):
        assert served_run.sftp(f'get {path} {local}/secret.txt').returncode != 0, path
    assert not os.path.exists(os.path.join(local, 'secret.txt'))
    listing = served_run.sftp('ls -1 /').stdout.split()
    for name in ('home', 'root', 'var', 'tmp', 'boot', 'proc', 'sys'):
        assert f'/{name}' not in listing and name not in listing

    # the description is read-only
    assert served_run.sftp(f'put {upload} {description}/planted.txt').returncode != 0
    assert served_run.sftp(f'rm {description}/file.txt').returncode != 0
    assert os.listdir(layout.description) == ['file.txt']
    # no command runs but sftp-server, in its sandbox
    for place in (workdir, layout.description, layout.target, '/'):
        assert not os.path.exists(os.path.join(place, 'X'))


def test_root_run_serves_only_the_shares(workdir):
    root = pwd.getpwuid(0)
    layout = host_layout(workdir, root)
    with served(root, os.path.join(os.path.dirname(kiwi_ng_for('root')), 'python'),
                layout) as served_run:
        assert_only_the_shares(served_run, layout, workdir)


def test_user_run_serves_only_the_shares(workdir, unprivileged_user):
    layout = host_layout(workdir, unprivileged_user)
    python = os.path.join(os.path.dirname(kiwi_ng_for(unprivileged_user.pw_name)), 'python')
    with served(unprivileged_user, python, layout) as served_run:
        assert served_run.login.startswith(f'{unprivileged_user.pw_name}@')
        assert_only_the_shares(served_run, layout, workdir)


def test_published_box_root_run_serves_only_the_shares(workdir):
    root = pwd.getpwuid(0)
    layout = host_layout(workdir, root)
    with served(root, os.path.join(os.path.dirname(kiwi_ng_for('root')), 'python'),
                layout, box='published') as served_run:
        assert served_run.login == 'root@localhost'
        assert_only_the_shares(served_run, layout, workdir)
    assert not os.path.exists(served_run.socket)


def test_published_box_user_run_serves_only_the_shares(workdir, unprivileged_user):
    layout = host_layout(workdir, unprivileged_user)
    python = os.path.join(os.path.dirname(kiwi_ng_for(unprivileged_user.pw_name)), 'python')
    with served(unprivileged_user, python, layout, box='published') as served_run:
        assert served_run.login == f'{unprivileged_user.pw_name}@localhost'
        assert_only_the_shares(served_run, layout, workdir)
