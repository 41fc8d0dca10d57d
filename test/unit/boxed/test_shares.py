import os
import pwd
import stat
import sys

import pytest

from kiwi_boxed_plugin.box_network import Forwards
from kiwi_boxed_plugin.exceptions import KiwiBoxRequestError, KiwiBoxShareError
from kiwi_boxed_plugin import read_only_view
from kiwi_boxed_plugin.qemu import qemu_option_value
from kiwi_boxed_plugin.box_login import PUBLISHED_BOX_KEY, TunnelEnd
from kiwi_boxed_plugin.shares import (
    Share,
    ShareSetup,
    box_shares,
    check_backend_tools,
    find_virtiofsd,
    fuse_option_value,
    ninep_qemu_args,
    ninep_sharing,
    open_sharing,
    port_attempts,
    private_runtime_dir,
    read_only_view_tools,
    sshd_config,
    sshfs_remotes,
    sshfs_sharing,
    start_sshd,
    virtiofs_qemu_args,
    virtiofsd_argv,
)
from kiwi_boxed_plugin.sftp_sandbox import SandboxBind
from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError

USER = pwd.getpwuid(os.geteuid()).pw_name
SHARES = [Share('kiwidescription', '/src/desc'), Share('kiwibundle', '/out/target')]


def test_box_shares():
    assert box_shares('/d', '/t', '') == [
        Share('kiwidescription', '/d', read_only=True), Share('kiwibundle', '/t')
    ]
    assert box_shares('/d', '/t', '/srv')[-1] == Share('custompath', '/srv')


@pytest.mark.parametrize('value,qemu,fuse', [
    ('/plain', '/plain', '/plain'),
    ('/a,b', '/a,,b', '/a\\,b'),
    ('/a\\b', '/a\\b', '/a\\\\b'),
    ('/a b/$(touch X)', '/a b/$(touch X)', '/a b/$(touch X)'),
])
def test_option_escaping(value, qemu, fuse):
    assert qemu_option_value(value) == qemu
    assert fuse_option_value(value) == fuse


class TestNinep:
    def test_qemu_args(self):
        assert ninep_qemu_args([Share('kiwibundle', '/a,b c')], 'pci') == [
            '-fsdev', 'local,id=fs_kiwibundle,path=/a,,b c,security_model=mapped-xattr',
            '-device', 'virtio-9p-pci,fsdev=fs_kiwibundle,mount_tag=kiwibundle'
        ]

    def test_ccw_bus(self):
        assert ninep_qemu_args(SHARES, 'ccw')[3].startswith('virtio-9p-ccw,')

    def test_read_only_share(self):
        assert ninep_qemu_args([Share('kiwidescription', '/d', read_only=True)], 'pci')[1] == (
            'local,id=fs_kiwidescription,path=/d,security_model=mapped-xattr,readonly=on'
        )

    def test_description_is_read_only(self):
        arguments = ninep_qemu_args(box_shares('/d', '/t', '/srv'), 'pci')
        assert [argument for argument in arguments if 'readonly' in argument] == [
            'local,id=fs_kiwidescription,path=/d,security_model=mapped-xattr,readonly=on'
        ]

    def test_sharing(self):
        with ninep_sharing(SHARES, 'pci') as setup:
            assert setup.remotes == {} and setup.ssh_port == 0
            assert len(setup.qemu_args) == 8
            assert not setup.shared_memory


