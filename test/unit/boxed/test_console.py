import errno
import io
import os
import signal
import sys
import textwrap
import time

import pytest

from harness.orphans import gone_within, orphan_of_killed_parent
from kiwi_boxed_plugin.console import (
    NOT_STARTED,
    SILENT,
    TIMED_OUT,
    ConsoleStream,
    Limits,
    limits_due,
    run_console,
)
from kiwi_boxed_plugin.exceptions import KiwiBoxRunError

MARKER = b'kiwi-box-agent: job started'

# boxbuild with a box process, whose pid it prints
STAND_IN_BOXBUILD = textwrap.dedent('''
    import sys, time
    from kiwi_boxed_plugin.console import box_process
    with box_process([sys.executable, '-c', 'import time; time.sleep(60)'], False) as box:
        print(box.pid, flush=True)
        time.sleep(60)
''')


def fake_qemu(script: str):
    """
    A stand-in for qemu: a Python child that writes a console
    """
    return [sys.executable, '-c', script]


class TestConsoleStream:
    def test_copies_and_finds_marker(self):
        log, terminal = io.BytesIO(), io.BytesIO()
        stream = ConsoleStream(log, terminal)
        stream.feed(b'booting\n')
        assert not stream.job_started and stream.seen_output
        stream.feed(MARKER + b'\n')
        assert stream.job_started
        assert log.getvalue() == terminal.getvalue() == b'booting\n' + MARKER + b'\n'

    @pytest.mark.parametrize('cut', range(1, len(MARKER)))
    def test_marker_split_across_reads(self, cut):
        stream = ConsoleStream(io.BytesIO(), None)
        stream.feed(b'x' + MARKER[:cut])
        stream.feed(MARKER[cut:] + b'\n')
        assert stream.job_started

    def test_marker_not_made_of_pieces_far_apart(self):
        stream = ConsoleStream(io.BytesIO(), None)
        stream.feed(MARKER[:10])
        stream.feed(b'other output\n')
        stream.feed(MARKER[10:])
        assert not stream.job_started

    @pytest.mark.parametrize('gone', [BrokenPipeError, OSError(errno.EIO, 'hung up')])
    def test_terminal_gone_keeps_logging(self, mocker, gone):
        """
        A closed pipe, or a terminal that hung up (SIGHUP's EIO)
        """
        terminal = mocker.Mock()
        terminal.write.side_effect = gone
        log = io.BytesIO()
        stream = ConsoleStream(log, terminal)
        stream.feed(b'one\n')
        stream.feed(b'two\n')
        assert log.getvalue() == b'one\ntwo\n'
        assert terminal.write.call_count == 1


