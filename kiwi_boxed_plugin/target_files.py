"""
The files boxbuild itself keeps in the target dir, which the box
writes too.

Over virtiofs and sshfs and in container mode, a build makes real
symbolic links, FIFOs and hard links of the host there. So the host
never follows a name inside the target dir: it removes what it finds
without following it, creates its own files afresh (O_EXCL) and reads
regular files only (O_NOFOLLOW). The target dir itself is the path the
user typed and is taken as it is.
"""
import errno
import os
import stat
from typing import BinaryIO, Optional

from kiwi_boxed_plugin.exceptions import KiwiBoxTargetDirError
from kiwi_boxed_plugin.staging import StagingError, remove_tree

# Open flags that keep the host off a link or FIFO a build left: a FIFO
# would block the open, a link would redirect it
NO_FOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def remove_entry(path: str) -> None:
    """
    Remove what the box may have left under path without following it:
    a directory with its tree (shutil.rmtree follows no link inside it),
    anything else (a link, a FIFO, a file) unlinked

    :raises KiwiBoxTargetDirError: if it cannot be removed
    """
    try:
        remove_tree(path)
    except StagingError as issue:
        raise KiwiBoxTargetDirError(f'{issue}: remove it yourself')


def create_file(path: str) -> BinaryIO:
    """
    A new empty file under path for writing, whatever was there removed:
    writing through an old name could reach a file a planted link or
    hard link names

    :raises KiwiBoxTargetDirError: if it cannot be created
    """
    remove_entry(path)
    try:
        descriptor = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NO_FOLLOW, 0o666
        )
    except OSError as issue:
        raise KiwiBoxTargetDirError(f'cannot create {path}: {issue.strerror}')
    return os.fdopen(descriptor, 'wb')


def read_file_end(path: str, limit: int) -> Optional[bytes]:
    """
    The last limit bytes of the regular file path (a box can leave a
    file of any size), None if there is none

    :raises KiwiBoxTargetDirError: if path is a link or a special file,
        or cannot be read
    """
    try:
        # lstat first: even opening a device node can have effects
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise KiwiBoxTargetDirError(not_a_regular_file(path))
        descriptor = os.open(path, os.O_RDONLY | NO_FOLLOW)
    except FileNotFoundError:
        return None
    except OSError as issue:
        if issue.errno == errno.ELOOP:
            raise KiwiBoxTargetDirError(not_a_regular_file(path))
        raise KiwiBoxTargetDirError(f'cannot read {path}: {issue.strerror}')
    with os.fdopen(descriptor, 'rb') as handle:
        status = os.fstat(descriptor)
        # what the lstat saw may have been swapped meanwhile
        if not stat.S_ISREG(status.st_mode):
            raise KiwiBoxTargetDirError(not_a_regular_file(path))
        handle.seek(max(0, status.st_size - limit))
        return handle.read(limit)


def not_a_regular_file(path: str) -> str:
    return (
        f'{path} is a link or a special file, which boxbuild never follows '
        '(the build may have planted it): remove it'
    )
