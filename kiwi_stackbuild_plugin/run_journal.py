"""
The journal of one run: its image mounts and private directories,
written down before they are made, so that a later run can undo what a
killed one left. The run holds a lock on its journal while it lives.
"""
import fcntl
import json
import logging
import os
import secrets
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, List, Optional

from kiwi_plugin_support.locks import lock_if_free

from kiwi_stackbuild_plugin.exceptions import KiwiStackJournalError

log = logging.getLogger('kiwi')

JOURNAL_SUFFIX = '.journal'
# tells whether a journal was written since the last boot, when mounts
# of the runs before ended anyway
BOOT_ID = '/proc/sys/kernel/random/boot_id'


def boot_id() -> str:
    with open(BOOT_ID) as handle:
        return handle.read().strip()


def private_directory(directory: str) -> None:
    """
    Create the journal directory, or check that it is root's alone: a
    later run removes what the journals in it list

    :raises KiwiStackJournalError: if others could write journals there
    """
    os.makedirs(directory, mode=0o700, exist_ok=True)
    status = os.lstat(directory)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.geteuid() \
            or status.st_mode & 0o022:
        raise KiwiStackJournalError(
            f"'{directory}' keeps the journals of stash and stackbuild runs but is not "
            "a directory that only root can write: remove it and run again"
        )


@dataclass(frozen=True)
class Leftovers:
    """
    What a journal lists as still there

    :param str storage_conf: CONTAINERS_STORAGE_CONF of the run, '' for
        podman's default storage
    :param bool same_boot: written since the last boot
    :param list mounts: image ids, once per mount
    :param list directories: private directories of the run
    """
    storage_conf: str
    same_boot: bool
    mounts: List[str]
    directories: List[str]


class RunJournal:
    """
    One run's journal: one JSON object a line, appended

    :param str path: the journal file
    :param int handle: its descriptor, which holds the lock
    """
    def __init__(self, path: str, handle: int) -> None:
        self.path = path
        self.handle = handle

    @classmethod
    def started(cls, directory: str) -> 'RunJournal':
        """
        A new journal of this run, locked

        :param str directory: where the journals are kept
        """
        private_directory(directory)
        while True:
            path = os.path.join(directory, secrets.token_hex(8) + JOURNAL_SUFFIX)
            handle = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
            # a sweep may have taken the new, empty journal between the
            # two calls for one of a dead run and removed it
            if os.path.exists(path):
                break
            os.close(handle)
        journal = cls(path, handle)
        journal.note('run', {
            'boot': boot_id(), 'storage': os.environ.get('CONTAINERS_STORAGE_CONF', '')
        })
        return journal

    @classmethod
    def of_dead_runs(cls, directory: str) -> Iterator['RunJournal']:
        """
        The journals whose run has ended, each locked for the caller,
        who undoes what it lists and closes it
        """
        if not os.path.isdir(directory):
            return
        private_directory(directory)
        for name in sorted(os.listdir(directory)):
            if not name.endswith(JOURNAL_SUFFIX):
                continue
            path = os.path.join(directory, name)
            handle = lock_if_free(path)
            # None: its run is alive, or another sweep took it
            if handle is not None:
                yield cls(path, handle)

    def note(self, event: str, value: object) -> None:
        """
        Append one event: 'mount' or 'unmount' of an image id,
        'directory' made or 'removed'
        """
        os.write(self.handle, (json.dumps({event: value}) + '\n').encode())

    @contextmanager
    def directory(self, prefix: str, parent: Optional[str] = None) -> Iterator[str]:
        """
        A private directory of the run, removed with what it holds at
        the end, by a later run if this one is killed

        :param str parent: None for the system's temporary directory
        """
        path = os.path.join(parent or tempfile.gettempdir(), prefix + secrets.token_hex(6))
        self.note('directory', path)
        os.mkdir(path, 0o700)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
            self.note('removed', path)

    def leftovers(self) -> Leftovers:
        """
        What the journal lists as mounted and made but not undone
        """
        header: dict = {}
        mounts: List[str] = []
        directories: List[str] = []
        with open(self.path) as journal:
            for line in journal:
                try:
                    ((event, value),) = json.loads(line).items()
                except ValueError:
                    # the last line of a run killed while writing it
                    continue
                if event == 'run':
                    header = value
                elif event in ('mount', 'directory'):
                    (mounts if event == 'mount' else directories).append(value)
                elif event in ('unmount', 'removed'):
                    listed = mounts if event == 'unmount' else directories
                    if value in listed:
                        listed.remove(value)
        return Leftovers(
            storage_conf=header.get('storage', ''),
            same_boot=header.get('boot') == boot_id(),
            mounts=mounts, directories=directories,
        )

    def close(self) -> None:
        """
        Remove the journal: what it listed is undone
        """
        try:
            os.unlink(self.path)
        finally:
            os.close(self.handle)