class TestVirtiofs:
    def test_rust_dialect(self):
        assert virtiofsd_argv('/usr/libexec/virtiofsd', 'usage: --shared-dir <DIR>', 5, '/a,b') == [
            '/usr/libexec/virtiofsd', '--fd=5', '--shared-dir', '/a,b', '--cache', 'never'
        ]

    def test_c_dialect(self):
        assert virtiofsd_argv('/usr/lib/qemu/virtiofsd', '-o source=PATH', 7, '/a,b') == [
            '/usr/lib/qemu/virtiofsd', '--fd=7', '-o', 'source=/a\\,b', '-o', 'cache=none'
        ]

    def test_rust_read_only_mode(self):
        assert virtiofsd_argv(
            '/usr/libexec/virtiofsd', 'usage: --shared-dir <DIR> --readonly', 5, '/d', True
        ) == [
            '/usr/libexec/virtiofsd', '--fd=5', '--shared-dir', '/d', '--cache', 'never',
            '--readonly'
        ]

    def test_c_read_only_view(self):
        # the C virtiofsd has no read-only mode: it serves a read-only
        # bind mount in a mount namespace of its own
        daemon = [
            '/usr/lib/qemu/virtiofsd', '--fd=7', '-o', 'source=/a\\,b', '-o', 'cache=none'
        ]
        assert virtiofsd_argv(
            '/usr/lib/qemu/virtiofsd', '-o source=PATH', 7, '/a,b', True,
            ('/usr/bin/unshare', '/usr/bin/mount')
        ) == [
            '/usr/bin/unshare', '--mount', '--propagation', 'private', '--',
            sys.executable, read_only_view.__file__, '/usr/bin/mount', '/a,b'
        ] + daemon
        assert read_only_view.view_mounts('/usr/bin/mount', '/a,b') == [
            ['/usr/bin/mount', '--bind', '/a,b', '/a,b'],
            ['/usr/bin/mount', '-o', 'remount,bind,ro', '/a,b'],
        ]

    def test_view_tools(self, mocker):
        assert read_only_view_tools('--shared-dir --readonly') == ()
        mocker.patch('os.geteuid', return_value=0)
        mocker.patch('shutil.which', side_effect=lambda name, path: f'/usr/bin/{name}')
        assert read_only_view_tools('-o source=PATH') == ('/usr/bin/unshare', '/usr/bin/mount')

    def test_view_needs_root(self, mocker):
        mocker.patch('os.geteuid', return_value=1000)
        with pytest.raises(KiwiBoxShareError, match='read-only view .* needs root.*--9p-sharing'):
            read_only_view_tools('-o source=PATH')

    def test_qemu_args(self):
        assert virtiofs_qemu_args('kiwibundle', '/run/x,y/kiwibundle.sock', 'pci') == [
            '-chardev', 'socket,id=vfs_kiwibundle,path=/run/x,,y/kiwibundle.sock',
            '-device', 'vhost-user-fs-pci,chardev=vfs_kiwibundle,tag=kiwibundle'
        ]

    def test_find_on_path(self, mocker):
        mocker.patch('shutil.which', return_value='/usr/bin/virtiofsd')
        assert find_virtiofsd() == '/usr/bin/virtiofsd'

    def test_find_in_libexec(self, mocker):
        mocker.patch('shutil.which', return_value=None)
        mocker.patch('os.access', side_effect=lambda path, mode: path == '/usr/lib/qemu/virtiofsd')
        assert find_virtiofsd() == '/usr/lib/qemu/virtiofsd'

    def test_missing(self, mocker):
        mocker.patch('shutil.which', return_value=None)
        mocker.patch('os.access', return_value=False)
        with pytest.raises(KiwiPluginToolMissingError, match='--9p-sharing'):
            find_virtiofsd()


