import pwd
import sys

import pytest

from kiwi_boxed_plugin.exceptions import KiwiBoxShareError
from kiwi_boxed_plugin.sftp_sandbox import (
    SandboxBind,
    check_sandbox,
    find_sftp_server,
    loaded_files,
    sandbox_argv,
    sftp_sandbox,
)
from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError

# ldd of Debian 12's sftp-server
LDD_SFTP_SERVER = '''\
\tlinux-vdso.so.1 (0x00007ffd6a1f2000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f10ad863000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f10ada8c000)
'''
SERVER_FILES = [
    '/usr/lib/openssh/sftp-server', '/lib/x86_64-linux-gnu/libc.so.6',
    '/lib64/ld-linux-x86-64.so.2'
]
BINDS = [
    SandboxBind('/run/x/shares/kiwidescription', '/kiwidescription', read_only=True),
    SandboxBind('/run/x/shares/kiwibundle', '/kiwibundle', read_only=False),
]


def binds(argv):
    """
    The (option, source, destination) of every bind of a bwrap call
    """
    return [
        tuple(argv[index:index + 3]) for index, word in enumerate(argv)
        if word in ('--bind', '--ro-bind', '--dev-bind')
    ]


def option_values(argv, name):
    return [argv[index + 1] for index, word in enumerate(argv) if word == name]


class TestSandbox:
    def test_sees_the_binds_and_what_sftp_server_needs_only(self):
        argv = sandbox_argv('/usr/bin/bwrap', SERVER_FILES, '/run/x/passwd', BINDS)
        assert argv[0] == '/usr/bin/bwrap' and argv[-1] == '/usr/lib/openssh/sftp-server'
        assert binds(argv) == [
            ('--ro-bind', '/run/x/shares/kiwidescription', '/kiwidescription'),
            ('--bind', '/run/x/shares/kiwibundle', '/kiwibundle'),
            ('--ro-bind', '/usr/lib/openssh/sftp-server', '/usr/lib/openssh/sftp-server'),
            ('--ro-bind', '/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6'),
            ('--ro-bind', '/lib64/ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2'),
            ('--ro-bind', '/run/x/passwd', '/etc/passwd'),
            ('--dev-bind', '/dev/null', '/dev/null'),
        ]
        # the root is an empty tmpfs of bwrap's, read-only once the binds are made
        assert argv[-5:-3] == ['--remount-ro', '/']

    def test_own_namespaces_and_file_capabilities_only(self):
        argv = sandbox_argv('bwrap', SERVER_FILES, '/p', BINDS)
        for flag in ('--unshare-net', '--unshare-pid', '--unshare-ipc', '--die-with-parent'):
            assert flag in argv
        assert option_values(argv, '--cap-drop') == ['ALL']
        assert option_values(argv, '--cap-add') == [
            'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID'
        ]

    def test_loaded_files(self):
        assert loaded_files(LDD_SFTP_SERVER) == SERVER_FILES[1:]
        assert loaded_files('\tnot a dynamic executable\n') == []

    def test_sftp_server_found(self, mocker):
        mocker.patch('os.access', side_effect=lambda path, mode: 'libexec' in path)
        assert find_sftp_server() == '/usr/libexec/openssh/sftp-server'

    def test_sftp_server_missing(self, mocker):
        mocker.patch('os.access', return_value=False)
        with pytest.raises(KiwiPluginToolMissingError, match='install openssh-sftp-server'):
            find_sftp_server()

    def test_sandbox_that_does_not_start(self):
        sandbox = [sys.executable, '-c', 'import sys; sys.exit("bwrap: No permissions")']
        with pytest.raises(KiwiBoxShareError, match='does not start: bwrap: No permissions'):
            check_sandbox(sandbox)

    def test_the_users_line_in_passwd_and_a_probe(self, mocker, tmp_path):
        mocker.patch(
            'kiwi_boxed_plugin.sftp_sandbox.sandbox_tools',
            return_value=('/usr/bin/bwrap', '/usr/lib/openssh/sftp-server', '/usr/bin/ldd')
        )
        mocker.patch(
            'kiwi_boxed_plugin.sftp_sandbox.program_files', return_value=SERVER_FILES
        )
        check = mocker.patch('kiwi_boxed_plugin.sftp_sandbox.check_sandbox')
        account = pwd.struct_passwd(
            ('alice', 'x', 1000, 100, '', '/home/alice', '/bin/bash')
        )
        argv = sftp_sandbox(str(tmp_path), account, BINDS)
        assert (tmp_path / 'passwd').read_text() == 'alice:x:1000:100::/:/nonexistent\n'
        assert ('--ro-bind', f'{tmp_path}/passwd', '/etc/passwd') in binds(argv)
        check.assert_called_once_with(argv)
