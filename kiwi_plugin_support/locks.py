"""
Locks that tell whether their holder lives: a process holds flock on
a file or directory of its own while it runs, and the kernel drops the
lock when the process dies, SIGKILL included.
"""
import fcntl
import os
from typing import Optional


def lock_if_free(path: str, flags: int = os.O_RDONLY) -> Optional[int]:
    """
    An open descriptor of path with its exclusive lock, taken if no
    other process holds it: then whoever made path is gone

    :param int flags: of os.open, e.g. os.O_RDONLY | os.O_DIRECTORY
    :return: the descriptor, which the caller closes; None if path is
        gone or its lock is held
    """
    try:
        handle = os.open(path, flags | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        return None
    return handle
