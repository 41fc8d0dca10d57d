#!/usr/bin/python3
"""
The staging bundle of a box container: the box builds into an empty
directory of its own inside the target dir, and its results are moved
over afterwards, so that nothing the user kept in the target dir is
cleared (a published box empties its /bundle) or mixed up with the
build.

A result replaces an older entry of the same name, as kiwi itself
replaces its results; every other entry of the target dir stays. The
build's build/ tree comes over only as build/image-root, and only when
asked (--keep-image-root); the rest of the staging dir is removed.

The moves are renames within one file system, so they keep owners,
modes, links and extended attributes as they are, and nothing is ever
followed: a link the build made is moved or removed as a link.

This file also runs on its own, with nothing but Python's standard
library: for a user who runs podman through sudo, the box's files are
root's, and a short helper container of the box image (root, the target
dir mounted) runs it to do the moves and removals the user may not do.
"""
import os
import re
import shutil
import stat
import sys
from typing import List, Optional, Sequence, Tuple

# Names of what a run makes: kiwi-boxbuild-<pid>.<start time>-<random>,
# as kiwi_boxed_plugin.leftovers names them
STAGING_NAME = re.compile(r'kiwi-boxbuild-(\d+\.\d+)-\w+')

# kiwi's build tree and the image root in it
BUILD_DIR = 'build'
IMAGE_ROOT = 'image-root'
# carried host files: the run's own, removed with the staging dir
CARRIED_FILES_DIR = '.boxbuild.files'

# The options of the script
KEEP_IMAGE_ROOT_OPTION = '--keep-image-root'
MOVE_OPTION = '--move'
REMOVE_OPTION = '--remove'


class StagingError(Exception):
    """
    A move or removal that failed; one line saying which
    """


def staging_entries(names: Sequence[str], keep_image_root: bool) -> List[str]:
    """
    The entries of a staging dir that are moved to the target dir,
    sorted; build/ only as build/image-root when keep_image_root

    :param list names: the names in the staging dir
    """
    moved = sorted(name for name in names if name not in (BUILD_DIR, CARRIED_FILES_DIR))
    if keep_image_root and BUILD_DIR in names:
        moved.append(os.path.join(BUILD_DIR, IMAGE_ROOT))
    return moved


def is_directory(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def remove_tree(path: str) -> None:
    """
    Remove path without following it: a directory with its tree, a
    link or file alone; nothing if it is not there

    :raises StagingError: if it cannot be removed
    """
    try:
        if is_directory(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as issue:
        raise StagingError(f'cannot remove {issue.filename or path}: {issue.strerror}')


def move_entry(source: str, destination: str) -> None:
    """
    Rename source to destination, replacing what destination was; a
    directory is replaced whole (a rename onto a directory needs it
    empty)

    :raises StagingError: if it cannot be moved
    """
    if is_directory(destination) or (os.path.lexists(destination) and is_directory(source)):
        remove_tree(destination)
    try:
        os.rename(source, destination)
    except OSError as issue:
        raise StagingError(f'cannot move {source} to {destination}: {issue.strerror}')


def move_results(staging: str, target: str, keep_image_root: bool) -> List[str]:
    """
    Move the results of staging over to target

    :return: the names moved, relative to target
    :raises StagingError: if an entry cannot be moved; the others are
        moved still
    """
    names = os.listdir(staging) if is_directory(staging) else []
    if keep_image_root and not is_directory(os.path.join(staging, BUILD_DIR, IMAGE_ROOT)):
        keep_image_root = False
    moved = []
    problems = []
    for name in staging_entries(names, keep_image_root):
        if os.path.dirname(name):
            parent = os.path.join(target, os.path.dirname(name))
            if not is_directory(parent):
                remove_tree(parent)
                os.mkdir(parent, 0o755)
        try:
            move_entry(os.path.join(staging, name), os.path.join(target, name))
            moved.append(name)
        except StagingError as issue:
            problems.append(str(issue))
    if problems:
        raise StagingError('; '.join(problems))
    return moved


def finish(
    target: str, staging_name: str, keep_image_root: bool, gone: Sequence[str] = ()
) -> List[str]:
    """
    Move the results of the staging dir staging_name of target over,
    then remove it and the staging dirs of gone runs

    :param list gone: names of staging dirs whose run is gone
    :return: the names moved
    :raises StagingError: if something could not be moved or removed;
        everything else is done
    """
    problems = []
    moved: List[str] = []
    if staging_name:
        check_staging_name(staging_name)
        try:
            moved = move_results(os.path.join(target, staging_name), target, keep_image_root)
        except StagingError as issue:
            problems.append(str(issue))
    for name in ([staging_name] if staging_name else []) + list(gone):
        check_staging_name(name)
        try:
            remove_tree(os.path.join(target, name))
        except StagingError as issue:
            problems.append(str(issue))
    if problems:
        raise StagingError('; '.join(problems))
    return moved


def check_staging_name(name: str) -> None:
    """
    :raises StagingError: for a name no run gives a staging dir: the
        script removes nothing else
    """
    if not STAGING_NAME.fullmatch(name):
        raise StagingError(f'{name} is no staging dir name')


def script_argv(
    target: str, staging_name: str, keep_image_root: bool, gone: Sequence[str]
) -> List[str]:
    """
    The arguments of this script for finish()
    """
    argv = [target]
    if staging_name:
        argv += [MOVE_OPTION, staging_name]
    if keep_image_root:
        argv.append(KEEP_IMAGE_ROOT_OPTION)
    for name in gone:
        argv += [REMOVE_OPTION, name]
    return argv


def parse_script_argv(argv: Sequence[str]) -> Tuple[str, str, bool, List[str]]:
    """
    :return: the finish() arguments of script_argv's words
    :raises StagingError: for words script_argv does not make
    """
    if not argv:
        raise StagingError('usage: staging.py TARGET [--move NAME] [--keep-image-root] '
                           '[--remove NAME]...')
    target, words = argv[0], list(argv[1:])
    staging_name = ''
    keep_image_root = False
    gone: List[str] = []
    while words:
        word = words.pop(0)
        if word == KEEP_IMAGE_ROOT_OPTION:
            keep_image_root = True
        elif word in (MOVE_OPTION, REMOVE_OPTION) and words:
            value = words.pop(0)
            if word == MOVE_OPTION:
                staging_name = value
            else:
                gone.append(value)
        else:
            raise StagingError(f'unknown argument {word}')
    return target, staging_name, keep_image_root, gone


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        finish(*parse_script_argv(sys.argv[1:] if argv is None else argv))
    except StagingError as issue:
        print(f'staging: {issue}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
