"""
Helpers of the stash/stackbuild integration tests: the probe tree, its
fingerprint, and kiwi-ng runs with the test runtime configuration.
"""
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from typing import Any, Dict, List, Optional

DATA = os.path.join(os.path.dirname(__file__), '..', '..', 'data', 'stackbuild')
DESCRIPTION = os.path.abspath(os.path.join(DATA, 'description'))
RUNTIME_CONFIG = os.path.abspath(os.path.join(DATA, 'runtime', 'kiwi.yml'))
KIWI = [os.path.join(os.path.dirname(sys.executable), 'kiwi-ng')]

# kiwi's --temp-dir for the kiwi-ng runs, set by the containers fixture
TEMP_DIR: Optional[str] = None

# a probe file's mtimes: one far in the past, one with nanoseconds
OLD_MTIME_NS = 315532800 * 10**9
FINE_MTIME_NS = 1700000000 * 10**9 + 123456789


def free_port() -> int:
    """
    A port on 127.0.0.1 that nothing listens on right now
    """
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def write_description(config: str, mirror: str, name: str = 'stackbuild-probe') -> None:
    """
    Write the test description with the host's mirror to config, e.g.
    ROOT/image/config.xml where kiwi keeps it in a root tree
    """
    with open(os.path.join(DESCRIPTION, 'config.xml')) as handle:
        text = handle.read().replace('@MIRROR@', mirror)
    text = text.replace('name="stackbuild-probe"', f'name="{name}"')
    os.makedirs(os.path.dirname(config), exist_ok=True)
    with open(config, 'w') as handle:
        handle.write(text)


def make_probe(directory: str) -> None:
    """
    Fill directory with one of each thing a root tree can hold
    """
    os.makedirs(directory)
    path = os.path.join
    with open(path(directory, 'plain'), 'w') as handle:
        handle.write('plain\n')
    with open(path(directory, 'owned'), 'w') as handle:
        handle.write('owned by 1234:5678\n')
    os.chown(path(directory, 'owned'), 1234, 5678)
    os.chmod(path(directory, 'owned'), 0o4751)
    with open(path(directory, 'xattr'), 'w') as handle:
        handle.write('user xattr\n')
    os.setxattr(path(directory, 'xattr'), 'user.probe', b'value \x00 with nul')
    shutil.copy('/bin/true', path(directory, 'capable'))
    subprocess.run(['setcap', 'cap_net_raw+ep', path(directory, 'capable')], check=True)
    with open(path(directory, 'acl'), 'w') as handle:
        handle.write('acl\n')
    subprocess.run(['setfacl', '-m', 'u:4321:rwx,g:8765:r', path(directory, 'acl')], check=True)
    os.makedirs(path(directory, 'acl-dir'))
    subprocess.run(['setfacl', '-d', '-m', 'u:4321:rx', path(directory, 'acl-dir')], check=True)
    os.mkfifo(path(directory, 'fifo'))
    os.mknod(path(directory, 'char'), 0o620 | stat.S_IFCHR, os.makedev(4, 64))
    os.mknod(path(directory, 'block'), 0o660 | stat.S_IFBLK, os.makedev(7, 3))
    os.symlink('plain', path(directory, 'symlink'))
    os.symlink('/nowhere/at all', path(directory, 'dangling'))
    with open(path(directory, 'linked'), 'w') as handle:
        handle.write('two names\n')
    os.link(path(directory, 'linked'), path(directory, 'hardlink'))
    with open(path(directory, 'name with spaces "and" $(quotes)'), 'w') as handle:
        handle.write('odd name\n')
    with open(path(directory, '-leading-dash'), 'w') as handle:
        handle.write('dash\n')
    os.makedirs(path(directory, 'sticky'))
    os.chmod(path(directory, 'sticky'), 0o1777)
    with open(path(directory, 'old'), 'w') as handle:
        handle.write('old\n')
    os.utime(path(directory, 'old'), ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    with open(path(directory, 'fine'), 'w') as handle:
        handle.write('fine\n')
    os.utime(path(directory, 'fine'), ns=(FINE_MTIME_NS, FINE_MTIME_NS))
    os.utime(path(directory, 'symlink'), ns=(FINE_MTIME_NS, FINE_MTIME_NS), follow_symlinks=False)


def fingerprint(root: str) -> Dict[str, tuple]:
    """
    Everything a faithful copy keeps, per path; ACLs as getfacl shows
    them, hardlinks as the set of names sharing an inode
    """
    prints: Dict[str, tuple] = {}
    inodes: Dict[int, List[str]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(directory, name)
            relative = os.path.relpath(full, root)
            status = os.lstat(full)
            content = ''
            if stat.S_ISREG(status.st_mode):
                with open(full, 'rb') as handle:
                    content = hashlib.sha256(handle.read()).hexdigest()
                if status.st_nlink > 1:
                    inodes.setdefault(status.st_ino, []).append(relative)
            xattrs = tuple(sorted(
                (key, os.getxattr(full, key, follow_symlinks=False))
                for key in os.listxattr(full, follow_symlinks=False)
            ))
            acl = ''
            if not stat.S_ISLNK(status.st_mode):
                acl = subprocess.run(
                    ['getfacl', '--absolute-names', '--omit-header', '--numeric', full],
                    capture_output=True, text=True, check=True
                ).stdout
            prints[relative] = (
                stat.filemode(status.st_mode), status.st_uid, status.st_gid,
                status.st_mtime_ns,
                status.st_rdev, os.readlink(full) if stat.S_ISLNK(status.st_mode) else '',
                content, xattrs, acl,
            )
    for names in inodes.values():
        for name in names:
            prints[name] = prints[name] + (tuple(sorted(names)),)
    return prints


def kiwi(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """
    Run kiwi-ng of this venv with the test runtime config (fast xz)
    """
    temp = ['--temp-dir', TEMP_DIR] if TEMP_DIR else []
    result = subprocess.run(
        KIWI + ['--config', RUNTIME_CONFIG] + temp + list(args),
        capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f'kiwi-ng {" ".join(args)} failed ({result.returncode}):\n'
            f'{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
        )
    return result


def podman_json(*args: str) -> Any:
    return json.loads(subprocess.run(
        ['podman'] + list(args), capture_output=True, text=True, check=True
    ).stdout)
