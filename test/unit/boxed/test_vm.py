import os
from contextlib import contextmanager

import pytest

from kiwi_boxed_plugin.accel import Accelerator
from kiwi_boxed_plugin.console import SILENT, Limits, RunOutcome
from kiwi_boxed_plugin.vm import VmBoxBuild


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
            'root=/dev/vda1 rw console=hvc0 panic=5 sharing_backend=_9p_ kiwi="system build"'
        )
        assert 'box accelerator: software emulation (TCG): test' in caplog.text
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
            calls.append((argv[argv.index('-accel') + 1], limits.silence))
            if len(calls) == 1:
                return RunOutcome(-15, False, SILENT)
            return succeed(argv, console_log, interactive, limits)
        mocker.patch('kiwi_boxed_plugin.vm.run_console', side_effect=run)
        box_run = VmBoxBuild(request, box, box_arch, 'qemu', None).run()
        assert box_run.engine.startswith('software emulation (TCG): the box stayed silent')
        assert calls == [('kvm', 90), ('tcg', 0)]
        assert 'starting it again under software emulation' in caplog.text
        assert overlay.call_count == 2

    def test_no_snapshot_uses_cached_disk(self, box, box_arch, request_of, cache, overlay, mocker):
        request = request_of(**{'--no-snapshot': True, '--no-update-check': True})
        run = patch_run(mocker, request.target_dir)
        VmBoxBuild(request, box, box_arch, 'qemu', None).run()
        argv = run.call_args[0][0]
        assert argv[argv.index('-drive') + 1].startswith('file=/cache/disk.qcow2,')
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
