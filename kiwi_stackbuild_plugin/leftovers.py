"""
What runs leave undone: this run's, at its end, and what killed runs
left, swept by the next run.
"""
import logging
import os
import shutil
from contextlib import contextmanager
from typing import Iterator, Optional

from kiwi_stackbuild_plugin.defaults import StackbuildDefaults
from kiwi_stackbuild_plugin.images import unmount_left
from kiwi_stackbuild_plugin.run_journal import RunJournal

log = logging.getLogger('kiwi')


def undo(journal: RunJournal) -> None:
    """
    Unmount and remove what the journal lists as still there, then the
    journal

    Mounts of a run before the last boot ended with it, and so did
    those of a container storage that is gone.
    """
    leftovers = journal.leftovers()
    storage_there = not leftovers.storage_conf or os.path.exists(leftovers.storage_conf)
    if leftovers.same_boot and storage_there:
        for image in leftovers.mounts:
            unmount_left(image, leftovers.storage_conf)
    for directory in leftovers.directories:
        shutil.rmtree(directory, ignore_errors=True)
    journal.close()


@contextmanager
def journaled(directory: Optional[str] = None) -> Iterator[RunJournal]:
    """
    A journal of what the block mounts and makes; whatever it still
    lists at the end, after an error or a stop too, is undone then

    :param str directory: where journals are kept, None for the default
    """
    journal = RunJournal.started(directory or StackbuildDefaults.journal_dir)
    try:
        yield journal
    finally:
        undo(journal)


def sweep_dead_runs(directory: Optional[str] = None) -> None:
    """
    Undo what killed runs left: their image mounts and directories

    :param str directory: where journals are kept, None for the default
    """
    for journal in RunJournal.of_dead_runs(directory or StackbuildDefaults.journal_dir):
        leftovers = journal.leftovers()
        if leftovers.mounts or leftovers.directories:
            log.info(
                f'Cleaning up after a run that was killed: {len(leftovers.mounts)} image '
                f'mounts, directories {", ".join(leftovers.directories) or "(none)"}'
            )
        undo(journal)
