import os
import time

import pytest

from kiwi_boxed_plugin.console import RunOutcome
from kiwi_boxed_plugin.exceptions import KiwiBoxBuildFailedError, KiwiBoxTargetDirError
from kiwi_boxed_plugin.result import (
    BoxRun,
    clear_stale_result,
    failure_log,
    judge,
    raise_unless_succeeded,
    read_result_code,
    result_files,
    summary_lines,
    tail_lines,
)


def age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


class TestJudge:
    def test_success(self):
        assert judge('0', 0, True).ok

    @pytest.mark.parametrize('code,qemu,started,reason', [
        (None, 0, True, 'ended after the build started without writing result.code'),
        (None, 0, False, 'ended before the build started without writing result.code'),
        (None, 1, False, 'without writing result.code'),
        ('1', 0, True, 'failed with exit code 1'),
        ('-15', 0, True, 'failed with exit code -15'),
        ('', 0, True, "failed with exit code ''"),
        ('garbage', 0, True, "failed with exit code 'garbage'"),
        ('0', 1, True, 'the box ended with exit code 1'),
    ])
    def test_failure(self, code, qemu, started, reason):
        verdict = judge(code, qemu, started)
        assert not verdict.ok
        assert reason in verdict.reason


class TestFiles:
    def test_clear_stale_result(self, tmp_path):
        (tmp_path / 'result.code').write_text('0\n')
        (tmp_path / 'result.log').write_text('old')
        (tmp_path / 'image.tar.xz').write_text('keep')
        clear_stale_result(str(tmp_path))
        assert sorted(os.listdir(tmp_path)) == ['image.tar.xz', 'result.log']
        clear_stale_result(str(tmp_path))

    def test_read_result_code(self, tmp_path):
        assert read_result_code(str(tmp_path)) is None
        (tmp_path / 'result.code').write_text('0\n')
        assert read_result_code(str(tmp_path)) == '0'

    def test_failure_log_prefers_fresh_result_log(self, tmp_path):
        console = str(tmp_path / 'console.log')
        assert failure_log(str(tmp_path), console, time.time()) == console
        result_log = tmp_path / 'result.log'
        result_log.write_text('old run')
        age(result_log, 100)
        assert failure_log(str(tmp_path), console, time.time() - 10) == console
        result_log.write_text('this run')
        assert failure_log(str(tmp_path), console, time.time() - 10) == str(result_log)

    def test_tail_lines(self, tmp_path):
        path = tmp_path / 'log'
        path.write_text(''.join(f'line {n}\n' for n in range(30)))
        assert tail_lines(str(path), 2) == ['line 28', 'line 29']
        assert tail_lines(str(tmp_path / 'none'), 2) == []

    def test_result_files_new_only(self, tmp_path):
        started = time.time() - 10
        for name in ('old.txt', 'image.tar.xz', 'image.packages', 'result.code'):
            (tmp_path / name).write_text('x')
        age(tmp_path / 'old.txt', 100)
        (tmp_path / 'dir').mkdir()
        assert result_files(str(tmp_path), started, ['result.code']) == [
            'image.packages', 'image.tar.xz'
        ]


class TestPlantedLinks:
    """
    Over virtiofs, sshfs and in container mode a build makes real links
    of the host in the target dir: none is followed
    """
    @pytest.fixture
    def secret(self, tmp_path):
        secret = tmp_path / 'secret'
        secret.write_text('0\nroot:secret-hash\n')
        return secret

    @pytest.fixture
    def target(self, tmp_path):
        target = tmp_path / 'target'
        target.mkdir()
        return target

    def test_clear_stale_result_removes_the_link_only(self, target, secret):
        (target / 'result.code').symlink_to(secret)
        clear_stale_result(str(target))
        assert not os.path.lexists(target / 'result.code')
        assert secret.read_text() == '0\nroot:secret-hash\n'

    def test_linked_result_code_is_no_verdict(self, target, secret):
        # a link to any host file starting with 0 would read as success
        (target / 'result.code').symlink_to(secret)
        with pytest.raises(KiwiBoxTargetDirError, match='result.code is a link'):
            read_result_code(str(target))

    def test_linked_result_log_is_not_the_telling_log(self, target, secret):
        (target / 'result.log').symlink_to(secret)
        console = str(target / 'boxbuild.console.log')
        assert failure_log(str(target), console, time.time() - 10) == console

    def test_linked_log_is_not_shown(self, target, secret, caplog):
        (target / 'result.code').write_text('1\n')
        (target / 'result.log').symlink_to(secret)
        console = target / 'boxbuild.console.log'
        console.symlink_to(secret)
        assert tail_lines(str(console), 5) == []
        with pytest.raises(KiwiBoxBuildFailedError, match='exit code 1'):
            raise_unless_succeeded(str(target), str(console), box_run(time.time() - 10))
        assert 'secret-hash' not in caplog.text

    def test_links_are_no_result_files(self, target, secret):
        (target / 'image.tar.xz').symlink_to(secret)
        assert result_files(str(target), time.time() - 10, []) == []


def box_run(started_at, box_exit=0, job_started=True, engine='TCG'):
    return BoxRun(RunOutcome(box_exit, job_started), started_at, engine)


class TestRaiseUnlessSucceeded:
    def test_success_says_nothing(self, tmp_path, caplog):
        (tmp_path / 'result.code').write_text('0\n')
        raise_unless_succeeded(str(tmp_path), str(tmp_path / 'console'), box_run(time.time()))
        assert caplog.text == ''

    def test_failure_shows_result_log(self, tmp_path, caplog):
        started = time.time() - 5
        (tmp_path / 'result.code').write_text('1\n')
        (tmp_path / 'result.log').write_text('installing\nKiwiPackageError: no netbase\n')
        with pytest.raises(KiwiBoxBuildFailedError) as failure:
            raise_unless_succeeded(str(tmp_path), str(tmp_path / 'console'), box_run(started))
        assert str(failure.value) == (
            f'the build in the box failed with exit code 1: see {tmp_path}/result.log'
        )
        assert 'KiwiPackageError: no netbase' in caplog.text

    def test_missing_code_shows_console(self, tmp_path, caplog):
        console = tmp_path / 'console'
        console.write_text('Kernel panic\n')
        with pytest.raises(KiwiBoxBuildFailedError, match=f'see {console}'):
            raise_unless_succeeded(
                str(tmp_path), str(console), box_run(time.time(), job_started=False)
            )
        assert 'Kernel panic' in caplog.text

    def test_box_failure_beats_result_code(self, tmp_path):
        (tmp_path / 'result.code').write_text('0\n')
        with pytest.raises(KiwiBoxBuildFailedError, match='the box ended with exit code 1'):
            raise_unless_succeeded(
                str(tmp_path), str(tmp_path / 'console'), box_run(time.time(), box_exit=1)
            )


def test_summary_lines(tmp_path):
    started = time.time() - 10
    for name in ('image.tar.xz', 'result.code', 'result.log', 'boxbuild.console.log'):
        (tmp_path / name).write_text('x')
    assert summary_lines(str(tmp_path), box_run(started, engine='KVM: fast'), 125.4) == [
        'build in the box done in 2m05s with KVM: fast',
        f'result files in {tmp_path}:',
        '  image.tar.xz',
        f'build log: {tmp_path}/result.log',
    ]


def test_summary_without_files(tmp_path):
    lines = summary_lines(str(tmp_path), box_run(time.time()), 3)
    assert lines[1] == f'no new files in {tmp_path}'
