import os
import socket
import stat
import sys
import time

import pytest

from kiwi_boxed_plugin import box_login as login_module
from kiwi_boxed_plugin.box_login import (
    BOX_SETUP_SCRIPT,
    PUBLISHED_BOX_KEY,
    LoginKey,
    LoginPlan,
    TunnelEnd,
    authorized_keys_text,
    box_login,
    login_hint,
    plan_login,
    public_keys,
    read_login_key,
    setup_argv,
    ssh_argv,
    tunnel_argv,
    write_authorized_keys,
)
from kiwi_boxed_plugin.exceptions import KiwiBoxRequestError
from kiwi_boxed_plugin.socket_service import socket_service

USER_KEY = LoginKey('ssh-ed25519', 'AAAAC3Nz', '/home/me/.ssh/id_ed25519.pub')


class TestLoginKey:
    def test_by_name(self, tmp_path):
        (tmp_path / 'id_ed25519.pub').write_text('ssh-ed25519 AAAAC3Nz me@host\n')
        assert read_login_key('id_ed25519', str(tmp_path)) == LoginKey(
            'ssh-ed25519', 'AAAAC3Nz', str(tmp_path / 'id_ed25519.pub')
        )

    def test_by_path(self, tmp_path):
        (tmp_path / 'key.pub').write_text('ssh-rsa AAAAB3Nz\n')
        assert read_login_key(str(tmp_path / 'key'), '/nowhere').key_type == 'ssh-rsa'

    def test_missing(self, tmp_path):
        with pytest.raises(KiwiBoxRequestError, match='not found'):
            read_login_key('id_none', str(tmp_path))

    def test_not_a_key(self, tmp_path):
        (tmp_path / 'id_bad.pub').write_text('-----BEGIN OPENSSH PRIVATE KEY-----\n')
        with pytest.raises(KiwiBoxRequestError, match='not an ssh public key'):
            read_login_key('id_bad', str(tmp_path))


class TestPlan:
    def test_no_login_wanted(self):
        assert plan_login(0, None, False, pick=lambda: 1 / 0) == LoginPlan()

    def test_user_key_gets_a_free_port(self):
        assert plan_login(0, USER_KEY, False, pick=lambda: 41000) == \
            LoginPlan(41000, USER_KEY, False)

    def test_tunnel_gets_a_free_port(self):
        assert plan_login(0, None, True, pick=lambda: 41001) == LoginPlan(41001, None, True)

    def test_given_port_wins(self):
        assert plan_login(2222, USER_KEY, True, pick=lambda: 1 / 0) == \
            LoginPlan(2222, USER_KEY, True)

    def test_given_port_alone_is_forwarded(self):
        # upstream forwards --ssh-port whatever else is given
        assert plan_login(2222, None, False).port == 2222


class TestKeys:
    def test_public_keys_of_ssh_keygen_output(self):
        output = (
            'ssh-rsa AAAAB3NzaC1yc2E= root@box\n'
            'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\n'
            'Load key "/root/.ssh/id_x": invalid format\n'
            'ecdsa-sha2-nistp256 AAAAE2VjZHNh comment with spaces\n'
            'rm -rf / not-base64!\n'
        )
        assert public_keys(output) == [
            'ssh-rsa AAAAB3NzaC1yc2E=', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5',
            'ecdsa-sha2-nistp256 AAAAE2VjZHNh',
        ]

    def test_authorized_keys_restricted(self):
        text = authorized_keys_text(['ssh-rsa AAAA', 'ssh-rsa AAAA'])
        assert text.splitlines() == [f'restrict {PUBLISHED_BOX_KEY}', 'restrict ssh-rsa AAAA']

    def test_published_key_is_the_documented_one(self):
        kind, body, comment = PUBLISHED_BOX_KEY.split(' ')
        assert (kind, comment) == ('ssh-rsa', 'kiwi@boxbuild')
        assert body.startswith('AAAAB3NzaC1yc2EAAAADAQABAAABgQCtiqDaYgEMkr7za7qc4i')
        assert body.endswith('dy04omiaJ8=') and len(body) == 544

    def test_write_replaces_whole(self, tmp_path):
        path = tmp_path / 'authorized_keys'
        path.write_text('old\n')
        write_authorized_keys(str(path), ['ssh-ed25519 AAAA'])
        assert path.read_text() == authorized_keys_text(['ssh-ed25519 AAAA'])
        assert os.listdir(tmp_path) == ['authorized_keys']


class TestArgv:
    def test_nothing_of_the_user(self):
        argv = ssh_argv('/usr/bin/ssh', 41000, '/run/k/id', '/run/k/known')
        assert argv[:3] == ['/usr/bin/ssh', '-F', '/dev/null']
        options = [argv[index + 1] for index, word in enumerate(argv) if word == '-o']
        for option in (
            'IdentitiesOnly=yes', 'IdentityAgent=none', 'BatchMode=yes',
            'UserKnownHostsFile=/run/k/known', 'GlobalKnownHostsFile=/dev/null',
            'StrictHostKeyChecking=accept-new',
        ):
            assert option in options
        assert argv[argv.index('-i') + 1] == '/run/k/id'
        assert argv[argv.index('-p') + 1] == '41000'
        assert argv[-1] == 'root@127.0.0.1'

    def test_setup_runs_the_script(self):
        argv = setup_argv('ssh', 41000, 'id', 'known')
        assert argv[-3:] == ['root@127.0.0.1', '-T', BOX_SETUP_SCRIPT]
        assert "ssh-keygen -R '[localhost]:10000'" in BOX_SETUP_SCRIPT
        assert 'cat >> /root/.ssh/authorized_keys' in BOX_SETUP_SCRIPT

    def test_tunnel_forwards_port_10000_to_the_socket(self):
        argv = tunnel_argv('ssh', 41000, 'id', 'known', '/tmp/run/sshd.socket')
        assert 'RemoteForward=10000 /tmp/run/sshd.socket' in argv
        assert 'ExitOnForwardFailure=yes' in argv
        assert '-N' in argv and argv[-1] == 'root@127.0.0.1'
        assert argv.count('root@127.0.0.1') == 1

    def test_login_hint(self):
        assert login_hint(41000, USER_KEY) == (
            'the box takes ssh logins as root on 127.0.0.1 port 41000 once it runs: '
            'ssh -p 41000 -i /home/me/.ssh/id_ed25519 root@127.0.0.1'
        )


