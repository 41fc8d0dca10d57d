"""Stashes into one root tree, with the semantics of stacked OCI layers."""
import logging
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

from kiwi.command import Command

from kiwi_plugin_support.text import last_line

from kiwi_stackbuild_plugin.defaults import StackbuildDefaults
from kiwi_stackbuild_plugin.exceptions import (
    KiwiStackbuildError, KiwiStackConflictError, KiwiStackTargetExistsError
)
from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.layer import WHITEOUT_PREFIX
from kiwi_stackbuild_plugin.root_info import resolve_in_root

log = logging.getLogger('kiwi')

# rsync keeps what a root tree needs: hardlinks, ACLs, every xattr,
# devices and specials, numeric owners. --keep-dirlinks: a directory of
# an upper stash goes through a symlink of a lower one, so the
# /bin -> usr/bin links of a merged-/usr root survive
RSYNC_OPTIONS = ['-aHAX', '--numeric-ids', '--keep-dirlinks']

# how overlayfs marks layer content: a whiteout is a character device
# 0/0, an opaque directory carries this xattr; the storage may also
# keep them as OCI style '.wh.' files
OPAQUE_XATTRS = ('trusted.overlay.opaque', 'user.overlay.opaque')
OPAQUE_MARKER = WHITEOUT_PREFIX + WHITEOUT_PREFIX + '.opq'

# conflicting paths named in the error; the rest is counted
SHOWN_CONFLICTS = 5


@dataclass(frozen=True)
class StackItem:
    """
    One stash to stack

    :param str name: as the user named it, for messages
    :param str image: image id
    """
    name: str
    image: str


def layer_markers(layer_dir: str) -> Tuple[Set[str], Set[str]]:
    """
    The whiteouts and opaque directories of one overlay layer

    :return: (deleted paths, opaque directories), relative
    """
    deleted: Set[str] = set()
    opaque: Set[str] = set()
    for directory, dirs, files in os.walk(layer_dir):
        relative = os.path.relpath(directory, layer_dir)
        prefix = '' if relative == '.' else relative + '/'
        for name in dirs:
            path = os.path.join(directory, name)
            for xattr in OPAQUE_XATTRS:
                try:
                    if os.getxattr(path, xattr, follow_symlinks=False) == b'y':
                        opaque.add(prefix + name)
                except OSError:
                    pass
        for name in files:
            if name == OPAQUE_MARKER:
                opaque.add(prefix.rstrip('/'))
            elif name.startswith(WHITEOUT_PREFIX):
                deleted.add(prefix + name[len(WHITEOUT_PREFIX):])
            else:
                status = os.lstat(os.path.join(directory, name))
                if stat.S_ISCHR(status.st_mode) and status.st_rdev == 0:
                    deleted.add(prefix + name)
    return deleted, opaque


def tree_kinds(root: str) -> Dict[str, bool]:
    """
    Every path below root, parents first, mapped to whether it is a
    directory; a symlink is not, whatever it points to
    """
    kinds: Dict[str, bool] = {}
    pending = ['']
    while pending:
        prefix = pending.pop()
        with os.scandir(os.path.join(root, prefix)) as entries:
            for entry in entries:
                path = prefix + entry.name
                kinds[path] = entry.is_dir(follow_symlinks=False)
                if kinds[path]:
                    pending.append(path + '/')
    return kinds


def lower_kind(root: str, path: str) -> Optional[str]:
    """
    What path is in the stacked root, as rsync with --keep-dirlinks
    sees it

    :param str root: the root stacked so far
    :return: 'dir', 'dirlink' (a symlink to a directory), 'other', or
        None if path does not exist
    """
    parent, _, name = path.rpartition('/')
    location = os.path.join(resolve_in_root(root, parent), name)
    if os.path.islink(location):
        return 'dirlink' if os.path.isdir(resolve_in_root(root, path)) else 'other'
    if not os.path.lexists(location):
        return None
    return 'dir' if os.path.isdir(location) else 'other'


def find_conflicts(
    upper: Dict[str, bool], lower: Dict[str, Optional[str]]
) -> List[str]:
    """
    Paths where the upper tree has a directory and the lower one a
    non-directory, or the reverse; below a conflict nothing is reported

    A symlink to a directory in the lower tree takes either: an upper
    directory goes through it, an upper file or link replaces it.

    :param dict upper: path -> is a directory, of the upper stash
    :param dict lower: path -> lower_kind of the stacked root
    """
    conflicts: List[str] = []
    for path, is_dir in upper.items():
        if any(path.startswith(conflict + '/') for conflict in conflicts):
            continue
        kind = lower.get(path)
        if (is_dir and kind == 'other') or (not is_dir and kind == 'dir'):
            conflicts.append(path)
    return conflicts


