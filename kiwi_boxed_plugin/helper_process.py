"""
A background helper (virtiofsd, sshd) that lives exactly as long as
its with-block, and never longer than boxbuild, even one killed by
SIGKILL.
"""
import logging
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import KiwiBoxShareError
from kiwi_plugin_support.lifetime import parent_death_signal
from kiwi_plugin_support.text import last_line, read_text

log = logging.getLogger('kiwi')

# How often the helper's log is looked at while waiting for it
POLL_SECONDS = 0.05


@contextmanager
def helper_process(
    argv: Sequence[str], log_path: str, ready_text: str,
    pass_fds: Sequence[int] = ()
) -> Iterator[subprocess.Popen]:
    """
    Start a helper and wait until it writes ready_text to its log

    The helper's output goes to a file, not a pipe, so a chatty
    helper can never block on a full pipe nobody reads.

    :param list argv: program and arguments
    :param str log_path: file for the helper's stdout and stderr
    :param str ready_text: text the helper logs once it serves
    :param list pass_fds: descriptors the helper inherits
    :raises KiwiBoxShareError: if it ends or stays silent instead,
        with the last line it logged
    """
    name = os.path.basename(argv[0])
    with open(log_path, 'wb') as output:
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT, pass_fds=tuple(pass_fds),
            # keep a Ctrl-C of the terminal away from it: the with-block
            # decides when it stops, or its end when boxbuild is killed
            start_new_session=True, preexec_fn=parent_death_signal(signal.SIGKILL)
        )
    try:
        wait_until_ready(process, name, log_path, ready_text)
        yield process
    finally:
        stop_process(process)


def wait_until_ready(
    process: subprocess.Popen, name: str, log_path: str, ready_text: str
) -> None:
    deadline = time.monotonic() + Defaults.get_helper_start_seconds()
    while ready_text not in read_text(log_path):
        if process.poll() is not None:
            raise KiwiBoxShareError(
                f'{name} ended with exit code {process.returncode} before it was '
                f'ready: {last_line(read_text(log_path))}'
            )
        if time.monotonic() > deadline:
            raise KiwiBoxShareError(
                f'{name} was not ready within {Defaults.get_helper_start_seconds()} s: '
                f'{last_line(read_text(log_path))}'
            )
        time.sleep(POLL_SECONDS)


def stop_process(process: subprocess.Popen) -> None:
    """
    SIGTERM, a bounded wait, then SIGKILL; always reaped
    """
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(Defaults.get_qemu_stop_seconds())
    except subprocess.TimeoutExpired:
        log.warning(f'process {process.pid} did not stop: killing it')
        process.kill()
        process.wait()