class TestRunConsole:
    def test_streams_to_log_and_exit_code(self, tmp_path, capfd):
        log = tmp_path / 'console.log'
        outcome = run_console(fake_qemu(
            'import sys; print("hello"); print("kiwi-box-agent: job started"); '
            'sys.stderr.write("qemu warning\\n"); sys.exit(3)'
        ), str(log), False)
        assert outcome.exit_code == 3
        assert outcome.job_started and not outcome.stalled
        text = log.read_text()
        assert 'hello' in text and 'qemu warning' in text
        assert 'hello' in capfd.readouterr().out

    def test_stdin_is_not_the_terminal(self, tmp_path):
        outcome = run_console(fake_qemu(
            'import sys; sys.exit(0 if sys.stdin.read() == "" else 1)'
        ), str(tmp_path / 'log'), False)
        assert outcome.exit_code == 0

    def test_silent_box_is_stopped(self, tmp_path):
        outcome = run_console(
            fake_qemu('import time; time.sleep(60)'), str(tmp_path / 'log'), False,
            Limits(silence=0.3)
        )
        assert outcome.stalled and not outcome.job_started
        assert outcome.exit_code == -signal.SIGTERM

    def test_talking_box_is_not_stopped(self, tmp_path):
        outcome = run_console(fake_qemu(
            'import time; print("up", flush=True); time.sleep(0.6); print("done")'
        ), str(tmp_path / 'log'), False, Limits(silence=0.3))
        assert not outcome.stalled and outcome.exit_code == 0

    @pytest.mark.parametrize('plant', [os.symlink, os.link])
    def test_planted_link_is_not_written_through(self, tmp_path, plant):
        """
        A build left the console log's name as a link to a file of the
        host: the log becomes a file of its own, the linked file stays
        """
        sentinel = tmp_path / 'sentinel'
        sentinel.write_text('precious')
        log = tmp_path / 'boxbuild.console.log'
        plant(sentinel, log)
        run_console(fake_qemu('print("booting")'), str(log), False)
        assert sentinel.read_text() == 'precious'
        assert not log.is_symlink() and log.read_text() == 'booting\n'

    def test_job_that_does_not_start_is_stopped(self, tmp_path):
        """
        A box that talks but never starts its job: stopped at the start
        limit, which the run reports
        """
        began = time.monotonic()
        outcome = run_console(fake_qemu(
            'import time\nwhile True: print("still booting", flush=True); time.sleep(0.1)'
        ), str(tmp_path / 'log'), False, Limits(silence=30, start=0.5))
        assert outcome.limit == NOT_STARTED
        assert not outcome.stalled and not outcome.job_started
        assert outcome.exit_code == -signal.SIGTERM
        assert time.monotonic() - began < 5

    def test_started_job_is_not_stopped_at_the_start_limit(self, tmp_path):
        outcome = run_console(fake_qemu(
            'import time; print("kiwi-box-agent: job started", flush=True); time.sleep(1)'
        ), str(tmp_path / 'log'), False, Limits(start=0.3))
        assert outcome.limit == '' and outcome.job_started and outcome.exit_code == 0

    def test_started_file_tells_that_the_job_started(self, tmp_path):
        """
        A box without our agent prints no line, but writes result.code
        before kiwi runs
        """
        code = tmp_path / 'result.code'
        outcome = run_console(fake_qemu(
            f'import time; time.sleep(0.2); open({str(code)!r}, "w").write("1"); '
            'time.sleep(1.5)'
        ), str(tmp_path / 'log'), False, Limits(start=0.8, started_file=str(code)))
        assert outcome.limit == '' and outcome.job_started and outcome.exit_code == 0

    def test_deadline_stops_a_busy_box(self, tmp_path):
        outcome = run_console(fake_qemu(
            'print("kiwi-box-agent: job started", flush=True)\n'
            'while True: print("building", flush=True)'
        ), str(tmp_path / 'log'), False, Limits(start=60, deadline=time.monotonic() + 0.5))
        assert outcome.limit == TIMED_OUT and outcome.job_started and not outcome.stalled

    def test_box_ends_with_boxbuild_killed(self, tmp_path):
        """
        boxbuild killed by SIGKILL runs no cleanup: the box process
        ends all the same, by the parent death signal
        """
        assert gone_within(orphan_of_killed_parent(STAND_IN_BOXBUILD), 5)

    def test_missing_program(self, tmp_path):
        with pytest.raises(KiwiBoxRunError, match='cannot start'):
            run_console([str(tmp_path / 'no-qemu')], str(tmp_path / 'log'), False)

    def test_interrupt_stops_qemu(self, tmp_path, mocker):
        pid_file = tmp_path / 'pid'
        mocker.patch(
            'kiwi_boxed_plugin.console.ConsoleStream.feed', side_effect=KeyboardInterrupt
        )
        with pytest.raises(KeyboardInterrupt):
            run_console(fake_qemu(
                f'import os, time; open({str(pid_file)!r}, "w").write(str(os.getpid())); '
                'print("x", flush=True); time.sleep(60)'
            ), str(tmp_path / 'log'), False)
        pid = int(pid_file.read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


class TestLimitsDue:
    def test_none_by_default(self):
        assert limits_due(Limits(), 100.0, False, False) == {}

    def test_each_until_its_condition(self):
        limits = Limits(silence=10, start=60, deadline=500.0)
        assert limits_due(limits, 100.0, False, False) == {
            SILENT: 110.0, NOT_STARTED: 160.0, TIMED_OUT: 500.0
        }
        assert limits_due(limits, 100.0, True, False) == {
            NOT_STARTED: 160.0, TIMED_OUT: 500.0
        }
        assert limits_due(limits, 100.0, True, True) == {TIMED_OUT: 500.0}
