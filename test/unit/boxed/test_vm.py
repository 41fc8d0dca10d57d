import os
import re
from contextlib import contextmanager
from dataclasses import replace

import pytest

from kiwi_boxed_plugin.accel import Accelerator
from kiwi_boxed_plugin.agent.kiwi_box_protocol import AGENT_MARK
from kiwi_boxed_plugin.box_login import LoginKey, LoginPlan, TunnelEnd
from kiwi_boxed_plugin.box_network import Forwards
from kiwi_boxed_plugin.console import SILENT, Limits, RunOutcome
from kiwi_boxed_plugin.shares import ShareSetup
from kiwi_boxed_plugin.vm import VmBoxBuild, fast_path_note

USER_KEY = LoginKey('ssh-ed25519', 'AAAAC3Nz', '/home/me/.ssh/id.pub')


class FakeFiles:
    def __init__(self, temp_dir):
        self.kernel = '/cache/kernel'
        self.initrd = '/cache/initrd'
        self.system_disk = '/cache/disk.qcow2'
        self.temp_dir = temp_dir


@pytest.fixture
def cache(mocker, tmp_path):
    temp_dir = tmp_path / 'cache-temp'
    temp_dir.mkdir()

    @contextmanager
    def use(box, arch, update_check=True):
        yield FakeFiles(str(temp_dir))
    fake = mocker.patch('kiwi_boxed_plugin.vm.BoxCache')
    fake.return_value.use.side_effect = use
    return fake


@pytest.fixture
def overlay(mocker):
    @contextmanager
    def snapshot(disk, temp_dir):
        yield os.path.join(temp_dir, 'overlay.qcow2')
    return mocker.patch('kiwi_boxed_plugin.vm.snapshot_overlay', side_effect=snapshot)


@pytest.fixture(autouse=True)
def network(mocker):
    """
    qemu's user network instead of passt and pasta, which are helpers
    of the integration tests
    """
    @contextmanager
    def fake_network(mode, forwards, runtime_dir):
        yield 'user,id=net'
    return mocker.patch('kiwi_boxed_plugin.vm.box_network', side_effect=fake_network)


@pytest.fixture
def tcg(mocker):
    return mocker.patch(
        'kiwi_boxed_plugin.vm.choose_accelerator', return_value=Accelerator('tcg', 'test')
    )


def patch_run(mocker, target, code=0):
    """
    run_console replaced by a box whose agent writes result.code
    """
    return mocker.patch(
        'kiwi_boxed_plugin.vm.run_console', side_effect=agent_writes(target, code)
    )


def agent_writes(target, code):
    def run(argv, console_log, interactive, limits):
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, 'result.code'), 'w') as handle:
            handle.write(f'{code}\n')
        open(console_log, 'w').close()
        return RunOutcome(0, True)
    return run


