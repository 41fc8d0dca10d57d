"""
Host files that the build in the box needs.

The box sees the host only through its shares: the description at
/description, the target dir at /bundle, --shared-path at its own path.
Small files named by the call, the --config file and the signing keys
(also those of a repository), CA certificates and credentials files of
the build arguments, are therefore carried: copied below the target dir
for the time of the build, the arguments pointing at the copies. A
local repository is no small file: it must lie below --shared-path.
"""
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List, Sequence, Tuple

from kiwi_boxed_plugin.agent.kiwi_box_protocol import (
    CARRIED_FILES_DIR,
    carriable_name,
    carried_file_path,
)
from kiwi_boxed_plugin.exceptions import KiwiBoxRequestError, KiwiBoxTargetDirError
from kiwi_boxed_plugin.target_files import NO_FOLLOW, remove_entry
from kiwi_plugin_support.kiwi_args import KiwiCommandArgs

# build options whose value names a file
FILE_OPTIONS = ('--signing-key', '--ca-cert')
# build options whose value is user:password or a file holding it
CREDENTIALS_OPTIONS = ('--set-repo-credentials', '--add-repo-credentials')
# build options whose value starts with a repository source; its
# seventh field may list signing key URIs: {file:///a.asc;file:///b.asc}
REPOSITORY_OPTIONS = ('--set-repo', '--add-repo')
REPOSITORY_KEYS_FIELD = 6
LOCAL_SOURCE_PREFIXES = ('dir://', 'file://')


@dataclass(frozen=True)
class CarriedFile:
    """
    A host file and the name of its copy below the carried files
    directory of the target dir, e.g. '1/key.asc'
    """
    host_path: str
    name: str

    @property
    def box_path(self) -> str:
        return carried_file_path(self.name)


def carried_config(config: str) -> CarriedFile:
    """
    The kiwi runtime config (--config) of the host's kiwi call
    """
    return CarriedFile(os.path.abspath(config), 'config/kiwi.yml')


def carry_build_files(
    build_args: KiwiCommandArgs, tokens: Sequence[str]
) -> Tuple[List[str], Tuple[CarriedFile, ...]]:
    """
    The build arguments with each host file replaced by its path in the
    box, and the files to carry

    A value that is no file on the host stays as it is: it may name a
    file of the box, or be user:password; kiwi in the box judges it.
    """
    carried: List[CarriedFile] = []

    def carry(host_file: str) -> str:
        host_path = os.path.abspath(host_file)
        basename = carriable_name(os.path.basename(host_path))
        carried.append(CarriedFile(host_path, f'{len(carried) + 1}/{basename}'))
        return carried[-1].box_path

    def carry_option(option: str, value: str) -> str:
        if option in REPOSITORY_OPTIONS:
            return carry_repository_keys(value, carry)
        return carry(value) if os.path.isfile(value) else value

    changed = build_args.map_values(
        tokens, FILE_OPTIONS + CREDENTIALS_OPTIONS + REPOSITORY_OPTIONS, carry_option
    )
    return changed, tuple(carried)


def carry_repository_keys(value: str, carry: Callable[[str], str]) -> str:
    """
    A repository specification with its local signing keys carried

    :param callable carry: host file -> its path in the box
    """
    fields = value.split(',')
    if len(fields) <= REPOSITORY_KEYS_FIELD or not fields[REPOSITORY_KEYS_FIELD].startswith('{'):
        return value
    keys = []
    for key in fields[REPOSITORY_KEYS_FIELD].strip('{}').split(';'):
        # kiwi takes keys as URIs: only a local scheme names a host file
        path = local_source_path(key)
        if path != key and os.path.isfile(path):
            key = f'file://{carry(path)}'
        keys.append(key)
    fields[REPOSITORY_KEYS_FIELD] = '{' + ';'.join(keys) + '}'
    return ','.join(fields)


def check_local_repositories(
    build_args: KiwiCommandArgs, tokens: Sequence[str], shared_path: str
) -> None:
    """
    :raises KiwiBoxRequestError: for a repository source that is a
        directory of the host outside --shared-path
    """
    for option in REPOSITORY_OPTIONS:
        for value in build_args.values_of(tokens, option):
            source = value.split(',', 1)[0]
            path = local_source_path(source)
            if not path or not os.path.isdir(path):
                continue
            real_path = os.path.realpath(path)
            if shared_path and os.path.commonpath([shared_path, real_path]) == shared_path:
                continue
            raise KiwiBoxRequestError(
                f'{option} source {source} is a directory of this host, which the box '
                'cannot see: give a directory above it with --shared-path (the box '
                'mounts it at the same path)'
            )


def local_source_path(source: str) -> str:
    """
    The host path a repository source names, '' for a remote one
    """
    for prefix in LOCAL_SOURCE_PREFIXES:
        if source.startswith(prefix):
            return source[len(prefix):]
    return source if source.startswith('/') else ''


@contextmanager
def carried_files(target_dir: str, files: Sequence[CarriedFile]) -> Iterator[None]:
    """
    The files below the target dir while the build runs, readable by
    their owner only (credentials may be among them)

    The carried dir is made afresh and filled through descriptors, so
    no link a build left there (the dir itself, or one inside it) leads
    a copy elsewhere.

    :raises KiwiBoxRequestError: if a file cannot be read
    :raises KiwiBoxTargetDirError: if the carried dir cannot be made
    """
    carried_dir = os.path.join(target_dir, CARRIED_FILES_DIR)
    # the name is ours: what is there is a leftover of a killed run (its
    # credentials), or a build's plant; removed, never followed, also
    # by a run that carries nothing
    remove_entry(carried_dir)
    if not files:
        yield
        return
    try:
        os.mkdir(carried_dir, 0o700)
    except OSError as issue:
        raise KiwiBoxTargetDirError(f'cannot create {carried_dir}: {issue.strerror}')
    try:
        directory = os.open(carried_dir, os.O_RDONLY | os.O_DIRECTORY | NO_FOLLOW)
        try:
            for carried in files:
                write_carried_file(directory, carried)
        finally:
            os.close(directory)
        yield
    finally:
        remove_entry(carried_dir)


def write_carried_file(carried_dir: int, carried: CarriedFile) -> None:
    """
    Copy one host file into the carried dir (a descriptor), owner only

    :raises KiwiBoxRequestError: if it cannot be copied
    """
    subdir, name = os.path.split(carried.name)
    try:
        with open(carried.host_path, 'rb') as source:
            os.mkdir(subdir, 0o700, dir_fd=carried_dir)
            directory = os.open(
                subdir, os.O_RDONLY | os.O_DIRECTORY | NO_FOLLOW, dir_fd=carried_dir
            )
            try:
                copy = os.open(
                    name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NO_FOLLOW, 0o600,
                    dir_fd=directory
                )
            finally:
                os.close(directory)
            with os.fdopen(copy, 'wb') as target:
                shutil.copyfileobj(source, target)
    except OSError as issue:
        raise KiwiBoxRequestError(
            f'cannot carry {carried.host_path} into the box: {issue.strerror}'
        )
