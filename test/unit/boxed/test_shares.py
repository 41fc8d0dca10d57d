import os
import stat

import pytest

from kiwi_boxed_plugin.exceptions import (
    KiwiBoxRequestError,
    KiwiBoxShareError,
    KiwiBoxToolMissingError,
)
from kiwi_boxed_plugin.shares import (
    LoginKey,
    Share,
    box_shares,
    common_kernel_args,
    find_program,
    find_virtiofsd,
    fuse_option_value,
    ninep_qemu_args,
    ninep_sharing,
    open_sharing,
    port_attempts,
    private_runtime_dir,
    qemu_option_value,
    read_login_key,
    sshd_config,
    sshfs_kernel_args,
    start_sshd,
    virtiofs_qemu_args,
    virtiofsd_argv,
)

SHARES = [Share('kiwidescription', '/src/desc'), Share('kiwibundle', '/out/target')]


def test_box_shares():
    assert box_shares('/d', '/t', '') == [
        Share('kiwidescription', '/d'), Share('kiwibundle', '/t')
    ]
    assert box_shares('/d', '/t', '/srv')[-1] == Share('custompath', '/srv')


def test_common_kernel_args():
    assert common_kernel_args('9p', '') == ['sharing_backend=_9p_']
    assert common_kernel_args('sshfs', '/srv/x') == [
        'sharing_backend=_sshfs_', 'custom_mount=_/srv/x_'
    ]


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

    def test_sharing(self):
        with ninep_sharing(SHARES, 'pci', '/srv') as setup:
            assert setup.kernel_args == ('sharing_backend=_9p_', 'custom_mount=_/srv_')
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
        with pytest.raises(KiwiBoxToolMissingError, match='--9p-sharing'):
            find_virtiofsd()


class TestSshfs:
    def test_kernel_args(self):
        assert sshfs_kernel_args(
            SHARES + [Share('custompath', '/srv')], '/tmp/run/shares', 'alice', 40022,
            '/srv', None
        ) == [
            'sharing_backend=_sshfs_', 'custom_mount=_/srv_',
            'host_kiwidescription=_alice@10.0.2.2:/tmp/run/shares/kiwidescription/_',
            'host_kiwibundle=_alice@10.0.2.2:/tmp/run/shares/kiwibundle/_',
            'host_custompath=_alice@10.0.2.2:/tmp/run/shares/custompath/_',
            'kiwi_ssh_port=_40022_',
        ]

    def test_kernel_args_with_login_key(self):
        arguments = sshfs_kernel_args(
            SHARES, '/r', 'bob', 4000, '', LoginKey('ssh-ed25519', 'AAAAC3Nz')
        )
        assert arguments[-2:] == ['ssh_key=_AAAAC3Nz_', 'ssh_key_type=_ssh-ed25519_']

    def test_sshd_config_is_locked_down(self):
        config = sshd_config('/tmp/run', 40022, 'alice').splitlines()
        for line in (
            'ListenAddress 127.0.0.1:40022', 'AllowUsers alice',
            'PasswordAuthentication no', 'ForceCommand internal-sftp',
            'AuthorizedKeysFile /tmp/run/authorized_keys', 'HostKey /tmp/run/host_key',
            'AllowTcpForwarding no',
        ):
            assert line in config

    def test_port_attempts(self):
        assert port_attempts(2222, lambda: 1) == [2222]
        ports = iter([3001, 3002, 3003, 3004, 3005])
        assert port_attempts(0, lambda: next(ports)) == [3001, 3002, 3003, 3004, 3005]

    def test_read_login_key_by_name(self, tmp_path):
        (tmp_path / 'id_ed25519.pub').write_text('ssh-ed25519 AAAAC3Nz me@host\n')
        assert read_login_key('id_ed25519', str(tmp_path)) == LoginKey(
            'ssh-ed25519', 'AAAAC3Nz'
        )

    def test_read_login_key_by_path(self, tmp_path):
        (tmp_path / 'key.pub').write_text('ssh-rsa AAAAB3Nz\n')
        assert read_login_key(str(tmp_path / 'key'), '/nowhere').key_type == 'ssh-rsa'

    def test_login_key_missing(self, tmp_path):
        with pytest.raises(KiwiBoxRequestError, match='not found'):
            read_login_key('id_none', str(tmp_path))

    def test_login_key_not_a_key(self, tmp_path):
        (tmp_path / 'id_bad.pub').write_text('-----BEGIN OPENSSH PRIVATE KEY-----\n')
        with pytest.raises(KiwiBoxRequestError, match='not an ssh public key'):
            read_login_key('id_bad', str(tmp_path))

    def test_find_program_missing(self, mocker):
        mocker.patch('shutil.which', return_value=None)
        with pytest.raises(KiwiBoxToolMissingError, match='install openssh-server'):
            find_program('sshd', 'openssh-server', 'for --sshfs-sharing')

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
        assert start_sshd(stack, '/usr/sbin/sshd', str(tmp_path), 'alice', 0) == 3002
        assert attempts == [3001, 3002]

    def test_start_sshd_other_failure(self, mocker, tmp_path):
        def fake_helper(argv, log_path, ready_text):
            open(log_path, 'w').write('fatal: bad config\n')
            raise KiwiBoxShareError('sshd ended')
        mocker.patch('kiwi_boxed_plugin.shares.helper_process', side_effect=fake_helper)
        with pytest.raises(KiwiBoxShareError):
            start_sshd(mocker.MagicMock(), '/usr/sbin/sshd', str(tmp_path), 'alice', 2222)

    def test_start_sshd_requested_port_taken(self, mocker, tmp_path):
        def fake_helper(argv, log_path, ready_text):
            open(log_path, 'w').write('Address already in use\n')
            raise KiwiBoxShareError('sshd ended')
        mocker.patch('kiwi_boxed_plugin.shares.helper_process', side_effect=fake_helper)
        with pytest.raises(KiwiBoxShareError, match='port 2222 taken: give a free one'):
            start_sshd(mocker.MagicMock(), '/usr/sbin/sshd', str(tmp_path), 'alice', 2222)


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
    with open_sharing('virtiofs', SHARES, 'pci', '', '/run'):
        pass
    virtiofs.assert_called_once_with(SHARES, 'pci', '', '/run')
    with open_sharing('sshfs', SHARES, 'pci', '', '/run', 2222, None):
        pass
    sshfs.assert_called_once_with(SHARES, '', '/run', 2222, None)
    with open_sharing('9p', SHARES, 'pci', '', '/run') as setup:
        assert setup.kernel_args == ('sharing_backend=_9p_',)