class TestBoxBuild:
    def test_success(
        self, box, box_arch, request_of, cache, overlay, tcg, mocker, caplog, tmp_path
    ):
        request = request_of()
        target = request.target_dir
        run = patch_run(mocker, target)
        box_run = VmBoxBuild(request, box, box_arch, '/usr/bin/qemu-system-x86_64', None).run()
        assert box_run.outcome == RunOutcome(0, True)
        assert box_run.engine == 'software emulation (TCG): test'
        argv, console_log, interactive, limits = run.call_args[0]
        assert console_log == f'{target}/boxbuild.console.log'
        assert not interactive
        assert limits == Limits(start=600, started_file=f'{target}/result.code')
        assert argv[argv.index('-drive') + 1].startswith(
            f'file={tmp_path}/cache-temp/overlay.qcow2,'
        )
        cmdline = argv[argv.index('-append') + 1]
        assert cmdline == (
            'clocksource=tsc tsc=reliable init_on_alloc=0 '
            'root=/dev/vda1 rw console=hvc0 panic=5 sharing_backend=_9p_ kiwi="system build"'
        )
        assert 'box accelerator: software emulation (TCG): test; for this host\'s ' \
            'architecture, --container builds at native speed' in caplog.text
        cache.return_value.use.assert_called_once_with(box, box_arch, update_check=True)

    def test_stale_result_code_removed(
        self, box, box_arch, request_of, cache, overlay, tcg, mocker
    ):
        request = request_of()
        os.makedirs(request.target_dir)
        with open(os.path.join(request.target_dir, 'result.code'), 'w') as stale:
            stale.write('0\n')
        (open(os.path.join(request.target_dir, 'keep.txt'), 'w')).close()
        mocker.patch('kiwi_boxed_plugin.vm.run_console', return_value=RunOutcome(0, False))
        VmBoxBuild(request, box, box_arch, 'qemu', None).run()
        assert not os.path.exists(os.path.join(request.target_dir, 'result.code'))
        assert os.path.exists(os.path.join(request.target_dir, 'keep.txt'))

    def test_silent_kvm_box_restarts_under_tcg(
        self, box, box_arch, request_of, cache, overlay, mocker, caplog
    ):
        request = request_of()
        mocker.patch(
            'kiwi_boxed_plugin.vm.choose_accelerator',
            return_value=Accelerator('kvm', 'fast')
        )
        succeed = agent_writes(request.target_dir, 0)
        calls = []

        def run(argv, console_log, interactive, limits):
            calls.append((
                argv[argv.index('-accel') + 1], limits.silence,
                argv[argv.index('-append') + 1].split()[0]
            ))
            if len(calls) == 1:
                return RunOutcome(-15, False, SILENT)
            return succeed(argv, console_log, interactive, limits)
        mocker.patch('kiwi_boxed_plugin.vm.run_console', side_effect=run)
        box_run = VmBoxBuild(request, box, box_arch, 'qemu', None).run()
        assert box_run.engine.startswith('software emulation (TCG): the box stayed silent')
        # the kernel arguments for emulation only in the second start
        assert calls == [('kvm', 90, 'root=/dev/vda1'), ('tcg', 0, 'clocksource=tsc')]
        assert 'starting it again under software emulation' in caplog.text
        assert overlay.call_count == 2

    def test_no_container_note_for_kvm_or_another_arch(self):
        assert fast_path_note(Accelerator('kvm', 'works'), True) == ''
        assert fast_path_note(Accelerator('tcg', 'foreign'), False) == ''

    def test_overlay_ignores_flushes(self, box, box_arch, request_of, cache, overlay, tcg, mocker):
        request = request_of()
        run = patch_run(mocker, request.target_dir)
        VmBoxBuild(request, box, box_arch, 'qemu', None).run()
        argv = run.call_args[0][0]
        assert argv[argv.index('-drive') + 1].endswith(',cache=unsafe')

    def test_no_snapshot_uses_cached_disk(self, box, box_arch, request_of, cache, overlay, mocker):
        request = request_of(**{'--no-snapshot': True, '--no-update-check': True})
        run = patch_run(mocker, request.target_dir)
        VmBoxBuild(request, box, box_arch, 'qemu', None).run()
        argv = run.call_args[0][0]
        assert argv[argv.index('-drive') + 1].startswith('file=/cache/disk.qcow2,')
        # the box disk kept: the box's flushes reach the host's disk
        assert 'cache=unsafe' not in argv[argv.index('-drive') + 1]
        overlay.assert_not_called()
        cache.return_value.use.assert_called_once_with(box, box_arch, update_check=False)

    def test_debug_keeps_box(self, box, box_arch, request_of, cache, overlay, mocker):
        request = request_of(**{'--box-debug': True, '--no-accel': True})
        run = patch_run(mocker, request.target_dir)
        VmBoxBuild(request, box, box_arch, 'qemu', None).run()
        argv, _, interactive, _ = run.call_args[0]
        assert interactive
        assert 'kiwi-no-halt' in argv[argv.index('-append') + 1]


class TestCarriedFiles:
    def test_config_and_key_in_the_target_while_the_box_runs(
        self, box, box_arch, request_of, cache, overlay, tcg, mocker, tmp_path
    ):
        config = tmp_path / 'kiwi.yml'
        config.write_text('xz:\n  - options: -1\n')
        key = tmp_path / 'my key.asc'
        key.write_text('KEY')
        request = request_of(
            global_options={'--config': str(config)}, build_args=['--signing-key', str(key)]
        )
        carried = os.path.join(request.target_dir, '.boxbuild.files')
        seen = {}
        box_agent = agent_writes(request.target_dir, 0)

        def run(argv, console_log, interactive, silence):
            seen['cmdline'] = argv[argv.index('-append') + 1]
            seen['config'] = open(os.path.join(carried, 'config', 'kiwi.yml')).read()
            seen['key'] = open(os.path.join(carried, '1', 'my_key.asc')).read()
            return box_agent(argv, console_log, interactive, silence)
        mocker.patch('kiwi_boxed_plugin.vm.run_console', side_effect=run)
        VmBoxBuild(request, box, box_arch, 'qemu', None).run()
        assert 'kiwi="--config=/bundle/.boxbuild.files/config/kiwi.yml system build ' \
            '--signing-key=/bundle/.boxbuild.files/1/my_key.asc"' in seen['cmdline']
        assert seen['config'] == 'xz:\n  - options: -1\n'
        assert seen['key'] == 'KEY'
        assert not os.path.exists(carried)
        assert key.read_text() == 'KEY'


