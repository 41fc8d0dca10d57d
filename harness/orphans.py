"""
Processes that must not outlive the one that started them: a stand-in
parent that starts one and is then killed with SIGKILL, which leaves it
no cleanup, and the wait for the orphan to end.
"""
import subprocess
import sys
import time

from harness.processes import alive

# A guard for a stand-in parent that never starts its child
START_GUARD_SECONDS = 60


def orphan_of_killed_parent(script: str) -> int:
    """
    Run script as a stand-in parent in a Python of its own, read the
    pid of the child it started from the first line it prints, then
    kill it with SIGKILL

    :return: the child's pid
    """
    parent = subprocess.Popen(
        [sys.executable, '-c', script], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
    )
    try:
        line = parent.stdout.readline() if parent.stdout else b''
        assert line.strip().isdigit(), f'the stand-in parent printed {line!r}'
        return int(line)
    finally:
        parent.kill()
        parent.wait(START_GUARD_SECONDS)
        if parent.stdout:
            parent.stdout.close()


def gone_within(pid: int, seconds: float) -> bool:
    """
    Whether process pid ends (or is a zombie) within seconds
    """
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
