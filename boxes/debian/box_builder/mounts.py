"""
The mounts of the build: the kernel file systems of the chroot, the
shared package cache, and detaching what a killed build left mounted.
"""
import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from typing import Iterator, List

from box_builder.programs import run

# what package scripts and pip expect in the chroot:
# (file system type or 'bind', source, mount point in the root tree)
CHROOT_FILE_SYSTEMS = (
    ('proc', 'proc', 'proc'), ('sysfs', 'sysfs', 'sys'), ('bind', '/dev', 'dev'),
    ('devpts', 'devpts', 'dev/pts'),
)


def unmount(path: str) -> None:
    """
    Unmount a path, lazily if it is busy: cleanup must not fail
    """
    if subprocess.run(['umount', path]).returncode != 0:
        subprocess.run(['umount', '--lazy', path])


@contextmanager
def bind_mount(source: str, target: str) -> Iterator[None]:
    """
    A directory bind mounted for the time of the block
    """
    os.makedirs(target, exist_ok=True)
    run(['mount', '--bind', source, target])
    try:
        yield
    finally:
        unmount(target)


@contextmanager
def chroot_mounts(rootfs: str) -> Iterator[None]:
    """
    The kernel file systems that package scripts and pip expect in the
    chroot, unmounted whatever happens
    """
    mounted: List[str] = []
    try:
        for fstype, source, target in CHROOT_FILE_SYSTEMS:
            path = os.path.join(rootfs, target)
            os.makedirs(path, exist_ok=True)
            if fstype == 'bind':
                run(['mount', '--bind', source, path])
            else:
                run(['mount', '-t', fstype, source, path])
            mounted.append(path)
        yield
    finally:
        for path in reversed(mounted):
            unmount(path)


def mounts_below(path: str, mount_table: str) -> List[str]:
    """
    The mount points at or below a path, deepest first

    :param str mount_table: the content of /proc/self/mounts
    """
    prefix = os.path.realpath(path).rstrip('/') + '/'
    found = []
    for line in mount_table.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        # /proc/self/mounts escapes blanks in paths as octal
        point = re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), fields[1])
        if (point + '/').startswith(prefix):
            found.append(point)
    return sorted(found, key=lambda point: point.count('/'), reverse=True)


def remove_tree(path: str) -> None:
    """
    Remove a work tree, detaching first whatever a killed build left
    mounted in it: removing through a bind mount of /dev would delete
    the host's device nodes
    """
    if not os.path.lexists(path):
        return
    with open('/proc/self/mounts') as handle:
        for point in mounts_below(path, handle.read()):
            subprocess.run(['umount', '--lazy', point])
    shutil.rmtree(path, ignore_errors=True)
