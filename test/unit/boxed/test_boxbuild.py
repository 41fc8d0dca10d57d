import os
import signal

import pytest

from harness.command_line import command_args, global_args
from kiwi_boxed_plugin.boxbuild import EXIT_INTERRUPTED, report, run_boxbuild
from kiwi_boxed_plugin.console import NOT_STARTED, TIMED_OUT, RunOutcome
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxBuildFailedError,
    KiwiBoxProtocolError,
    KiwiBoxRunError,
    KiwiBoxTimeoutError,
)
from kiwi_boxed_plugin.result import BoxRun
from kiwi_plugin_support.lifetime import StopRequested


@pytest.fixture
def description(tmp_path):
    path = tmp_path / 'd'
    path.mkdir()
    (path / 'config.xml').write_text('<image/>')
    return str(path)


def call(description, target, *build_args, **options):
    return command_args(**{'<kiwi_build_command_args>': [
        '--description', description, '--target-dir', target, *build_args
    ], **options}), global_args()


class TestRunBoxbuild:
    def test_container_mode_runs_the_container_runner(self, description, tmp_path, mocker):
        container = mocker.patch('kiwi_boxed_plugin.container.ContainerBoxBuild')
        vm = mocker.patch('kiwi_boxed_plugin.vm.VmBoxBuild')
        judged = mocker.patch('kiwi_boxed_plugin.boxbuild.report')
        run_boxbuild(*call(description, str(tmp_path / 't'), **{'--container': True}))
        container.prepare.return_value.run.assert_called_once_with()
        vm.prepare.assert_not_called()
        assert judged.call_args[0][1] == container.prepare.return_value.run.return_value

    def test_vm_mode_runs_the_vm_runner(self, description, tmp_path, mocker):
        container = mocker.patch('kiwi_boxed_plugin.container.ContainerBoxBuild')
        vm = mocker.patch('kiwi_boxed_plugin.vm.VmBoxBuild')
        judged = mocker.patch('kiwi_boxed_plugin.boxbuild.report')
        run_boxbuild(*call(description, str(tmp_path / 't')))
        vm.prepare.return_value.run.assert_called_once_with()
        container.prepare.assert_not_called()
        assert judged.call_args[0][1] == vm.prepare.return_value.run.return_value

    @pytest.mark.parametrize('container', [False, True])
    def test_protocol_checked_before_anything(self, description, tmp_path, mocker, container):
        catalog = mocker.patch('kiwi_boxed_plugin.catalog.BoxCatalog')
        with pytest.raises(KiwiBoxProtocolError, match='contains a \'"\''):
            run_boxbuild(*call(
                description, str(tmp_path / 't'), '--add-package=a"b', **{'--container': container}
            ))
        catalog.assert_not_called()

    def test_interrupt_exits_130(self, description, tmp_path, mocker, caplog):
        vm = mocker.patch('kiwi_boxed_plugin.vm.VmBoxBuild')
        vm.prepare.return_value.run.side_effect = KeyboardInterrupt
        with pytest.raises(SystemExit) as leaving:
            run_boxbuild(*call(description, str(tmp_path / 't')))
        assert leaving.value.code == EXIT_INTERRUPTED
        assert 'boxbuild interrupted' in caplog.text

    @pytest.mark.parametrize('signum, code', [
        (signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)
    ])
    def test_stop_signal_exits_as_a_shell_reports_it(
        self, description, tmp_path, mocker, caplog, signum, code
    ):
        vm = mocker.patch('kiwi_boxed_plugin.vm.VmBoxBuild')
        vm.prepare.return_value.run.side_effect = StopRequested(signum)
        with pytest.raises(SystemExit) as leaving:
            run_boxbuild(*call(description, str(tmp_path / 't')))
        assert leaving.value.code == code
        assert f'boxbuild interrupted ({signal.Signals(signum).name}): the box' in caplog.text


class TestReport:
    def box_run(self, target, code, box_exit=0, limit=''):
        os.makedirs(target, exist_ok=True)
        started_at = os.stat(target).st_mtime - 1
        if code is not None:
            with open(os.path.join(target, 'result.code'), 'w') as handle:
                handle.write(f'{code}\n')
        with open(os.path.join(target, 'image.tar.xz'), 'w') as handle:
            handle.write('image')
        return BoxRun(RunOutcome(box_exit, True, limit), started_at, 'podman')

    def test_success_lists_the_new_files(self, request_of, caplog):
        request = request_of()
        report(request, self.box_run(request.target_dir, 0))
        assert 'with podman' in caplog.text
        assert '  image.tar.xz' in caplog.text
        assert '  result.code' not in caplog.text

    @pytest.mark.parametrize('code, box_exit, reason', [
        (1, 0, 'the build in the box failed with exit code 1'),
        (None, 0, 'the box ended after the build started without writing result.code'),
        (0, 3, 'the box ended with exit code 3'),
    ])
    def test_failure_names_the_log(self, request_of, code, box_exit, reason):
        request = request_of()
        with pytest.raises(KiwiBoxBuildFailedError, match=reason):
            report(request, self.box_run(request.target_dir, code, box_exit))

    def test_job_that_did_not_start(self, request_of, caplog):
        """
        A box that hung before its job: one line, the console's tail
        """
        request = request_of()
        os.makedirs(request.target_dir)
        console_log = os.path.join(request.target_dir, 'boxbuild.console.log')
        with open(console_log, 'w') as handle:
            handle.write('[ 1.0] Kernel panic - not syncing: VFS\n')
        with pytest.raises(
            KiwiBoxRunError,
            match=f'the box did not start its job within 600 s and was stopped: see {console_log}'
        ):
            report(request, self.box_run(request.target_dir, None, -15, NOT_STARTED))
        assert 'Kernel panic - not syncing' in caplog.text

    def test_job_that_did_not_start_on_a_silent_box(self, request_of):
        request = request_of()
        with pytest.raises(KiwiBoxRunError, match=r'within 600 s \(its console stayed empty\)'):
            report(request, self.box_run(request.target_dir, None, -15, NOT_STARTED))

    def test_build_that_outlasted_box_timeout(self, request_of, caplog):
        """
        Even a result.code 0 does not count: the box did not end
        """
        request = request_of(**{'--box-timeout': '5'})
        run = self.box_run(request.target_dir, 0, -15, TIMED_OUT)
        with open(os.path.join(request.target_dir, 'result.log'), 'w') as handle:
            handle.write('installing packages\n')
        with pytest.raises(
            KiwiBoxTimeoutError,
            match='did not end within --box-timeout=5 minutes and the box was stopped: '
            f'see {request.target_dir}/result.log'
        ):
            report(request, run)
        assert 'installing packages' in caplog.text
