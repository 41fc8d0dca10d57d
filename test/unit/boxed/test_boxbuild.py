import os

import pytest

from harness.command_line import command_args, global_args
from kiwi_boxed_plugin.boxbuild import EXIT_INTERRUPTED, report, run_boxbuild
from kiwi_boxed_plugin.console import RunOutcome
from kiwi_boxed_plugin.exceptions import KiwiBoxBuildFailedError, KiwiBoxProtocolError
from kiwi_boxed_plugin.result import BoxRun


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


class TestReport:
    def box_run(self, target, code, box_exit=0):
        os.makedirs(target, exist_ok=True)
        started_at = os.stat(target).st_mtime - 1
        if code is not None:
            with open(os.path.join(target, 'result.code'), 'w') as handle:
                handle.write(f'{code}\n')
        with open(os.path.join(target, 'image.tar.xz'), 'w') as handle:
            handle.write('image')
        return BoxRun(RunOutcome(box_exit, True, False), started_at, 'podman')

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
