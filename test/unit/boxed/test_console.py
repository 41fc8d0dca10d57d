import io
import os
import signal
import sys

import pytest

from kiwi_boxed_plugin.console import ConsoleStream, interrupt_once, run_console
from kiwi_boxed_plugin.exceptions import KiwiBoxRunError

MARKER = b'kiwi-box-agent: job started'


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

    def test_terminal_gone_keeps_logging(self, mocker):
        terminal = mocker.Mock()
        terminal.write.side_effect = BrokenPipeError
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
            silence_seconds=0.3
        )
        assert outcome.stalled and not outcome.job_started
        assert outcome.exit_code == -signal.SIGTERM

    def test_talking_box_is_not_stopped(self, tmp_path):
        outcome = run_console(fake_qemu(
            'import time; print("up", flush=True); time.sleep(0.6); print("done")'
        ), str(tmp_path / 'log'), False, silence_seconds=0.3)
        assert not outcome.stalled and outcome.exit_code == 0

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


class TestInterruptOnce:
    def test_first_signal_raises_repeats_ignored(self):
        before = signal.getsignal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            with interrupt_once():
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                finally:
                    # cleanup runs here: further signals must not cut it short
                    os.kill(os.getpid(), signal.SIGINT)
                    os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) is before
