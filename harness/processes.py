"""
The processes of this host as the suites look at them: every process
with its arguments, the descendants of one, whether one is alive, those
that mention a path; Ctrl-C to a process group, and waiting for a text
in a file a process writes.
"""
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Set

from kiwi_plugin_support.lifetime import STOP_SIGNALS


def processes() -> Dict[int, List[str]]:
    """
    Every process of the host with its argument list
    """
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as handle:
                argv = handle.read().split(b'\0')
        except OSError:
            continue
        found[int(entry)] = [word.decode(errors='replace') for word in argv if word]
    return found


def processes_mentioning(text: str) -> List[List[str]]:
    """
    The argument lists of the host processes (but this one) that
    mention text, e.g. a container name or a target dir
    """
    return [
        argv for pid, argv in processes().items()
        if pid != os.getpid() and any(text in word for word in argv)
    ]


def descendants(pid: int) -> Set[int]:
    """
    The children of pid, their children, and so on
    """
    children: Dict[int, List[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as handle:
                parent = int(handle.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found: Set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as handle:
            state = handle.read().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


def wait_for_text(path: str, text: str, process: subprocess.Popen, limit: float) -> None:
    """
    Wait until a file holds text, the process ends, or limit seconds
    pass (a guard, not an assertion on speed)
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.exists(path):
            with open(path, 'rb') as handle:
                if text.encode() in handle.read():
                    return
        time.sleep(0.5)
    raise AssertionError(f'{text!r} did not appear in {path}')


def interrupt(process: subprocess.Popen) -> None:
    """
    Ctrl-C as a terminal sends it: to the whole foreground group
    """
    os.killpg(process.pid, signal.SIGINT)


@contextmanager
def default_stop_signals() -> Iterator[None]:
    """
    The stop signals at their defaults for the block, and so for the
    programs started in it: a test run under nohup inherits SIGHUP
    ignored, which our commands rightly keep ignored, so a test that
    stops one with SIGHUP would wait in vain
    """
    previous = {number: signal.signal(number, signal.SIG_DFL) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
