import os
import signal
import subprocess
import sys
import textwrap
import time

from harness.orphans import gone_within, orphan_of_killed_parent
import pytest

from kiwi_plugin_support.lifetime import (
    StopRequested,
    parent_death_signal,
    process_start_time,
    run_alive,
    run_identity,
    stop_signals_raise,
)

# A parent that starts a sleeping child with the parent death signal
# and prints the child's pid
STAND_IN_PARENT = textwrap.dedent('''
    import signal, subprocess, sys, time
    from kiwi_plugin_support.lifetime import parent_death_signal
    child = subprocess.Popen(
        [sys.executable, '-c', 'import time; time.sleep(60)'],
        start_new_session=True, preexec_fn=parent_death_signal(signal.SIGKILL)
    )
    print(child.pid, flush=True)
    time.sleep(60)
''')


class TestParentDeathSignal:
    def test_child_dies_with_its_killed_parent(self):
        """
        SIGKILL leaves the parent no cleanup: the kernel ends the child,
        even in a session of its own
        """
        assert gone_within(orphan_of_killed_parent(STAND_IN_PARENT), 5)

    def test_child_of_a_live_parent_runs(self):
        child = subprocess.Popen(
            [sys.executable, '-c', 'print("ran")'], stdout=subprocess.PIPE,
            preexec_fn=parent_death_signal(9)
        )
        assert child.communicate()[0] == b'ran\n' and child.returncode == 0


class TestRunIdentity:
    def test_this_run_is_alive(self):
        identity = run_identity()
        assert identity.startswith(f'{os.getpid()}.')
        assert identity.replace('.', '').isdigit()
        assert run_alive(identity)

    def test_ended_run_is_gone(self):
        child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
        identity = run_identity(child.pid)
        assert run_alive(identity)
        child.kill()
        # a zombie, not yet reaped, is gone already
        time.sleep(0.2)
        assert not run_alive(identity)
        child.wait()
        assert not run_alive(identity)

    def test_reused_pid_is_another_run(self):
        pid = os.getpid()
        assert not run_alive(f'{pid}.{int(process_start_time(pid)) + 1}')

    def test_what_is_no_identity_counts_as_alive(self):
        for text in ('', 'x', '12', '12.', '.5', 'a.b', '1.2.3'):
            assert run_alive(text), text


class TestStopSignalsRaise:
    def test_first_signal_raises_repeats_ignored(self):
        before = signal.getsignal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            with stop_signals_raise():
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                finally:
                    # cleanup runs here: further signals must not cut it short
                    os.kill(os.getpid(), signal.SIGINT)
                    os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) is before

    @pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
    def test_each_stop_signal_names_itself(self, signum):
        before = signal.getsignal(signal.SIGHUP)
        with pytest.raises(StopRequested) as stopped:
            with stop_signals_raise():
                try:
                    os.kill(os.getpid(), signum)
                finally:
                    for repeat in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                        os.kill(os.getpid(), repeat)
        assert stopped.value.signum == signum
        assert isinstance(stopped.value, KeyboardInterrupt)
        assert signal.getsignal(signal.SIGHUP) is before