class TestBoxLogin:
    def test_user_key_without_tunnel(self, tmp_path, caplog):
        with caplog.at_level('INFO', logger='kiwi'):
            with box_login(LoginPlan(41000, USER_KEY, False), str(tmp_path), None) as key:
                assert key == USER_KEY
        assert 'port 41000' in caplog.text
        assert os.listdir(tmp_path) == []

    def test_no_login(self, tmp_path):
        with box_login(LoginPlan(), str(tmp_path), None) as key:
            assert key is None

    def test_tunnel_logs_in_then_holds_the_tunnel(self, tmp_path, mocker):
        """
        A stand-in ssh records its calls: the setup login prints the
        box's key, the tunnel stays until stopped
        """
        fake_ssh = tmp_path / 'ssh'
        calls = tmp_path / 'calls'
        fake_ssh.write_text(
            f'#!{sys.executable}\n'
            'import sys, time\n'
            f'with open({str(calls)!r}, "a") as calls:\n'
            '    calls.write(" ".join(sys.argv[1:]) + "\\n")\n'
            'if "-N" in sys.argv:\n'
            '    time.sleep(600)\n'
            'else:\n'
            f'    open({str(tmp_path / "stdin")!r}, "w").write(sys.stdin.read())\n'
            '    print("ssh-rsa AAAABOXKEYs= root@box")\n'
        )
        fake_ssh.chmod(fake_ssh.stat().st_mode | stat.S_IEXEC)
        real_find = login_module.find_program
        mocker.patch(
            'kiwi_boxed_plugin.box_login.find_program',
            side_effect=lambda name, *rest: str(fake_ssh) if name == 'ssh'
            else real_find(name, *rest)
        )
        run_dir = tmp_path / 'run'
        run_dir.mkdir()
        end = TunnelEnd(str(run_dir / 'sshd.socket'), str(run_dir / 'authorized_keys'))
        with box_login(LoginPlan(41000, USER_KEY, True), str(run_dir), end) as key:
            assert key.path == f'{run_dir}/login_identity.pub'
            assert key.key_type == 'ssh-ed25519' and key != USER_KEY
            deadline = time.monotonic() + 30
            while (not calls.exists() or len(calls.read_text().splitlines()) < 2) \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            setup, tunnel = calls.read_text().splitlines()
            assert setup.endswith(BOX_SETUP_SCRIPT)
            assert f'RemoteForward=10000 {run_dir}/sshd.socket' in tunnel
            assert '-p 41000' in tunnel and f'-i {run_dir}/login_identity' in tunnel
            assert (tmp_path / 'stdin').read_text() == \
                'ssh-ed25519 AAAAC3Nz kiwi-boxed-user\n'
            assert (run_dir / 'authorized_keys').read_text() == \
                authorized_keys_text(['ssh-rsa AAAABOXKEYs='])
            started = time.monotonic()
        # the tunnel was stopped, not waited for
        assert time.monotonic() - started < 10

    def test_failing_login_is_retried_and_told(self, tmp_path, mocker, caplog):
        fake_ssh = tmp_path / 'ssh'
        fake_ssh.write_text(
            '#!/bin/sh\necho "connect to host 127.0.0.1 port 41000: Connection refused" >&2\n'
            'exit 255\n'
        )
        fake_ssh.chmod(fake_ssh.stat().st_mode | stat.S_IEXEC)
        real_find = login_module.find_program
        mocker.patch(
            'kiwi_boxed_plugin.box_login.find_program',
            side_effect=lambda name, *rest: str(fake_ssh) if name == 'ssh'
            else real_find(name, *rest)
        )
        mocker.patch.object(login_module, 'PATIENCE_SECONDS', 0)
        mocker.patch.object(login_module, 'RETRY_SECONDS', 0.1)
        end = TunnelEnd(str(tmp_path / 'sshd.socket'), str(tmp_path / 'authorized_keys'))
        with caplog.at_level('WARNING', logger='kiwi'):
            with box_login(LoginPlan(41000, None, True), str(tmp_path), end):
                deadline = time.monotonic() + 30
                while 'still trying' not in caplog.text and time.monotonic() < deadline:
                    time.sleep(0.1)
        assert 'no login into the box on 127.0.0.1 port 41000 yet, still trying: ' \
            'connect to host 127.0.0.1 port 41000: Connection refused' in caplog.text
        assert caplog.text.count('still trying') == 1
        assert not (tmp_path / 'authorized_keys').exists()


def test_socket_service_serves_each_connection(tmp_path):
    socket_path = str(tmp_path / 'service.socket')
    log_path = str(tmp_path / 'service.log')
    with socket_service(socket_path, ['cat'], log_path):
        for text in (b'first', b'second'):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(socket_path)
                client.sendall(text)
                client.shutdown(socket.SHUT_WR)
                assert client.recv(100) == text
        # one left open is ended with the service
        lingering = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lingering.connect(socket_path)
    lingering.settimeout(10)
    try:
        assert lingering.recv(100) == b''
    except ConnectionResetError:
        pass
    lingering.close()
    assert not os.path.exists(socket_path)
