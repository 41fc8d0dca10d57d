"""
One run of qemu: started from an argument list, its console streamed
to the terminal and to a log file, stopped on every way out.
"""
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator, Optional, Sequence

from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import KiwiBoxRunError, KiwiBoxToolMissingError
from kiwi_boxed_plugin.helper_process import stop_process
from kiwi_boxed_plugin.qemu import QEMU_ARCHES

log = logging.getLogger('kiwi')

READ_SIZE = 65536


@dataclass(frozen=True)
class RunOutcome:
    """
    How a qemu run ended

    :param int exit_code: qemu's exit status
    :param bool job_started: the agent said it started kiwi
    :param bool stalled: stopped by the console watchdog
    """
    exit_code: int
    job_started: bool
    stalled: bool


def find_qemu_binary(arch: str) -> str:
    """
    :raises KiwiBoxToolMissingError: naming the package to install
    """
    qemu_arch = QEMU_ARCHES[arch]
    found = shutil.which(qemu_arch.binary)
    if not found:
        raise KiwiBoxToolMissingError(
            f'{qemu_arch.binary} not found, needed for a {arch} box: '
            f'install {qemu_arch.package}'
        )
    return found


@contextmanager
def snapshot_overlay(disk: str, temp_dir: str) -> Iterator[str]:
    """
    A throw-away qcow2 on top of the cached box disk, removed after

    :param str temp_dir: the cache's temp area: overlays grow by GBs
        during a build, more than /tmp may hold
    """
    qemu_img = shutil.which('qemu-img')
    if not qemu_img:
        raise KiwiBoxToolMissingError('qemu-img not found: install qemu-utils')
    overlay = os.path.join(temp_dir, 'system-overlay.qcow2')
    subprocess.run(
        [
            qemu_img, 'create', '-q', '-f', 'qcow2', '-F', 'qcow2',
            '-b', os.path.abspath(disk), overlay
        ], check=True, stdin=subprocess.DEVNULL
    )
    try:
        yield overlay
    finally:
        os.unlink(overlay)


@contextmanager
def interrupt_once() -> Iterator[None]:
    """
    Turn the first SIGINT or SIGTERM into KeyboardInterrupt and ignore
    repeats, so that a second Ctrl-C cannot cut the cleanup short and
    leave qemu or a share helper running
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
def qemu_process(argv: Sequence[str], interactive: bool) -> Iterator[subprocess.Popen]:
    """
    qemu with its console (and its own messages) on a pipe

    Without --box-debug qemu gets a session of its own, so a Ctrl-C of
    the terminal reaches boxbuild only, which then stops qemu. With
    --box-debug the terminal stays qemu's input.
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
        self.marker = Defaults.get_agent_job_started_line().encode()
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


def run_box(
    argv: Sequence[str], console_log: str, interactive: bool,
    silence_seconds: float = 0
) -> RunOutcome:
    """
    Run qemu to its end

    :param str console_log: file that receives the console
    :param float silence_seconds: stop qemu if its console stays
        silent this long from the start; 0 waits forever
    """
    terminal = getattr(sys.stdout, 'buffer', None)
    with open(console_log, 'wb') as log_file, \
            qemu_process(argv, interactive) as process:
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
    Feed the console to stream until qemu closes it

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
