"""What a stash records about the root tree it was made from."""
import errno
import logging
import os
import platform
import shlex
import stat
from dataclasses import dataclass
from typing import Dict, Optional
from xml.etree import ElementTree

from kiwi_stackbuild_plugin.defaults import StackbuildDefaults
from kiwi_stackbuild_plugin.exceptions import KiwiStashMountError, KiwiStashRootError
from kiwi_stackbuild_plugin.mounts import mounts_below

log = logging.getLogger('kiwi')

# ELF e_machine values -> kiwi's architecture names
_ELF_MACHINES = {
    3: 'ix86', 40: 'armv7l', 62: 'x86_64', 183: 'aarch64',
    22: 's390x', 21: 'ppc64', 243: 'riscv64',
}
# kiwi's architecture names -> the platform names of the OCI image spec
_OCI_ARCHS = {
    'x86_64': 'amd64', 'aarch64': 'arm64', 'ix86': '386', 'i686': '386',
    'i586': '386', 'armv7l': 'arm', 'armv6l': 'arm', 's390x': 's390x',
    'ppc64le': 'ppc64le', 'ppc64': 'ppc64', 'riscv64': 'riscv64',
}
# programs every root built by kiwi has; the first one found tells the
# architecture of the root, which need not be the host's
_PROBES = ('usr/bin/env', 'bin/sh', 'usr/bin/sh', 'sbin/init', 'usr/lib/systemd/systemd')
# the symlinks Linux follows in one path before it gives up (ELOOP)
MAX_SYMLINKS = 40


def elf_arch(header: bytes) -> Optional[str]:
    """
    The kiwi architecture name of an ELF header, None if not ELF

    :param bytes header: the first 20 bytes of a file
    """
    if len(header) < 20 or header[:4] != b'\x7fELF':
        return None
    little = header[5] == 1
    machine = int.from_bytes(header[18:20], 'little' if little else 'big')
    if machine == 21 and little:
        return 'ppc64le'
    return _ELF_MACHINES.get(machine)


def oci_arch(arch: str) -> str:
    """
    The OCI platform architecture of a kiwi architecture name
    """
    return _OCI_ARCHS.get(arch, arch)


def resolve_in_root(root: str, path: str) -> str:
    """
    Resolve symlinks in path as if root were '/'

    Absolute link targets stay inside root, so a link in a foreign
    root never leads to a file of the host: no component of the result
    is a symlink.

    :param str root: the root tree
    :param str path: a path inside it, relative or absolute
    :return: the host path of the resolved file (may not exist)
    :raises OSError: ELOOP after MAX_SYMLINKS links, as Linux does
    """
    parts = [part for part in path.split('/') if part not in ('', '.')]
    resolved: list = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == '..':
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.path.join(root, path))
            target = os.readlink(candidate)
            if target.startswith('/'):
                resolved = []
            parts = [p for p in target.split('/') if p not in ('', '.')] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


@dataclass(frozen=True)
class RootInfo:
    """
    The facts of a kiwi root tree that a stash keeps as labels

    :param str image_name: <image name=> of image/config.xml
    :param str version: <preferences><version>
    :param str author: <description><author>
    :param str arch: kiwi architecture name of the root's programs
    :param int mode: permission bits of the root directory
    :param str owner: 'uid:gid' of the root directory
    """
    root: str
    image_name: str
    version: str
    author: str
    arch: str
    mode: int
    owner: str

    @classmethod
    def read(cls, root: str) -> 'RootInfo':
        """
        Read the facts from a root tree

        :raises KiwiStashRootError: if root is not a kiwi root tree
        :raises KiwiStashMountError: if file systems are mounted below
            root, as an interrupted kiwi build leaves /proc, /sys and
            /dev: a stash would store what they show
        """
        if not os.path.isdir(root):
            raise KiwiStashRootError(
                f"'{root}' is not a directory: give the image-root of a kiwi build as --root"
            )
        config = os.path.join(root, 'image', 'config.xml')
        if not os.path.isfile(config):
            raise KiwiStashRootError(
                f"'{root}' has no image/config.xml: give the image-root of a "
                "kiwi build ('kiwi-ng system prepare' or 'system build') as --root"
            )
        try:
            xml = ElementTree.parse(config).getroot()
        except ElementTree.ParseError as issue:
            raise KiwiStashRootError(f"'{config}' is not valid XML: {issue}")
        mounts = mounts_below(root)
        if mounts:
            point, kind = mounts[0]
            more = f' and {len(mounts) - 1} more' if len(mounts) > 1 else ''
            raise KiwiStashMountError(
                f'file systems are mounted in the root tree, as an interrupted kiwi '
                f'build leaves them: {point} ({kind}){more}; unmount them, e.g. with '
                f"'umount --recursive {shlex.quote(point)}', and stash again"
            )
        status = os.lstat(root)
        return cls(
            root=os.path.abspath(root),
            image_name=xml.get('name') or '',
            version=(xml.findtext('preferences/version') or '').strip(),
            author=(xml.findtext('description/author') or '').strip(),
            arch=cls._arch_of(root),
            mode=stat.S_IMODE(status.st_mode),
            owner=f'{status.st_uid}:{status.st_gid}',
        )

    @staticmethod
    def _arch_of(root: str) -> str:
        for probe in _PROBES:
            program = resolve_in_root(root, probe)
            try:
                with open(program, 'rb') as handle:
                    arch = elf_arch(handle.read(20))
            except OSError:
                continue
            if arch:
                return arch
        host = platform.machine()
        log.warning(f'No program in {root} tells its architecture: assuming {host}')
        return host

    def labels(self, created: str) -> Dict[str, str]:
        """
        The image labels of a stash of this root

        :param str created: creation time, RFC 3339
        """
        defaults = StackbuildDefaults
        return {
            defaults.label_name: self.image_name,
            defaults.label_version: self.version,
            defaults.label_author: self.author,
            defaults.label_arch: self.arch,
            defaults.label_created: created,
            defaults.label_source: self.root,
            defaults.label_root_mode: f'{self.mode:04o}',
            defaults.label_root_owner: self.owner,
        }
