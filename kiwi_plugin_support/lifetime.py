"""
The lifetime of a run and of what it starts: helpers that end with the
run, however it ends (SIGKILL included), and the run's identity, which
it writes into the names and labels of what only a later run can
remove, so that the later run can tell that its maker is gone.
"""
import ctypes
import os
import signal
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

# prctl option of <linux/prctl.h>: the signal a process gets when the
# thread that started it ends
PR_SET_PDEATHSIG = 1

# The signals that stop a run: Ctrl-C, kill's default, a closed terminal
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# The exit status of a child whose parent died before it could ask for
# the parent death signal, as a shell reports a SIGKILL
ORPHAN_EXIT = 128 + signal.SIGKILL


def parent_death_signal(signum: int) -> Callable[[], None]:
    """
    A preexec_fn for subprocess.Popen: the child gets signum when this
    process dies, even by SIGKILL, which leaves no cleanup to run

    The kernel sends it when the starting thread ends: boxbuild starts
    its helpers from the main thread, which lives as long as the run.
    The signal survives exec, except of a set-user-ID program such as
    sudo. Only a system call and a comparison run in the forked child,
    nothing that takes a lock another thread may hold.

    :param int signum: e.g. SIGTERM for a process that should close
        its files, SIGKILL for one that holds nothing worth keeping
    """
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def in_child() -> None:
        if prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), 'prctl(PR_SET_PDEATHSIG) failed')
        if os.getppid() != parent:
            # the parent died between fork and prctl: no signal will come
            os._exit(ORPHAN_EXIT)
    return in_child


class StopRequested(KeyboardInterrupt):
    """
    A run stopped by one of STOP_SIGNALS; a KeyboardInterrupt, so that
    no handler of ordinary errors holds it up

    :param int signum: the signal
    """
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def stop_signals_raise(
    before_raise: Callable[[], None] = lambda: None, keep_ignored: bool = False
) -> Iterator[None]:
    """
    Turn the first of STOP_SIGNALS into StopRequested and ignore
    repeats, so that a second Ctrl-C cannot cut the cleanup short

    :param callable before_raise: runs once the repeats are ignored,
        before StopRequested is raised
    :param bool keep_ignored: a signal ignored already (nohup) stays
        ignored
    """
    def stop(signum: int, frame: Any) -> None:
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        before_raise()
        raise StopRequested(signum)
    previous = {
        number: signal.signal(number, stop) for number in STOP_SIGNALS
        if not (keep_ignored and signal.getsignal(number) is signal.SIG_IGN)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def process_start_time(pid: int) -> Optional[str]:
    """
    When a process started, in clock ticks since boot (field 22 of
    /proc/<pid>/stat), None if there is no such process: together with
    the pid it names a process for good, pids are reused
    """
    try:
        with open(f'/proc/{pid}/stat') as handle:
            # the command name in parentheses may hold spaces
            fields = handle.read().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is field 3 (the state)
    return fields[19] if len(fields) > 19 and fields[0] not in ('Z', 'X') else None


def run_identity(pid: Optional[int] = None) -> str:
    """
    The identity of a run: '<pid>.<start time>' of its process, this
    one by default; letters, digits and a dot only, fit for file names
    and container names
    """
    pid = os.getpid() if pid is None else pid
    return f'{pid}.{process_start_time(pid)}'


def run_alive(identity: str) -> bool:
    """
    Whether the run of this identity still runs; an identity that is
    none (an older name) counts as alive, so it is never swept
    """
    pid, dot, start = identity.partition('.')
    if not (pid.isdigit() and dot and start.isdigit()):
        return True
    return process_start_time(int(pid)) == start
