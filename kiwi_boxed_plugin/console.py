"""
One run of a box process, a qemu VM or a podman container alike: started
from an argument list, its console streamed to the terminal and to a log
file, watched for silence, stopped on every way out.
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
from typing import Any, BinaryIO, Iterator, Optional, Sequence

from kiwi_boxed_plugin.agent.kiwi_box_protocol import JOB_STARTED_LINE
from kiwi_boxed_plugin.exceptions import KiwiBoxRunError
from kiwi_boxed_plugin.helper_process import stop_process

log = logging.getLogger('kiwi')

READ_SIZE = 65536


@dataclass(frozen=True)
class RunOutcome:
    """
    How a box process ended

    :param int exit_code: the exit status of qemu or of the container
    :param bool job_started: the agent said it started kiwi
    :param bool stalled: stopped by the console watchdog
    """
    exit_code: int
    job_started: bool
    stalled: bool


@contextmanager
def interrupt_once() -> Iterator[None]:
    """
    Turn the first SIGINT or SIGTERM into KeyboardInterrupt and ignore
    repeats, so that a second Ctrl-C cannot cut the cleanup short and
    leave a box or a share helper running
    """
    def interrupted(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt
    previous = {
        number: signal.signal(number, interrupted)
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def box_process(argv: Sequence[str], interactive: bool) -> Iterator[subprocess.Popen]:
    """
    The box process with its console (and its own messages) on a pipe

    Without --box-debug it gets a session of its own, so a Ctrl-C of
    the terminal reaches boxbuild only, which then stops the box. With
    --box-debug the terminal stays the box's input.
    """
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=not interactive
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
            except (BrokenPipeError, ValueError):
                # the terminal went away: keep logging, keep building
                self.terminal = None
        if not self.job_started:
            # the marker may be split across two reads
            window = self.tail + chunk
            self.job_started = self.marker in window
            self.tail = window[-len(self.marker):]


def run_console(
    argv: Sequence[str], console_log: str, interactive: bool,
    silence_seconds: float = 0
) -> RunOutcome:
    """
    Run a box process to its end

    :param str console_log: file that receives the console
    :param float silence_seconds: stop the box if its console stays
        silent this long from the start; 0 waits forever
    """
    terminal = getattr(sys.stdout, 'buffer', None)
    with open(console_log, 'wb') as log_file, \
            box_process(argv, interactive) as process:
        stream = ConsoleStream(log_file, terminal)
        stalled = not pump_console(process, stream, silence_seconds)
        if stalled:
            stop_process(process)
        exit_code = process.wait()
    return RunOutcome(exit_code, stream.job_started, stalled)


def pump_console(
    process: subprocess.Popen, stream: ConsoleStream, silence_seconds: float
) -> bool:
    """
    Feed the console to stream until the box process closes it

    :return: False if the console stayed silent for silence_seconds
    """
    assert process.stdout is not None
    descriptor = process.stdout.fileno()
    deadline = time.monotonic() + silence_seconds
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        while True:
            timeout = None
            if silence_seconds and not stream.seen_output:
                timeout = max(0.0, deadline - time.monotonic())
            if not selector.select(timeout):
                return False
            chunk = os.read(descriptor, READ_SIZE)
            if not chunk:
                return True
            stream.feed(chunk)