class TestSshfs:
    def test_remotes_are_the_sandbox_paths(self):
        shares = SHARES + [Share('custompath', "/a b/'q'/$(touch X)")]
        assert sshfs_remotes(shares, 'alice', '10.0.2.2') == {
            'kiwidescription': 'alice@10.0.2.2:/kiwidescription',
            'kiwibundle': 'alice@10.0.2.2:/kiwibundle',
            'custompath': 'alice@10.0.2.2:/custompath',
        }
        assert sshfs_remotes(SHARES, 'alice', 'localhost')['kiwibundle'] == \
            'alice@localhost:/kiwibundle'

    def test_sshd_config_is_locked_down(self):
        config = sshd_config(
            '/tmp/run', 40022, 'alice', "/usr/bin/bwrap --bind '/a b' /kiwibundle sftp-server"
        ).splitlines()
        for line in (
            'ListenAddress 127.0.0.1:40022', 'AllowUsers alice',
            'PasswordAuthentication no',
            "ForceCommand /usr/bin/bwrap --bind '/a b' /kiwibundle sftp-server",
            "Subsystem sftp /usr/bin/bwrap --bind '/a b' /kiwibundle sftp-server",
            'AuthorizedKeysFile /tmp/run/authorized_keys', 'HostKey /tmp/run/host_key',
            'AllowTcpForwarding no',
        ):
            assert line in config
        assert not [line for line in config if 'internal-sftp' in line]

    def test_sshd_config_of_a_socket_listens_on_no_port(self):
        config = sshd_config('/tmp/run', 0, 'alice', 'sftp-server').splitlines()
        assert not [line for line in config if line.startswith('ListenAddress')]
        assert 'ForceCommand sftp-server' in config and 'AllowUsers alice' in config

    @pytest.fixture
    def fake_tools(self, mocker):
        def generate_key(ssh_keygen, path):
            open(path, 'w').close()
            with open(f'{path}.pub', 'w') as public:
                public.write('ssh-ed25519 AAAA kiwi-boxbuild\n')
        mocker.patch('kiwi_boxed_plugin.shares.find_program', side_effect=lambda name, *a: name)
        mocker.patch('kiwi_boxed_plugin.shares.generate_key', side_effect=generate_key)
        return mocker.patch(
            'kiwi_boxed_plugin.shares.sftp_sandbox', return_value=['bwrap', "/a b/'q'", 'x']
        )

    def test_sharing_serves_the_shares_from_the_sandbox(self, mocker, tmp_path, fake_tools):
        start = mocker.patch('kiwi_boxed_plugin.shares.start_sshd', return_value=40022)
        shares = box_shares('/src/desc', '/out/target', '')
        with sshfs_sharing(shares, str(tmp_path)) as setup:
            assert setup.ssh_port == 40022
            assert setup.forwards == Forwards(to_host=(40022,))
            assert setup.remotes['kiwidescription'].endswith('@10.0.2.2:/kiwidescription')
            assert setup.tunnel is None
            assert setup.qemu_args[0] == '-fw_cfg'
        links = tmp_path / 'shares'
        assert fake_tools.call_args[0][2] == [
            SandboxBind(f'{links}/kiwidescription', '/kiwidescription', read_only=True),
            SandboxBind(f'{links}/kiwibundle', '/kiwibundle', read_only=False),
        ]
        assert os.readlink(links / 'kiwidescription') == '/src/desc'
        # sshd runs it through the user's shell
        assert start.call_args[0][-1] == "bwrap '/a b/'\"'\"'q'\"'\"'' x"
        assert (tmp_path / 'authorized_keys').read_text() == (
            'restrict,from="127.0.0.1" ssh-ed25519 AAAA kiwi-boxbuild\n'
        )

    def test_published_box_gets_a_socket_served_sshd(self, mocker, tmp_path, fake_tools):
        start = mocker.patch('kiwi_boxed_plugin.shares.start_sshd')
        service = mocker.patch('kiwi_boxed_plugin.shares.socket_service')
        service.return_value.__enter__.return_value = f'{tmp_path}/sshd.socket'
        shares = box_shares('/src/desc', '/out/target', '')
        with sshfs_sharing(shares, str(tmp_path), runs_agent=False) as setup:
            assert setup == ShareSetup(
                remotes={
                    'kiwidescription': f'{USER}@localhost:/kiwidescription',
                    'kiwibundle': f'{USER}@localhost:/kiwibundle',
                },
                tunnel=TunnelEnd(f'{tmp_path}/sshd.socket', f'{tmp_path}/authorized_keys')
            )
        start.assert_not_called()
        socket_path, argv, _ = service.call_args[0]
        assert socket_path == f'{tmp_path}/sshd.socket'
        assert argv == ['sshd', '-i', '-e', '-f', f'{tmp_path}/sshd_config']
        config = (tmp_path / 'sshd_config').read_text()
        assert 'ListenAddress' not in config
        assert "ForceCommand bwrap '/a b/'" in config
        # no key of the run for the box: it logs in with its baked one
        assert not (tmp_path / 'box_identity').exists()
        assert (tmp_path / 'authorized_keys').read_text() == f'restrict {PUBLISHED_BOX_KEY}\n'

    def test_port_attempts(self):
        ports = iter([3001, 3002, 3003, 3004, 3005])
        assert port_attempts(lambda: next(ports)) == [3001, 3002, 3003, 3004, 3005]

    def test_tools_missing(self, mocker):
        mocker.patch('shutil.which', return_value=None)
        with pytest.raises(KiwiPluginToolMissingError, match='install openssh-server'):
            check_backend_tools('sshfs')

    def test_start_sshd_tries_another_port(self, mocker, tmp_path):
        attempts = []

        def fake_helper(argv, log_path, ready_text):
            port = int(open(argv[-1]).read().split('127.0.0.1:')[1].split()[0])
            attempts.append(port)
            if port == 3001:
                open(log_path, 'w').write(
                    'Bind to port 3001 on 127.0.0.1 failed: Address already in use.\n'
                )
                raise KiwiBoxShareError('sshd ended')
            return mocker.MagicMock()
        mocker.patch('kiwi_boxed_plugin.shares.helper_process', side_effect=fake_helper)
        mocker.patch(
            'kiwi_boxed_plugin.shares.free_port', side_effect=[3001, 3002, 3003, 3004, 3005]
        )
        stack = mocker.MagicMock()
        assert start_sshd(stack, '/usr/sbin/sshd', str(tmp_path), 'alice', 'sftp') == 3002
        assert attempts == [3001, 3002]

    def test_start_sshd_other_failure(self, mocker, tmp_path):
        def fake_helper(argv, log_path, ready_text):
            open(log_path, 'w').write('fatal: bad config\n')
            raise KiwiBoxShareError('sshd ended')
        mocker.patch('kiwi_boxed_plugin.shares.helper_process', side_effect=fake_helper)
        with pytest.raises(KiwiBoxShareError, match='sshd ended'):
            start_sshd(mocker.MagicMock(), '/usr/sbin/sshd', str(tmp_path), 'alice', 'sftp')

    def test_start_sshd_every_port_taken(self, mocker, tmp_path):
        def fake_helper(argv, log_path, ready_text):
            open(log_path, 'w').write('Address already in use\n')
            raise KiwiBoxShareError('sshd ended')
        mocker.patch('kiwi_boxed_plugin.shares.helper_process', side_effect=fake_helper)
        mocker.patch('kiwi_boxed_plugin.shares.free_port', side_effect=range(3001, 3006))
        with pytest.raises(KiwiBoxShareError, match='3001, 3002, 3003, 3004, 3005 taken'):
            start_sshd(mocker.MagicMock(), '/usr/sbin/sshd', str(tmp_path), 'alice', 'sftp')


