import os
from contextlib import contextmanager

import pytest

from kiwi_boxed_plugin.accel import Accelerator
from kiwi_boxed_plugin.boxbuild import (
    EXIT_INTERRUPTED,
    BoxBuild,
    check_sharing_tools,
    run_boxbuild,
)
from kiwi_boxed_plugin.catalog import Box, BoxArch
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxBuildFailedError,
    KiwiBoxProtocolError,
)
from kiwi_boxed_plugin.request import build_request
from kiwi_boxed_plugin.run import RunOutcome
from test_request import command_args, global_args

ARCH = BoxArch(
    name='x86_64', cmdline=('root=/dev/vda1', 'rw'), source='file:///box',
    packages_file='p', boxfiles=('K.tar.xz', 'S.qcow2'), container='', use_initrd=True
)
BOX = Box('debian', 4096, 2, 'hvc0', (ARCH,), 'test')


class FakeFiles:
    def __init__(self, temp_dir):
        self.kernel = '/cache/kernel'
        self.initrd = '/cache/initrd'
        self.system_disk = '/cache/disk.qcow2'
        self.temp_dir = temp_dir


@pytest.fixture
def request_of(tmp_path):
    description = tmp_path / 'desc'
    description.mkdir()
    (description / 'config.xml').write_text('<image/>')

    def make(**options):
        return build_request(command_args(**{
            '<kiwi_build_command_args>': [
                '--description', str(description), '--target-dir', str(tmp_path / 'target')
            ], **options
        }), global_args())
    return make


@pytest.fixture
def cache(mocker, tmp_path):
    temp_dir = tmp_path / 'cache-temp'
    temp_dir.mkdir()

    @contextmanager
    def use(box, arch, update_check=True):
        yield FakeFiles(str(temp_dir))
    fake = mocker.patch('kiwi_boxed_plugin.cache.BoxCache')
    fake.return_value.use.side_effect = use
    return fake


@pytest.fixture
def overlay(mocker):
    @contextmanager
    def snapshot(disk, temp_dir):
        yield os.path.join(temp_dir, 'overlay.qcow2')
    return mocker.patch('kiwi_boxed_plugin.boxbuild.snapshot_overlay', side_effect=snapshot)


@pytest.fixture
def tcg(mocker):
    return mocker.patch(
        'kiwi_boxed_plugin.boxbuild.choose_accelerator', return_value=Accelerator('tcg', 'test')
    )


def patch_run(mocker, target, code=0):
    """
    run_box replaced by a box whose agent writes result.code
    """
    return mocker.patch(
        'kiwi_boxed_plugin.boxbuild.run_box', side_effect=agent_writes(target, code)
    )


def agent_writes(target, code):
    def run(argv, console_log, interactive, silence):
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, 'result.code'), 'w') as handle:
            handle.write(f'{code}\n')
        open(console_log, 'w').close()
        return RunOutcome(0, True, False)
    return run


class TestBoxBuild:
    def test_success(self, request_of, cache, overlay, tcg, mocker, caplog, tmp_path):
        request = request_of()
        target = request.target_dir
        run = patch_run(mocker, target)
        BoxBuild(request, BOX, ARCH, '/usr/bin/qemu-system-x86_64', None).run()
        argv, console_log, interactive, silence = run.call_args[0]
        assert console_log == f'{target}/boxbuild.console.log'
        assert not interactive and silence == 0
        assert argv[argv.index('-drive') + 1].startswith(
            f'file={tmp_path}/cache-temp/overlay.qcow2,'
        )
        cmdline = argv[argv.index('-append') + 1]
        assert cmdline == (
            'root=/dev/vda1 rw console=hvc0 sharing_backend=_9p_ kiwi="system build"'
        )
        assert 'with software emulation (TCG): test' in caplog.text
        cache.return_value.use.assert_called_once_with(BOX, ARCH, update_check=True)

    def test_stale_result_code_removed(self, request_of, cache, overlay, tcg, mocker):
        request = request_of()
        os.makedirs(request.target_dir)
        with open(os.path.join(request.target_dir, 'result.code'), 'w') as stale:
            stale.write('0\n')
        (open(os.path.join(request.target_dir, 'keep.txt'), 'w')).close()
        mocker.patch('kiwi_boxed_plugin.boxbuild.run_box', return_value=RunOutcome(0, False, False))
        with pytest.raises(KiwiBoxBuildFailedError, match='without writing result.code'):
            BoxBuild(request, BOX, ARCH, 'qemu', None).run()
        assert os.path.exists(os.path.join(request.target_dir, 'keep.txt'))

    def test_failure(self, request_of, cache, overlay, tcg, mocker):
        request = request_of()
        patch_run(mocker, request.target_dir, 1)
        with pytest.raises(KiwiBoxBuildFailedError, match='exit code 1'):
            BoxBuild(request, BOX, ARCH, 'qemu', None).run()

    def test_silent_kvm_box_restarts_under_tcg(self, request_of, cache, overlay, mocker, caplog):
        request = request_of()
        mocker.patch(
            'kiwi_boxed_plugin.boxbuild.choose_accelerator',
            return_value=Accelerator('kvm', 'fast')
        )
        succeed = agent_writes(request.target_dir, 0)
        calls = []

        def run(argv, console_log, interactive, silence):
            calls.append((argv[argv.index('-accel') + 1], silence))
            if len(calls) == 1:
                return RunOutcome(-15, False, True)
            return succeed(argv, console_log, interactive, silence)
        mocker.patch('kiwi_boxed_plugin.boxbuild.run_box', side_effect=run)
        BoxBuild(request, BOX, ARCH, 'qemu', None).run()
        assert calls == [('kvm', 90), ('tcg', 0)]
        assert 'starting it again under software emulation' in caplog.text
        assert overlay.call_count == 2

    def test_no_snapshot_uses_cached_disk(self, request_of, cache, overlay, mocker):
        request = request_of(**{'--no-snapshot': True, '--no-update-check': True})
        run = patch_run(mocker, request.target_dir)
        BoxBuild(request, BOX, ARCH, 'qemu', None).run()
        argv = run.call_args[0][0]
        assert argv[argv.index('-drive') + 1].startswith('file=/cache/disk.qcow2,')
        overlay.assert_not_called()
        cache.return_value.use.assert_called_once_with(BOX, ARCH, update_check=False)

    def test_debug_keeps_box(self, request_of, cache, overlay, mocker):
        request = request_of(**{'--box-debug': True, '--no-accel': True})
        run = patch_run(mocker, request.target_dir)
        BoxBuild(request, BOX, ARCH, 'qemu', None).run()
        argv, _, interactive, _ = run.call_args[0]
        assert interactive
        assert 'kiwi-no-halt' in argv[argv.index('-append') + 1]


