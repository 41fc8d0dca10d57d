import os
import signal
import subprocess
import sys
import time

import pytest

from harness.processes import default_stop_signals
from kiwi_stackbuild_plugin import interruption
from kiwi_stackbuild_plugin.interruption import child_processes, dies_with_parent, stopped_cleanly
from kiwi_plugin_support.lifetime import STOP_SIGNALS


def test_dies_with_parent():
    assert dies_with_parent(('rsync', '-a')) == [
        'setpriv', '--pdeathsig', 'TERM', '--', 'rsync', '-a'
    ]
    assert dies_with_parent(['kiwi'], 'INT') == ['setpriv', '--pdeathsig', 'INT', '--', 'kiwi']


def program(pid: int) -> str:
    with open(f'/proc/{pid}/cmdline') as cmdline:
        return cmdline.read().split('\0')[0]


def test_a_program_dies_with_its_parent(tmp_path):
    # the parent starts a sleep that dies with it, then is killed
    parent = subprocess.Popen([sys.executable, '-c', (
        'import subprocess, sys\n'
        f'child = subprocess.Popen({dies_with_parent(["sleep", "60"])!r})\n'
        'print(child.pid, flush=True)\n'
        'child.wait()\n'
    )], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 10
    # setpriv asked for the signal once it made way for sleep
    while program(child) != 'sleep' and time.monotonic() < deadline:
        time.sleep(0.01)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while interruption.process_start_time(child) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert interruption.process_start_time(child) is None


def test_child_processes():
    with subprocess.Popen(['sleep', '60']) as child:
        assert child.pid in child_processes()
        child.kill()
        child.wait()
    assert child.pid not in child_processes()


@pytest.fixture
def stop_signals_at_default():
    with default_stop_signals():
        yield


@pytest.mark.parametrize('signum', STOP_SIGNALS)
def test_a_stop_signal_ends_the_children_and_unwinds(signum, caplog, stop_signals_at_default):
    before = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    cleaned = []
    with pytest.raises(SystemExit) as exit_status:
        with stopped_cleanly('system stash'):
            child = subprocess.Popen(['sleep', '60'])
            try:
                os.kill(os.getpid(), signum)
                # the handler runs before the next bytecode
                raise AssertionError('not stopped')
            finally:
                # the child ended before the unwinding began
                cleaned.append(child.poll())
                # a repeat of any stop signal is ignored meanwhile
                for number in STOP_SIGNALS:
                    os.kill(os.getpid(), number)
    assert exit_status.value.code == 128 + signum
    assert cleaned == [-signal.SIGINT]
    assert f"'kiwi-ng system stash' stopped by {signal.Signals(signum).name}: what it had " \
        'mounted and its work directories are removed' in caplog.text
    assert {number: signal.getsignal(number) for number in STOP_SIGNALS} == before


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stopped_cleanly('system stash'):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)


def ignoring(*signals: str) -> subprocess.Popen:
    """
    A child that ignores the signals, once it does
    """
    child = subprocess.Popen([sys.executable, '-c', (
        'import signal, time\n'
        + ''.join(f'signal.signal(signal.{name}, signal.SIG_IGN)\n' for name in signals)
        + 'print(flush=True)\ntime.sleep(60)'
    )], stdout=subprocess.PIPE)
    child.stdout.readline()
    return child


def test_a_child_that_ignores_ctrl_c_gets_sigterm(monkeypatch):
    monkeypatch.setattr(interruption, 'PROGRAM_EXIT_SECONDS', 0.5)
    child = ignoring('SIGINT')
    start = time.monotonic()
    with pytest.raises(SystemExit):
        with stopped_cleanly('system stackbuild'):
            os.kill(os.getpid(), signal.SIGTERM)
    assert 0.5 <= time.monotonic() - start < 1.5
    assert child.wait(timeout=1) == -signal.SIGTERM


def test_a_child_that_does_not_end_is_waited_for_a_while(monkeypatch):
    monkeypatch.setattr(interruption, 'PROGRAM_EXIT_SECONDS', 0.3)
    monkeypatch.setattr(interruption, 'TERMINATED_EXIT_SECONDS', 0.3)
    child = ignoring('SIGINT', 'SIGTERM')
    start = time.monotonic()
    with pytest.raises(SystemExit):
        with stopped_cleanly('system stackbuild'):
            os.kill(os.getpid(), signal.SIGTERM)
    assert 0.6 <= time.monotonic() - start < 2
    assert child.poll() is None
    child.kill()
    child.wait()