class TestRuntimeDir:
    def test_private_and_removed(self):
        with private_runtime_dir() as runtime_dir:
            assert stat.S_IMODE(os.stat(runtime_dir).st_mode) == 0o700
        assert not os.path.exists(runtime_dir)

    def test_white_space_refused(self, tmp_path, monkeypatch):
        spaced = tmp_path / 'a b'
        spaced.mkdir()
        monkeypatch.setenv('TMPDIR', str(spaced))
        monkeypatch.setattr('tempfile.tempdir', None)
        with pytest.raises(KiwiBoxRequestError, match='TMPDIR'):
            with private_runtime_dir():
                pass


def test_open_sharing_dispatch(mocker):
    virtiofs = mocker.patch('kiwi_boxed_plugin.shares.virtiofs_sharing')
    sshfs = mocker.patch('kiwi_boxed_plugin.shares.sshfs_sharing')
    with open_sharing('virtiofs', SHARES, 'pci', '/run'):
        pass
    virtiofs.assert_called_once_with(SHARES, 'pci', '/run')
    with open_sharing('sshfs', SHARES, 'pci', '/run', runs_agent=False):
        pass
    sshfs.assert_called_once_with(SHARES, '/run', False)
    with open_sharing('9p', SHARES, 'pci', '/run') as setup:
        assert setup.qemu_args[0] == '-fsdev'


class TestBackendTools:
    def test_9p_needs_nothing(self, mocker):
        which = mocker.patch('shutil.which', return_value=None)
        check_backend_tools('9p')
        which.assert_not_called()

    def test_virtiofs(self, mocker):
        find = mocker.patch('kiwi_boxed_plugin.shares.find_virtiofsd')
        mocker.patch('kiwi_boxed_plugin.shares.virtiofsd_help', return_value='--readonly')
        check_backend_tools('virtiofs')
        find.assert_called_once_with()

    def test_virtiofs_read_only_needs_root(self, mocker):
        mocker.patch('kiwi_boxed_plugin.shares.find_virtiofsd')
        mocker.patch('kiwi_boxed_plugin.shares.virtiofsd_help', return_value='-o source=PATH')
        mocker.patch('os.geteuid', return_value=1000)
        with pytest.raises(KiwiBoxShareError, match='needs root'):
            check_backend_tools('virtiofs')

    def test_sshfs(self, mocker):
        find = mocker.patch('kiwi_boxed_plugin.shares.find_program')
        sandbox = mocker.patch('kiwi_boxed_plugin.shares.sandbox_tools')
        check_backend_tools('sshfs')
        assert [call[0][0] for call in find.call_args_list] == ['sshd', 'ssh-keygen', 'ssh']
        sandbox.assert_called_once_with()

    def test_sshfs_without_bubblewrap(self, mocker):
        mocker.patch(
            'shutil.which', side_effect=lambda name, path: None if name == 'bwrap' else name
        )
        with pytest.raises(KiwiPluginToolMissingError, match='install bubblewrap'):
            check_backend_tools('sshfs')
