"""What changed between two root trees, in terms of image layers."""
import os
import stat
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple


@dataclass(frozen=True)
class Entry:
    """
    What a layer records of one path

    :param str kind: 'dir', 'file', 'link', 'char', 'block', 'fifo' or 'socket'
    :param int size: bytes of a regular file, 0 otherwise
    :param str target: the target of a symlink, '' otherwise
    :param tuple xattrs: sorted (name, value) pairs, ACLs included
    :param tuple inode: (device, inode) of a file with more than one
        link, None otherwise; compared through link partners only
    """
    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    rdev: int
    target: str
    xattrs: Tuple[Tuple[str, bytes], ...]
    inode: Optional[Tuple[int, int]] = None

    def same_content(self, other: 'Entry') -> bool:
        """
        Whether a layer would record both alike (inode aside)
        """
        return (
            self.kind, self.mode, self.uid, self.gid, self.size,
            self.mtime_ns, self.rdev, self.target, self.xattrs
        ) == (
            other.kind, other.mode, other.uid, other.gid, other.size,
            other.mtime_ns, other.rdev, other.target, other.xattrs
        )


Tree = Dict[str, Entry]

_KINDS = (
    (stat.S_ISDIR, 'dir'), (stat.S_ISREG, 'file'), (stat.S_ISLNK, 'link'),
    (stat.S_ISCHR, 'char'), (stat.S_ISBLK, 'block'), (stat.S_ISFIFO, 'fifo'),
    (stat.S_ISSOCK, 'socket'),
)


def _xattrs(path: str) -> Tuple[Tuple[str, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(sorted(
        (name, os.getxattr(path, name, follow_symlinks=False)) for name in names
    ))


def entry_of(path: str) -> Entry:
    """
    The layer view of one path on disk
    """
    status = os.lstat(path)
    kind = next(name for test, name in _KINDS if test(status.st_mode))
    return Entry(
        kind=kind,
        mode=stat.S_IMODE(status.st_mode),
        uid=status.st_uid,
        gid=status.st_gid,
        size=status.st_size if kind == 'file' else 0,
        mtime_ns=status.st_mtime_ns,
        rdev=status.st_rdev if kind in ('char', 'block') else 0,
        target=os.readlink(path) if kind == 'link' else '',
        xattrs=_xattrs(path),
        inode=(status.st_dev, status.st_ino)
        if kind != 'dir' and status.st_nlink > 1 else None,
    )


def scan_tree(root: str) -> Tree:
    """
    Every path below root, parents before children, root excluded

    :param str root: the tree to scan
    :return: relative path -> Entry, in walk order
    """
    tree: Tree = {}

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            relative = prefix + name
            entry = entry_of(os.path.join(directory, name))
            tree[relative] = entry
            if entry.kind == 'dir':
                walk(os.path.join(directory, name), relative + '/')
    walk(root, '')
    return tree


def _partners(tree: Tree) -> Dict[str, Tuple[str, ...]]:
    groups: Dict[Tuple[int, int], List[str]] = {}
    for path, entry in tree.items():
        if entry.inode:
            groups.setdefault(entry.inode, []).append(path)
    return {
        path: tuple(members) for members in groups.values() for path in members
    }


@dataclass(frozen=True)
class TreeDiff:
    """
    The changes that turn the old tree into the new one

    :param list changed: paths to store in the layer, parents first
    :param list deleted: paths to whiteout; the top-most of a deleted
        subtree only
    """
    changed: List[str]
    deleted: List[str]

    @property
    def empty(self) -> bool:
        return not self.changed and not self.deleted

    @classmethod
    def compare(cls, old: Tree, new: Tree) -> 'TreeDiff':
        """
        Compare two scanned trees

        A file that changed takes all its hardlinks along, or the
        layer would split them apart.
        """
        old_partners = _partners(old)
        new_partners = _partners(new)
        changed = {
            path for path, entry in new.items()
            if path not in old
            or not entry.same_content(old[path])
            or new_partners.get(path, (path,)) != old_partners.get(path, (path,))
        }
        for path in list(changed):
            changed.update(new_partners.get(path, ()))
        deleted = []
        for path in old:
            if path in new:
                continue
            parent = path.rpartition('/')[0]
            # below a deleted directory, or below a directory that
            # became a file: gone with its parent
            if parent and (parent not in new or new[parent].kind != 'dir'):
                continue
            deleted.append(path)
        return cls(
            changed=[path for path in new if path in changed],
            deleted=deleted,
        )
