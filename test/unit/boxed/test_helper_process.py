import os
import sys
import textwrap

import pytest

from harness.orphans import gone_within, orphan_of_killed_parent
from kiwi_boxed_plugin.exceptions import KiwiBoxShareError
from kiwi_boxed_plugin.helper_process import helper_process, stop_process


def python(script):
    return [sys.executable, '-c', script]


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_ready_then_stopped(tmp_path):
    log = str(tmp_path / 'log')
    with helper_process(python(
        'import time; print("serving now", flush=True); time.sleep(60)'
    ), log, 'serving now') as process:
        assert process.poll() is None
    assert process.returncode is not None
    assert gone(process.pid)


def test_ended_before_ready(tmp_path):
    with pytest.raises(KiwiBoxShareError, match='ended with exit code 2 .*: cannot bind'):
        with helper_process(python(
            'import sys; print("cannot bind"); sys.exit(2)'
        ), str(tmp_path / 'log'), 'serving'):
            pass


def test_silent_helper_times_out(tmp_path, mocker):
    mocker.patch(
        'kiwi_boxed_plugin.defaults.Defaults.get_helper_start_seconds', return_value=0.3
    )
    pid_file = tmp_path / 'pid'
    with pytest.raises(KiwiBoxShareError, match='not ready within'):
        with helper_process(python(
            f'import os, time; open({str(pid_file)!r}, "w").write(str(os.getpid())); '
            'time.sleep(60)'
        ), str(tmp_path / 'log'), 'serving'):
            pass
    assert gone(int(pid_file.read_text()))


def test_stop_kills_stubborn_process(tmp_path, mocker):
    mocker.patch('kiwi_boxed_plugin.defaults.Defaults.get_qemu_stop_seconds', return_value=0.3)
    with helper_process(python(
        'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); '
        'print("ready", flush=True); time.sleep(60)'
    ), str(tmp_path / 'log'), 'ready') as process:
        pass
    assert process.returncode == -9


def test_stop_of_ended_process_is_quiet(tmp_path):
    with helper_process(python('print("ready")'), str(tmp_path / 'log'), 'ready') as process:
        process.wait()
    stop_process(process)
    assert process.returncode == 0


def test_helper_ends_with_boxbuild_killed(tmp_path):
    """
    boxbuild killed by SIGKILL cannot stop its helpers: they end by the
    parent death signal, although they run in sessions of their own
    """
    assert gone_within(orphan_of_killed_parent(textwrap.dedent(f'''
        import sys, time
        from kiwi_boxed_plugin.helper_process import helper_process
        helper = [sys.executable, '-c', 'import time; print("ready", flush=True); time.sleep(60)']
        with helper_process(helper, {str(tmp_path / 'log')!r}, 'ready') as process:
            print(process.pid, flush=True)
            time.sleep(60)
    ''')), 5)
