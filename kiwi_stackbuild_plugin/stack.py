"""Stashes into one root tree, with the semantics of stacked OCI layers."""
import logging
import os
import re
import secrets
import shutil
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Set, Tuple

from kiwi.command import Command

from kiwi_plugin_support.text import last_line

from kiwi_stackbuild_plugin.defaults import StackbuildDefaults
from kiwi_stackbuild_plugin.exceptions import (
    KiwiStackbuildError, KiwiStackConflictError, KiwiStackLabelError,
    KiwiStackTargetExistsError, KiwiStackWhiteoutError
)
from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.interruption import dies_with_parent
from kiwi_stackbuild_plugin.layer import WHITEOUT_PREFIX
from kiwi_stackbuild_plugin.leftovers import journaled
from kiwi_stackbuild_plugin.root_info import resolve_in_root
from kiwi_stackbuild_plugin.run_journal import RunJournal

log = logging.getLogger('kiwi')

# rsync keeps what a root tree needs: hardlinks, ACLs, every xattr,
# devices and specials, numeric owners. --keep-dirlinks: a directory of
# an upper stash goes through a symlink of a lower one, so the
# /bin -> usr/bin links of a merged-/usr root survive; rsync follows
# such a link on the host, see dirlinks_inside
RSYNC_OPTIONS = ['-aHAX', '--numeric-ids', '--keep-dirlinks']

# the permission bits a root directory may have: a '/' that others can
# write, or with set-id or sticky bits, is no root a stash makes
ROOT_MODE_BITS = 0o755
# the owner of a root directory: root, of any group; the user owning
# '/' could swap the programs kiwi runs as root in the root tree
ROOT_OWNER = re.compile(r'0:([0-9]{1,10})')
# chown's 'leave the group as it is', no group of a file
NO_GROUP = 2**32 - 1

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


def whiteout_target(name: str) -> Optional[str]:
    """
    The name an OCI style whiteout file deletes: '.wh.motd' deletes
    'motd'; None if it names no file of its directory ('.wh..',
    '.wh...', '.wh.', a '/') or is reserved ('.wh..wh.*')
    """
    target = name[len(WHITEOUT_PREFIX):]
    if target in ('', '.', '..') or '/' in target or target.startswith(WHITEOUT_PREFIX):
        return None
    return target


def layer_markers(layer_dir: str, stash: str) -> Tuple[Set[str], Set[str]]:
    """
    The whiteouts and opaque directories of one overlay layer

    A character device 0/0 is overlayfs' whiteout of its own name; a
    file named '.wh.NAME' the OCI style whiteout of NAME.

    :param str stash: the stash of the layer, for messages
    :return: (deleted paths, opaque directories), relative
    :raises KiwiStackWhiteoutError: if a whiteout names no file, such
        as '..', which would delete beside the root
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
            status = os.lstat(os.path.join(directory, name))
            if stat.S_ISCHR(status.st_mode) and status.st_rdev == 0:
                deleted.add(prefix + name)
            elif name == OPAQUE_MARKER:
                opaque.add(prefix.rstrip('/'))
            elif name.startswith(WHITEOUT_PREFIX):
                target = whiteout_target(name)
                if target is None:
                    raise KiwiStackWhiteoutError(
                        f"the stash {stash} holds the whiteout '/{prefix}{name}', which names "
                        'no file: the stash is damaged or crafted; rebuild it'
                    )
                deleted.add(prefix + target)
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


def host_location(root: str, path: str) -> str:
    """
    Where path of the root is on the host: its parent resolved inside
    the root, its last component as it is (it may be a symlink)

    :raises OSError: ELOOP if the parent is a symlink loop
    """
    parent, _, name = path.rpartition('/')
    return os.path.join(resolve_in_root(root, parent), name)


def lower_kind(root: str, path: str) -> Optional[str]:
    """
    What path is in the stacked root, as rsync with --keep-dirlinks
    sees it once dirlinks_inside pointed its symlinks

    :param str root: the root stacked so far
    :return: 'dir', 'dirlink' (a symlink to a directory of the root),
        'other' (a symlink loop too), or None if path does not exist
    """
    try:
        location = host_location(root, path)
    except OSError:
        # below a symlink loop there is nothing
        return None
    if os.path.islink(location):
        try:
            return 'dirlink' if os.path.isdir(resolve_in_root(root, path)) else 'other'
        except OSError:
            return 'other'
    if not os.path.lexists(location):
        return None
    return 'dir' if os.path.isdir(location) else 'other'


def shared_places(root: str, upper: Dict[str, bool]) -> List[str]:
    """
    Directories of the upper stash that land, through symlinks of the
    stacked root, where the upper stash puts a file or a symlink, e.g.
    /z/d and /c/d over z -> c: rsync would go through a link that the
    same copy made, to wherever it points

    :param dict upper: path -> is a directory, of the upper stash
    """
    places: Dict[str, Set[bool]] = {}
    located: Dict[str, str] = {}
    for path, is_dir in upper.items():
        try:
            located[path] = host_location(root, path)
        except OSError:
            # below a symlink loop: a conflict already
            continue
        places.setdefault(located[path], set()).add(is_dir)
    return [
        path for path, place in located.items() if upper[path] and len(places[place]) > 1
    ]


def dirlink_targets(
    root: str, upper: Dict[str, bool], lower: Dict[str, Optional[str]]
) -> Dict[str, str]:
    """
    The symlinks of the stacked root that directories of the upper
    stash go through

    :param dict upper: path -> is a directory, of the upper stash
    :param dict lower: path -> lower_kind of the stacked root
    :return: host location of each link -> the directory it leads to
        inside the root
    """
    return {
        host_location(root, path): resolve_in_root(root, path)
        for path, is_dir in upper.items() if is_dir and lower.get(path) == 'dirlink'
    }


@contextmanager
def dirlinks_inside(targets: Dict[str, str]) -> Iterator[None]:
    """
    Point the symlinks for the time of the block where they lead inside
    the root, with a relative link each

    rsync --keep-dirlinks follows them on the host, where a link to
    /etc, or to ../../../etc, leads out of the root: older rsync writes
    there, newer ones fail the copy. Each original is moved aside and
    put back, the same inode, so owner and times stay.

    :param dict targets: what dirlink_targets returns
    """
    moved: List[Tuple[str, str]] = []
    try:
        for location, target in targets.items():
            directory = os.path.dirname(location)
            aside = os.path.join(directory, f'.kiwi-stack-link-{secrets.token_hex(6)}')
            os.rename(location, aside)
            moved.append((location, aside))
            os.symlink(os.path.relpath(target, directory), location)
        yield
    finally:
        for location, aside in reversed(moved):
            os.replace(aside, location)


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
    inside the root; below a symlink loop there is nothing to delete
    """
    try:
        location = host_location(root, path)
    except OSError:
        return
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


