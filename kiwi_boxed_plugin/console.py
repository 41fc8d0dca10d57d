"""
One run of a box process, a qemu VM or a podman container alike: started
from an argument list, its console streamed to the terminal and to a log
file, watched for silence, a job that does not start and the time limit
of the run, stopped on every way out and never outliving boxbuild.
"""
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Dict, Iterator, Optional, Sequence

from kiwi_boxed_plugin.agent.kiwi_box_protocol import JOB_STARTED_LINE
from kiwi_boxed_plugin.exceptions import KiwiBoxRunError
from kiwi_boxed_plugin.helper_process import stop_process
from kiwi_boxed_plugin.target_files import create_file
from kiwi_plugin_support.lifetime import parent_death_signal

log = logging.getLogger('kiwi')

READ_SIZE = 65536

# The limits a box process can be stopped at
SILENT = 'silent'
NOT_STARTED = 'not started'
TIMED_OUT = 'timed out'

# How often a box whose job has not started is looked at for the
# started file
START_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class RunOutcome:
    """
    How a box process ended

    :param int exit_code: the exit status of qemu or of the container
    :param bool job_started: the agent said it started kiwi, or the
        started file of its limits appeared
    :param str limit: SILENT, NOT_STARTED or TIMED_OUT if stopped at
        that limit, '' otherwise
    """
    exit_code: int
    job_started: bool
    limit: str = ''

    @property
    def stalled(self) -> bool:
        """
        Stopped by the console watchdog: the box stayed silent
        """
        return self.limit == SILENT


@dataclass(frozen=True)
class Limits:
    """
    When a box process is stopped; 0 for no limit

    :param float silence: seconds its console may stay silent from the
        start (a box that does not even boot)
    :param float start: seconds until its job started
    :param float deadline: the time.monotonic() by which it must have
        ended
    :param str started_file: a file whose appearance also tells that the
        job started: a box without our agent prints no 'job started'
        line, but writes result.code before it runs kiwi
    """
    silence: float = 0
    start: float = 0
    deadline: float = 0
    started_file: str = ''


@contextmanager
def box_process(argv: Sequence[str], interactive: bool) -> Iterator[subprocess.Popen]:
    """
    The box process with its console (and its own messages) on a pipe

    Without --box-debug it gets a session of its own, so a Ctrl-C of
    the terminal reaches boxbuild only, which then stops the box. With
    --box-debug the terminal stays the box's input. Either way it gets
    SIGTERM when boxbuild dies (qemu then closes its disk cleanly).
    """
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=not interactive,
            preexec_fn=parent_death_signal(signal.SIGTERM)
        )
    except OSError as issue:
        raise KiwiBoxRunError(f'cannot start {argv[0]}: {issue.strerror}')
    try:
        yield process
    finally:
        stop_process(process)
        if process.stdout:
            process.stdout.close()


class ConsoleStream:
    """
    Copies console output to the terminal and a log file, and notices
    the agent's line that says the job started
    """
    def __init__(self, log_file: BinaryIO, terminal: Optional[BinaryIO]) -> None:
        self.log_file = log_file
        self.terminal = terminal
        self.marker = JOB_STARTED_LINE.encode()
        self.tail = b''
        self.job_started = False
        self.seen_output = False

    def feed(self, chunk: bytes) -> None:
        self.seen_output = True
        self.log_file.write(chunk)
        self.log_file.flush()
        if self.terminal:
            try:
                self.terminal.write(chunk)
                self.terminal.flush()
            except (OSError, ValueError):
                # the terminal went away (a pipe closed, a terminal hung
                # up: EIO): keep logging, keep building
                self.terminal = None
        if not self.job_started:
            # the marker may be split across two reads
            window = self.tail + chunk
            self.job_started = self.marker in window
            self.tail = window[-len(self.marker):]


def run_console(
    argv: Sequence[str], console_log: str, interactive: bool,
    limits: Optional[Limits] = None
) -> RunOutcome:
    """
    Run a box process to its end, or until it reaches a limit

    :param str console_log: file that receives the console
    :param Limits limits: when to stop the box; none by default
    """
    terminal = getattr(sys.stdout, 'buffer', None)
    # a file of its own: the name may be a link planted by a build
    with create_file(console_log) as log_file, \
            box_process(argv, interactive) as process:
        stream = ConsoleStream(log_file, terminal)
        reached = pump_console(process, stream, limits or Limits())
        if reached:
            stop_process(process)
        exit_code = process.wait()
    return RunOutcome(exit_code, stream.job_started, reached)


def pump_console(process: subprocess.Popen, stream: ConsoleStream, limits: Limits) -> str:
    """
    Feed the console to stream until the box process closes it or
    reaches a limit

    :return: the limit reached, '' if the box closed its console
    """
    assert process.stdout is not None
    descriptor = process.stdout.fileno()
    began = time.monotonic()
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        while True:
            if limits.started_file and not stream.job_started:
                # lexists: the box may have made it a link
                stream.job_started = os.path.lexists(limits.started_file)
            due = limits_due(limits, began, stream.seen_output, stream.job_started)
            now = time.monotonic()
            passed = [limit for limit, when in due.items() if when <= now]
            if passed:
                return min(passed, key=lambda limit: due[limit])
            wakes = list(due.values())
            if limits.started_file and not stream.job_started:
                wakes.append(now + START_POLL_SECONDS)
            if not selector.select(min(wakes) - now if wakes else None):
                continue
            chunk = os.read(descriptor, READ_SIZE)
            if not chunk:
                return ''
            stream.feed(chunk)


def limits_due(
    limits: Limits, began: float, seen_output: bool, job_started: bool
) -> Dict[str, float]:
    """
    The limits that still apply, with the time.monotonic() at which
    each is reached

    :param float began: when the box process started
    """
    due = {}
    if limits.silence and not seen_output:
        due[SILENT] = began + limits.silence
    if limits.start and not job_started:
        due[NOT_STARTED] = began + limits.start
    if limits.deadline:
        due[TIMED_OUT] = limits.deadline
    return due