class TestCarriedFiles:
    def test_config_and_key_in_the_target_while_the_box_runs(
        self, request_of, cache, overlay, tcg, mocker, tmp_path
    ):
        request_of()  # the description
        config = tmp_path / 'kiwi.yml'
        config.write_text('xz:\n  - options: -1\n')
        key = tmp_path / 'my key.asc'
        key.write_text('KEY')
        request = build_request(
            command_args(**{'<kiwi_build_command_args>': [
                '--description', str(tmp_path / 'desc'),
                '--target-dir', str(tmp_path / 'target'), '--signing-key', str(key)
            ]}), global_args(**{'--config': str(config)})
        )
        carried = os.path.join(request.target_dir, '.boxbuild.files')
        seen = {}
        box_agent = agent_writes(request.target_dir, 0)

        def run(argv, console_log, interactive, silence):
            seen['cmdline'] = argv[argv.index('-append') + 1]
            seen['config'] = open(os.path.join(carried, 'config', 'kiwi.yml')).read()
            seen['key'] = open(os.path.join(carried, '1', 'my_key.asc')).read()
            return box_agent(argv, console_log, interactive, silence)
        mocker.patch('kiwi_boxed_plugin.boxbuild.run_box', side_effect=run)
        BoxBuild(request, BOX, ARCH, 'qemu', None).run()
        assert 'kiwi="--config=/bundle/.boxbuild.files/config/kiwi.yml system build ' \
            '--signing-key=/bundle/.boxbuild.files/1/my_key.asc"' in seen['cmdline']
        assert seen['config'] == 'xz:\n  - options: -1\n'
        assert seen['key'] == 'KEY'
        assert not os.path.exists(carried)
        assert key.read_text() == 'KEY'


class TestRunBoxbuild:
    def test_container_mode(self, tmp_path, mocker):
        (tmp_path / 'd').mkdir()
        (tmp_path / 'd' / 'config.xml').write_text('<image/>')
        container = mocker.patch('kiwi_boxed_plugin.container.ContainerBoxBuild')
        vm_build = mocker.patch('kiwi_boxed_plugin.boxbuild.BoxBuild')
        run_boxbuild(command_args(**{'--container': True, '<kiwi_build_command_args>': [
            '--description', str(tmp_path / 'd'), '--target-dir', str(tmp_path / 't')
        ]}), global_args())
        container.prepare.return_value.run.assert_called_once_with()
        vm_build.prepare.assert_not_called()

    def test_protocol_checked_before_anything(self, tmp_path, mocker):
        catalog = mocker.patch('kiwi_boxed_plugin.boxbuild.BoxCatalog')
        (tmp_path / 'd').mkdir()
        (tmp_path / 'd' / 'config.xml').write_text('<image/>')
        with pytest.raises(KiwiBoxProtocolError):
            run_boxbuild(command_args(**{'<kiwi_build_command_args>': [
                '--description', str(tmp_path / 'd'), '--target-dir', str(tmp_path / 't'),
                '--add-package=a"b'
            ]}), global_args())
        catalog.assert_not_called()

    def test_interrupt_exits_130(self, tmp_path, mocker, caplog):
        (tmp_path / 'd').mkdir()
        (tmp_path / 'd' / 'config.xml').write_text('<image/>')
        mocker.patch('kiwi_boxed_plugin.boxbuild.BoxCatalog')
        mocker.patch('kiwi_boxed_plugin.boxbuild.find_qemu_binary', return_value='qemu')
        mocker.patch('kiwi_boxed_plugin.boxbuild.BoxBuild.run', side_effect=KeyboardInterrupt)
        with pytest.raises(SystemExit) as leaving:
            run_boxbuild(command_args(**{'<kiwi_build_command_args>': [
                '--description', str(tmp_path / 'd'), '--target-dir', str(tmp_path / 't')
            ]}), global_args())
        assert leaving.value.code == EXIT_INTERRUPTED
        assert 'boxbuild interrupted' in caplog.text


class TestSharingTools:
    def test_9p_needs_nothing(self, mocker):
        which = mocker.patch('shutil.which', return_value=None)
        check_sharing_tools('9p')
        which.assert_not_called()

    def test_virtiofs(self, mocker):
        find = mocker.patch('kiwi_boxed_plugin.boxbuild.find_virtiofsd')
        check_sharing_tools('virtiofs')
        find.assert_called_once_with()

    def test_sshfs(self, mocker):
        find = mocker.patch('kiwi_boxed_plugin.boxbuild.find_program')
        check_sharing_tools('sshfs')
        assert [call[0][0] for call in find.call_args_list] == ['sshd', 'ssh-keygen']
