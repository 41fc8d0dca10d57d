"""
How a stash or stackbuild run stops: Ctrl-C, SIGTERM and SIGHUP alike
unwind it, once its programs ended, so that it removes what it mounted
and made; and its programs end with it however it ends, SIGKILL too.
"""
import glob
import logging
import os
import signal
import sys
import time
from contextlib import contextmanager
from typing import Iterator, List, Sequence

from kiwi_plugin_support.lifetime import (
    StopRequested,
    process_start_time,
    stop_signals_raise,
)

log = logging.getLogger('kiwi')

# how long the run's programs get to end on the Ctrl-C they are sent:
# rsync, tar, podman and skopeo take milliseconds, a nested kiwi
# unmounts what it mounted in its root; then those left get SIGTERM
# (a background job of a script inherits an ignored SIGINT) and a
# second more
PROGRAM_EXIT_SECONDS = 5.0
TERMINATED_EXIT_SECONDS = 1.0


def dies_with_parent(argv: Sequence[str], signal_name: str = 'TERM') -> List[str]:
    """
    argv run such that the program gets a signal when this process
    dies, even by SIGKILL: no rsync keeps writing into a root that a
    later run removes, no kiwi keeps building for nobody

    setpriv (util-linux) sets the signal and execs the program, as
    kiwi's Command.run takes no preexec_fn. A parent killed in the
    millisecond between fork and setpriv's prctl leaves the program
    running to its end.

    :param str signal_name: e.g. 'INT' for a program that cleans up on
        Ctrl-C only
    """
    return ['setpriv', '--pdeathsig', signal_name, '--'] + list(argv)


def child_processes() -> List[int]:
    """
    The running children of this process
    """
    children: List[int] = []
    for listing in glob.glob('/proc/self/task/*/children'):
        with open(listing) as handle:
            children += [int(pid) for pid in handle.read().split()]
    return [pid for pid in children if process_start_time(pid) is not None]


def stop_children() -> None:
    """
    Send the children Ctrl-C, SIGTERM to those that go on, and wait
    until they ended: an rsync still copying would refill the directory
    that the unwinding removes
    """
    for signum, limit in (
        (signal.SIGINT, PROGRAM_EXIT_SECONDS), (signal.SIGTERM, TERMINATED_EXIT_SECONDS)
    ):
        children = child_processes()
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and any(
            process_start_time(pid) is not None for pid in children
        ):
            time.sleep(0.05)


@contextmanager
def stopped_cleanly(command: str) -> Iterator[None]:
    """
    Turn the first stop signal into StopRequested, after the
    children ended, and ignore repeats, which would cut the cleanup
    short; at the end of the context the run exits with 128 + the
    signal number and one line

    A signal that is ignored already (nohup) stays ignored.

    :param str command: e.g. 'system stash', for the message
    """
    try:
        with stop_signals_raise(before_raise=stop_children, keep_ignored=True):
            yield
    except StopRequested as stopped:
        log.error(
            f"'kiwi-ng {command}' stopped by {signal.Signals(stopped.signum).name}: "
            'what it had mounted and its work directories are removed'
        )
        sys.exit(128 + stopped.signum)