def root_mode(labels: Dict[str, str], stash: str) -> int:
    """
    The mode of the root directory that the stash's label asks for;
    without the label (an image not made by stash) the usual one of '/'

    :raises KiwiStackLabelError: unless octal permission bits within
        ROOT_MODE_BITS, such as 0755, 0750 or 0555
    """
    label = StackbuildDefaults.label_root_mode
    text = labels.get(label)
    if not text:
        return 0o755
    if not re.fullmatch('0?[0-7]{3}', text) or int(text, 8) & ~ROOT_MODE_BITS:
        raise KiwiStackLabelError(
            f"the stash {stash} asks for the mode '{text}' of the root directory "
            f'(label {label}): only a mode that lets no one but root write, such as '
            '0755, is taken; rebuild the stash'
        )
    return int(text, 8)


def root_owner(labels: Dict[str, str], stash: str) -> Optional[Tuple[int, int]]:
    """
    The (uid, gid) of the root directory that the stash's label asks
    for, None without the label

    :raises KiwiStackLabelError: unless '0:GID', a numeric group
    """
    label = StackbuildDefaults.label_root_owner
    text = labels.get(label)
    if not text:
        return None
    match = ROOT_OWNER.fullmatch(text)
    if not match or int(match.group(1)) >= NO_GROUP:
        raise KiwiStackLabelError(
            f"the stash {stash} asks for the owner '{text}' of the root directory "
            f"(label {label}): a root tree belongs to root, '0:GID' with a numeric "
            'group; rebuild the stash'
        )
    return 0, int(match.group(1))


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
        name only when complete, so a failure leaves no half root, and
        the journal lets a later run remove it and unmount the stashes
        if this one is killed.

        :param str root: where the stacked root goes; it must not exist,
            which the caller checks with check_target_free up front
        :raises KiwiStackLabelError: if the top stash asks for an unsafe
            mode or owner of the root directory; before anything is stacked
        :raises KiwiStackConflictError: if a file meets a directory
        """
        labels = self.images.inspect(items[-1].image).get('Labels') or {}
        mode = root_mode(labels, items[-1].name)
        owner = root_owner(labels, items[-1].name)
        parent = os.path.dirname(root)
        os.makedirs(parent, exist_ok=True)
        with journaled() as journal, \
                journal.directory(StackbuildDefaults.staging_prefix, parent) as staging:
            for index, item in enumerate(items):
                log.info(f'Stacking {item.name} ({item.image[:12]})')
                self._add(item, staging, items[:index], journal)
            os.chmod(staging, mode)
            if owner:
                os.chown(staging, *owner)
            os.rename(staging, root)

    def _add(
        self, item: StackItem, staging: str, lower: List[StackItem], journal: RunJournal
    ) -> None:
        with self.images.mounted(item.image, journal) as tree:
            links = self._prepare_lower(item, tree, staging) if lower else {}
            with dirlinks_inside(links):
                result = Command.run(
                    dies_with_parent(['rsync'] + RSYNC_OPTIONS + [tree + '/', staging + '/']),
                    raise_on_error=False
                )
            if result.returncode != 0:
                raise KiwiStackbuildError(
                    f'cannot copy the stash {item.name}: {last_line(result.error)}'
                )

    def _prepare_lower(self, item: StackItem, tree: str, staging: str) -> Dict[str, str]:
        """
        Apply the deletions of an upper stash to the stacked root and
        check that it can go on top

        :return: the symlinks its directories go through, as
            dirlink_targets returns them
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
                try:
                    location = resolve_in_root(staging, path)
                except OSError:
                    # a symlink loop: no directory to empty
                    continue
                if os.path.isdir(location):
                    for name in os.listdir(location):
                        if name not in kept:
                            remove_path(staging, f'{path}/{name}')
        lower = {path: lower_kind(staging, path) for path in upper}
        conflicts = list(dict.fromkeys(
            find_conflicts(upper, lower) + shared_places(staging, upper)
        ))
        if conflicts:
            raise KiwiStackConflictError(conflict_message(item.name, conflicts, upper))
        return dirlink_targets(staging, upper, lower)

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
            layer_deleted, layer_opaque = layer_markers(layer, item.name)
            deleted |= layer_deleted
            opaque |= layer_opaque
        return deleted, opaque