def conflict_message(upper: str, paths: List[str], upper_kinds: Dict[str, bool]) -> str:
    shown = ', '.join(
        f"/{path} ({'a directory' if upper_kinds[path] else 'not a directory'} in {upper})"
        for path in paths[:SHOWN_CONFLICTS]
    )
    more = f' and {len(paths) - SHOWN_CONFLICTS} more' if len(paths) > SHOWN_CONFLICTS else ''
    return (
        f'the stash {upper} conflicts with the stashes below it at {shown}{more}: '
        'a file and a directory cannot stack; rebuild one of the stashes'
    )


def remove_path(root: str, path: str) -> None:
    """
    Delete path of the stacked root, following its parent's symlinks
    inside the root
    """
    parent, _, name = path.rpartition('/')
    location = os.path.join(resolve_in_root(root, parent), name)
    if os.path.isdir(location) and not os.path.islink(location):
        shutil.rmtree(location)
    elif os.path.lexists(location):
        os.unlink(location)


def check_target_free(root: str) -> None:
    """
    Check the root to stack into before anything is pulled or stacked

    :raises KiwiStackTargetExistsError: if root exists; it is never
        removed or written to
    """
    if os.path.lexists(root):
        raise KiwiStackTargetExistsError(
            f"'{root}' exists and is kept: remove it yourself or choose "
            "another --target-dir"
        )


class Stacker:
    """
    Stacks stashes into a root tree

    :param ContainerImages images: the container storage
    """
    def __init__(self, images: ContainerImages) -> None:
        self.images = images

    def stack(self, items: List[StackItem], root: str) -> None:
        """
        Stack the stashes, lowest first, into root

        The root grows in a private directory beside it and gets its
        name only when complete, so a failure leaves no half root.

        :param str root: where the stacked root goes; it must not exist,
            which the caller checks with check_target_free up front
        :raises KiwiStackConflictError: if a file meets a directory
        """
        parent = os.path.dirname(root)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix='.image-root.stacking-', dir=parent)
        try:
            for index, item in enumerate(items):
                log.info(f'Stacking {item.name} ({item.image[:12]})')
                self._add(item, staging, lower=items[:index])
            self._set_root_attributes(items[-1], staging)
            os.rename(staging, root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _add(self, item: StackItem, staging: str, lower: List[StackItem]) -> None:
        with self.images.mounted(item.image) as tree:
            if lower:
                self._prepare_lower(item, tree, staging)
            result = Command.run(
                ['rsync'] + RSYNC_OPTIONS + [tree + '/', staging + '/'],
                raise_on_error=False
            )
            if result.returncode != 0:
                raise KiwiStackbuildError(
                    f'cannot copy the stash {item.name}: {last_line(result.error)}'
                )

    def _prepare_lower(self, item: StackItem, tree: str, staging: str) -> None:
        """
        Apply the deletions of an upper stash to the stacked root and
        check that it can go on top
        """
        deleted, opaque = self._markers(item)
        upper = tree_kinds(tree)
        # a path the upper stash deleted goes; if the upper stash made
        # it again, the lower one still goes first, whatever it was
        for path in sorted(deleted):
            remove_path(staging, path)
        for path in sorted(opaque):
            if upper.get(path):
                kept = set(os.listdir(os.path.join(tree, path)))
                location = resolve_in_root(staging, path)
                if os.path.isdir(location):
                    for name in os.listdir(location):
                        if name not in kept:
                            remove_path(staging, f'{path}/{name}')
        conflicts = find_conflicts(
            upper, {path: lower_kind(staging, path) for path in upper}
        )
        if conflicts:
            raise KiwiStackConflictError(conflict_message(item.name, conflicts, upper))

    def _markers(self, item: StackItem) -> Tuple[Set[str], Set[str]]:
        layers = self.images.layer_dirs(item.image)
        if layers is None:
            log.warning(
                f'The storage driver keeps no layers: deletions made in {item.name} '
                'cannot apply to the stashes below it'
            )
            return set(), set()
        deleted: Set[str] = set()
        opaque: Set[str] = set()
        for layer in layers:
            layer_deleted, layer_opaque = layer_markers(layer)
            deleted |= layer_deleted
            opaque |= layer_opaque
        return deleted, opaque

    def _set_root_attributes(self, top: StackItem, staging: str) -> None:
        labels = self.images.inspect(top.image).get('Labels') or {}
        mode = labels.get(StackbuildDefaults.label_root_mode)
        owner = labels.get(StackbuildDefaults.label_root_owner)
        # without the labels (an image not made by stash) a root tree
        # gets the usual mode of '/'
        os.chmod(staging, int(mode, 8) if mode else 0o755)
        if owner:
            uid, gid = owner.split(':')
            os.chown(staging, int(uid), int(gid))
