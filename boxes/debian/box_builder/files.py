"""
Reading, writing and checksumming the files of the build.
"""
import errno
import hashlib
import os
import stat
from typing import Optional, Sequence, Union

from box_builder.errors import BoxBuildError


def read_file(path: str) -> bytes:
    """
    :return: the file's content
    """
    with open(path, 'rb') as handle:
        return handle.read()


def write_file(path: str, content: Union[str, bytes], mode: int = 0o644) -> None:
    """
    Write a file, making its directory if need be

    The file is never reached through a symbolic link, and its mode is
    set on the open file: a link put in its place (by a package in the
    root tree, or by a user in a directory of theirs) cannot make the
    build write or chmod a file of the host.

    :param content: text (written as UTF-8) or bytes
    :param int mode: the file's permissions, set whatever the umask
    :raises BoxBuildError: if the path is a symbolic link
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        descriptor = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode
        )
    except OSError as issue:
        if issue.errno == errno.ELOOP:
            raise BoxBuildError(f'{path} is a symbolic link: the build writes no file through one')
        raise
    with open(descriptor, 'wb') as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(content.encode() if isinstance(content, str) else content)


def copy_file(source: str, target: str, mode: int = 0o644) -> None:
    """
    Copy a file's content as write_file writes it

    :param int mode: the copy's permissions
    """
    write_file(target, read_file(source), mode)


def first_file_holding(directory: str, needles: Sequence[bytes]) -> Optional[str]:
    """
    The first regular file below a directory that holds any of the
    needles (links are not followed), read in chunks; None if none does
    """
    overlap = max(len(needle) for needle in needles) - 1
    for parent, _, names in sorted(os.walk(directory)):
        for name in sorted(names):
            path = os.path.join(parent, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            tail = b''
            with open(path, 'rb') as handle:
                for chunk in iter(lambda: handle.read(1024 * 1024), b''):
                    # the tail of the last chunk: a needle across the border
                    window = tail + chunk
                    if any(needle in window for needle in needles):
                        return path
                    tail = window[len(window) - overlap:]
    return None


def file_sha256(path: str) -> str:
    """
    :return: the hex SHA-256 of a file, read in chunks (disks are large)
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b''):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_line(digest: str, name: str) -> str:
    """
    :return: a line of a .sha256 file, as sha256sum writes it
    """
    return f'{digest}  {name}\n'
