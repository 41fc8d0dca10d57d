"""
A probe tree holding one of each thing a root tree can hold (owners,
modes, xattrs, capabilities, ACLs, device nodes, links, odd names,
old and fine mtimes), and its fingerprint: everything a faithful copy
keeps, to compare a tree with its copy.
"""
import hashlib
import os
import shutil
import stat
import subprocess
from typing import Dict, List

# a probe file's mtimes: one far in the past, one with nanoseconds
OLD_MTIME_NS = 315532800 * 10**9
FINE_MTIME_NS = 1700000000 * 10**9 + 123456789


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
