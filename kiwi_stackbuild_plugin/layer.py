"""One image layer as an uncompressed tar file, written by GNU tar."""
import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import List, Optional, Sequence

from kiwi_stackbuild_plugin.exceptions import KiwiStashError
from kiwi_stackbuild_plugin.interruption import dies_with_parent

# the name OCI layers use to say "this path of a lower layer is gone"
WHITEOUT_PREFIX = '.wh.'

# tar keeps what a root tree needs: numeric owners (the host's user
# database means nothing for the root), every xattr (file capabilities,
# user.*, ...) and POSIX ACLs. PAX headers carry sub-second mtimes; they
# are made deterministic (no pid in their names, no atime/ctime) so the
# same tree gives the same layer digest and the storage dedups it.
TAR_OPTIONS = [
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '--numeric-owner',
    '--xattrs', '--xattrs-include=*',
    '--acls',
]

_CHUNK = 1 << 20


def whiteout_name(path: str) -> str:
    """
    The layer entry that deletes path, e.g. 'etc/.wh.motd' for 'etc/motd'
    """
    parent, _, name = path.rpartition('/')
    return f'{parent}/{WHITEOUT_PREFIX}{name}' if parent else WHITEOUT_PREFIX + name


def tar_argv(
    root: str, listing: Optional[str] = None,
    whiteout_dir: Optional[str] = None, whiteout_listing: Optional[str] = None
) -> List[str]:
    """
    The tar command writing a layer to stdout

    :param str root: the root tree
    :param str listing: file with the NUL separated paths to store,
        None stores the whole tree
    :param str whiteout_dir: tree holding the whiteout entries
    :param str whiteout_listing: file with the NUL separated whiteouts
    """
    argv = ['tar', '--create', '--file=-'] + TAR_OPTIONS
    if listing is None:
        return argv + ['--directory', root, '.']
    # --verbatim-files-from: a path starting with '-' is a path
    argv += ['--no-recursion', '--null', '--verbatim-files-from']
    if whiteout_dir and whiteout_listing:
        argv += ['--directory', whiteout_dir, '--files-from', whiteout_listing]
    return argv + ['--directory', root, '--files-from', listing]


def write_listing(path: str, names: Sequence[str]) -> None:
    with open(path, 'wb') as listing:
        for name in names:
            listing.write(os.fsencode(name) + b'\0')


@dataclass(frozen=True)
class LayerTar:
    """
    A layer written to disk

    :param str path: the tar file
    :param str digest: 'sha256:...' of the tar (its diff id)
    :param int size: bytes
    """
    path: str
    digest: str
    size: int

    @classmethod
    def whole_tree(cls, root: str, path: str) -> 'LayerTar':
        """
        Write the whole root tree as a layer
        """
        return cls._write(tar_argv(root), path)

    @classmethod
    def changes(
        cls, root: str, changed: Sequence[str], deleted: Sequence[str], path: str
    ) -> 'LayerTar':
        """
        Write a layer holding the changed paths and whiteouts for the
        deleted ones

        :param str path: the tar file; its directory takes helper files
        """
        work = os.path.dirname(path)
        listing = os.path.join(work, 'changed.list')
        write_listing(listing, changed)
        whiteout_dir = os.path.join(work, 'whiteouts')
        whiteout_listing = os.path.join(work, 'whiteouts.list')
        whiteouts = [whiteout_name(name) for name in deleted]
        for name in whiteouts:
            os.makedirs(os.path.join(whiteout_dir, os.path.dirname(name)), exist_ok=True)
            open(os.path.join(whiteout_dir, name), 'w').close()
        write_listing(whiteout_listing, whiteouts)
        return cls._write(
            tar_argv(root, listing, whiteout_dir if whiteouts else None, whiteout_listing),
            path
        )

    @classmethod
    def _write(cls, argv: List[str], path: str) -> 'LayerTar':
        # hashing while writing saves reading the layer a second time
        digest = hashlib.sha256()
        size = 0
        # not kiwi's Command: Command.run holds all output in memory (a
        # layer is gigabytes) and Command.call pipes stderr too. stderr
        # goes to a file: a pipe nobody reads while the layer streams
        # would block tar after many warnings
        with open(path, 'wb') as layer, tempfile.TemporaryFile() as errors:
            tar = subprocess.Popen(
                dies_with_parent(argv), stdout=subprocess.PIPE, stderr=errors
            )
            assert tar.stdout
            while True:
                chunk = tar.stdout.read(_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                layer.write(chunk)
                size += len(chunk)
            tar.stdout.close()
            if tar.wait() != 0:
                errors.seek(0)
                lines = errors.read().decode(errors='replace').strip().splitlines()
                # the first line names the file; the last only says
                # that tar gave up
                raise KiwiStashError(
                    f"tar failed on the root tree: {lines[0] if lines else 'no message'}"
                )
        return cls(path, 'sha256:' + digest.hexdigest(), size)
