import os

import pytest

from kiwi_boxed_plugin.box_network import (
    Forwards,
    box_network,
    check_network_tools,
    check_resolver,
    first_nameserver,
    network_mode,
    passt_argv,
    passt_network,
    pasta_argv,
    podman_network,
    telling_line,
)
from kiwi_boxed_plugin.container import create_argv
from kiwi_boxed_plugin.exceptions import KiwiBoxNetworkError, KiwiBoxShareError
from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError

SSHFS = Forwards(to_host=(40022,), to_box=((40023, 22),))


def option_values(argv, name):
    return [argv[index + 1] for index, word in enumerate(argv) if word == name]


class TestMode:
    def test_isolated_by_default(self):
        assert network_mode({}) == 'isolated'
        assert network_mode({'KIWI_BOXED_NETWORK': ''}) == 'isolated'

    def test_host_on_request(self):
        assert network_mode({'KIWI_BOXED_NETWORK': 'host'}) == 'host'

    def test_unknown(self):
        with pytest.raises(KiwiBoxNetworkError, match="'open' is not a box network"):
            network_mode({'KIWI_BOXED_NETWORK': 'open'})

    def test_container_network(self):
        assert podman_network('isolated') == 'bridge'
        assert podman_network('host') == 'host'
        argv = create_argv(['podman'], 'n', 'image', [], False, 'isolated')
        assert option_values(argv, '--network') == ['bridge']
        argv = create_argv(['podman'], 'n', 'image', [], False, 'host')
        assert option_values(argv, '--network') == ['host']

    def test_tools(self, mocker):
        mocker.patch('shutil.which', return_value=None)
        check_network_tools('host')
        with pytest.raises(
            KiwiPluginToolMissingError, match='KIWI_BOXED_NETWORK=host.*install passt'
        ):
            check_network_tools('isolated')


class TestPasta:
    def test_only_the_forwarded_ports_of_the_host_loopback(self):
        argv = pasta_argv('/usr/bin/pasta', SSHFS, as_root=False)
        assert '--no-map-gw' in argv and '--config-net' in argv
        assert option_values(argv, '--tcp-ns') == ['40022']
        assert option_values(argv, '--udp-ns') == ['none']
        assert option_values(argv, '--tcp-ports') == ['127.0.0.1/40023']
        assert option_values(argv, '--udp-ports') == ['none']
        assert '--runas' not in argv

    def test_nothing_forwarded(self):
        argv = pasta_argv('pasta', Forwards(), as_root=False)
        # pasta's default for these lists is every bound port
        assert option_values(argv, '--tcp-ns') == ['none']
        assert option_values(argv, '--tcp-ports') == ['none']

    def test_root(self):
        argv = pasta_argv('pasta', Forwards(), as_root=True)
        assert argv[1:4] == ['--runas', '0', '--netns-only']


class TestPasst:
    def test_the_addresses_of_qemus_user_network(self):
        argv = passt_argv('passt', '/run/x/passt.socket', SSHFS, False)
        assert option_values(argv, '--socket') == ['/run/x/passt.socket']
        assert option_values(argv, '--address') == ['10.0.2.15']
        assert option_values(argv, '--netmask') == ['24']
        assert option_values(argv, '--gateway') == ['10.0.2.2']
        assert option_values(argv, '--dns-forward') == ['10.0.2.3']
        assert option_values(argv, '--tcp-ports') == ['40023:22']
        assert '--one-off' in argv
        # the gateway is the loopback of pasta's namespace
        assert '--no-map-gw' not in argv
        # with a resolver named, this passt forwards no name queries
        assert '--dns' not in argv

    def test_root(self):
        argv = passt_argv('passt', '/s', Forwards(), True)
        assert option_values(argv, '--tcp-ports') == ['none']
        assert argv[1:3] == ['--runas', '0']


class TestResolver:
    def test_first_nameserver(self):
        assert first_nameserver(
            '# comment\nsearch lan\nnameserver\nnameserver 192.0.2.53\nnameserver ::1\n'
        ) == '192.0.2.53'
        assert first_nameserver('search lan\n') == ''

    def test_resolver_out_of_reach(self, tmp_path, caplog):
        stub = tmp_path / 'resolv.conf'
        stub.write_text('nameserver 127.0.0.53\nnameserver 192.0.2.53\n')
        check_resolver(str(stub))
        assert 'will not resolve host names' in caplog.text
        assert '127.0.0.53' in caplog.text and 'KIWI_BOXED_NETWORK=host' in caplog.text

    def test_resolver_in_reach(self, tmp_path, caplog):
        resolv_conf = tmp_path / 'resolv.conf'
        resolv_conf.write_text('nameserver 192.0.2.53\n')
        check_resolver(str(resolv_conf))
        check_resolver(str(tmp_path / 'missing'))
        assert caplog.text == ''


class TestBoxNetwork:
    def test_host_network_is_qemus_user_network(self, tmp_path):
        with box_network('host', SSHFS, str(tmp_path)) as netdev:
            assert netdev == 'user,id=net,hostfwd=tcp:127.0.0.1:40023-:22'

    def test_isolated_network_is_passt(self, mocker, tmp_path):
        helper = mocker.patch('kiwi_boxed_plugin.box_network.helper_process')

        def ready(*args):
            (tmp_path / 'passt.socket').touch()
            return mocker.MagicMock()
        helper.side_effect = ready
        with box_network('isolated', SSHFS, str(tmp_path)) as netdev:
            assert netdev == (
                f'stream,id=net,server=off,addr.type=unix,addr.path={tmp_path}/passt.socket'
            )
        argv, log_path, ready_text = helper.call_args[0]
        assert os.path.basename(argv[0]) == 'pasta'
        # passt dies with pasta
        separator = argv.index('--')
        assert os.path.basename(argv[separator + 1]) == 'setpriv'
        assert argv[separator + 2:separator + 5] == ['--pdeathsig', 'KILL', '--']
        assert os.path.basename(argv[separator + 5]) == 'passt'
        assert ready_text == 'You can now start qemu'

    def test_helpers_that_do_not_start(self, mocker, tmp_path):
        def fails(argv, log_path, ready_text):
            with open(log_path, 'w') as log:
                log.write(
                    "Couldn't create user namespace: Operation not permitted\n"
                    'Failed to send 55 bytes to syslog\n'
                )
            raise KiwiBoxShareError('pasta ended')
        mocker.patch('kiwi_boxed_plugin.box_network.helper_process', side_effect=fails)
        with pytest.raises(KiwiBoxNetworkError, match=(
            "did not start: Couldn't create user namespace: Operation not permitted; "
            'set KIWI_BOXED_NETWORK=host'
        )):
            with passt_network(Forwards(), str(tmp_path)):
                pass

    def test_socket_missing(self, mocker, tmp_path):
        mocker.patch('kiwi_boxed_plugin.box_network.helper_process')
        with pytest.raises(KiwiBoxNetworkError, match='passt did not create its socket'):
            with passt_network(Forwards(), str(tmp_path)):
                pass

    def test_telling_line(self):
        assert telling_line('a\nFailed to send 3 bytes to syslog\n\n') == 'a'
        assert telling_line('') == '(no output)'


def test_forwards_with_login():
    sshd = Forwards(to_host=(40022,))
    assert sshd.with_login(0, 22) == sshd
    assert sshd.with_login(41000, 22) == Forwards(to_host=(40022,), to_box=((41000, 22),))