class TestLogins:
    """
    --ssh-key, --ssh-port and the run's own login into a published box
    """
    @pytest.fixture
    def login(self, mocker):
        @contextmanager
        def fake_login(plan, runtime_dir, end):
            yield LoginKey('ssh-ed25519', 'RUNKEY', f'{runtime_dir}/login_identity.pub') \
                if plan.tunnel else plan.user_key
        return mocker.patch('kiwi_boxed_plugin.vm.box_login', side_effect=fake_login)

    def run(self, mocker, request, box, arch, user_key=None):
        run = patch_run(mocker, request.target_dir)
        VmBoxBuild(request, box, arch, 'qemu', user_key).run()
        argv = run.call_args[0][0]
        return argv[argv.index('-append') + 1]

    def test_user_key_with_9p(
        self, box, box_arch, request_of, cache, overlay, tcg, mocker, network, login
    ):
        mocker.patch('kiwi_boxed_plugin.box_login.free_port', return_value=41000)
        cmdline = self.run(
            mocker, request_of(**{'--ssh-key': 'id'}), box, box_arch, USER_KEY
        )
        assert 'ssh_key=_AAAAC3Nz_ ssh_key_type=_ssh-ed25519_' in cmdline
        assert 'kiwi_ssh_port' not in cmdline
        assert network.call_args[0][1] == Forwards(to_box=((41000, 22),))
        assert login.call_args[0][0] == LoginPlan(41000, USER_KEY, False)

    def test_port_alone(self, box, box_arch, request_of, cache, overlay, tcg, mocker, network):
        cmdline = self.run(mocker, request_of(**{'--ssh-port': '2222'}), box, box_arch)
        assert 'ssh_key' not in cmdline
        assert network.call_args[0][1] == Forwards(to_box=((2222, 22),))

    def test_no_login_no_forward(
        self, box, box_arch, request_of, cache, overlay, tcg, mocker, network
    ):
        self.run(mocker, request_of(), box, box_arch)
        assert network.call_args[0][1] == Forwards()

    def test_published_box_sshfs_logs_in_with_the_run_key(
        self, box, box_arch, request_of, cache, overlay, tcg, mocker, network, login
    ):
        sharing = mocker.patch('kiwi_boxed_plugin.vm.open_sharing')
        end = TunnelEnd('/run/sshd.socket', '/run/authorized_keys')
        sharing.return_value.__enter__.return_value = ShareSetup(
            remotes={'kiwibundle': 'me@localhost:/kiwibundle'}, tunnel=end
        )
        mocker.patch('kiwi_boxed_plugin.box_login.free_port', return_value=41001)
        request = request_of(**{'--sshfs-sharing': True, '--ssh-key': 'id'})
        cmdline = self.run(mocker, request, box, box_arch, USER_KEY)
        assert sharing.call_args[0][-1] is False
        plan, _, given_end = login.call_args[0]
        assert (plan, given_end) == (LoginPlan(41001, USER_KEY, True), end)
        # the one ssh_key slot holds the run's key; the user's key is
        # added over the run's login
        assert 'ssh_key=_RUNKEY_' in cmdline and 'AAAAC3Nz' not in cmdline
        assert 'host_kiwibundle=_me@localhost:/kiwibundle_' in cmdline
        assert 'kiwi_ssh_port' not in cmdline
        assert network.call_args[0][1] == Forwards(to_box=((41001, 22),))

    def test_our_box_fetches_through_the_package_cache(
        self, box, box_arch, request_of, cache, overlay, tcg, mocker, network, login,
        monkeypatch, tmp_path
    ):
        monkeypatch.setenv('KIWI_BOXED_PACKAGE_CACHE', str(tmp_path / 'packages'))
        ours = replace(box_arch, cmdline=box_arch.cmdline + (AGENT_MARK,))
        cmdline = self.run(mocker, request_of(), box, ours)
        port = int(re.search(r'kiwi_package_proxy=_http://10\.0\.2\.2:(\d+)_', cmdline)[1])
        assert network.call_args[0][1] == Forwards(to_host=(port,))
        assert os.path.isdir(tmp_path / 'packages' / 'debian' / 'x86_64')

    def test_published_box_gets_no_package_cache(
        self, box, box_arch, request_of, cache, overlay, tcg, mocker, network, login,
        monkeypatch, tmp_path
    ):
        monkeypatch.setenv('KIWI_BOXED_PACKAGE_CACHE', str(tmp_path / 'packages'))
        cmdline = self.run(mocker, request_of(), box, box_arch)
        assert 'kiwi_package_proxy' not in cmdline
        assert network.call_args[0][1] == Forwards()
        assert not os.path.exists(tmp_path / 'packages')

    def test_our_box_sshfs_keeps_its_path(
        self, box, box_arch, request_of, cache, overlay, tcg, mocker, network, login
    ):
        ours = replace(box_arch, cmdline=box_arch.cmdline + (AGENT_MARK,))
        sharing = mocker.patch('kiwi_boxed_plugin.vm.open_sharing')
        sharing.return_value.__enter__.return_value = ShareSetup(
            qemu_args=('-fw_cfg', 'x'), forwards=Forwards(to_host=(40022,)),
            remotes={'kiwibundle': 'me@10.0.2.2:/kiwibundle'}, ssh_port=40022
        )
        request = request_of(**{'--sshfs-sharing': True, '--ssh-port': '2222'})
        cmdline = self.run(mocker, request, box, ours)
        assert sharing.call_args[0][-1] is True
        assert login.call_args[0][0] == LoginPlan(2222, None, False)
        assert 'kiwi_ssh_port=_40022_' in cmdline and 'ssh_key' not in cmdline
        assert network.call_args[0][1] == Forwards(to_host=(40022,), to_box=((2222, 22),))
