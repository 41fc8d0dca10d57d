import errno
import os
import platform
import shutil

import pytest

from kiwi_stackbuild_plugin import root_info as root_info_module
from kiwi_stackbuild_plugin.exceptions import KiwiStashMountError, KiwiStashRootError
from kiwi_stackbuild_plugin.root_info import RootInfo, elf_arch, oci_arch, resolve_in_root


def elf(machine: int, little: bool = True) -> bytes:
    order = 'little' if little else 'big'
    return b'\x7fELF\x02' + (b'\x01' if little else b'\x02') + b'\x00' * 12 + \
        machine.to_bytes(2, order)


@pytest.mark.parametrize('header, arch', [
    (elf(62), 'x86_64'), (elf(183), 'aarch64'), (elf(3), 'ix86'), (elf(40), 'armv7l'),
    (elf(22, little=False), 's390x'), (elf(21, little=False), 'ppc64'),
    (elf(21), 'ppc64le'), (elf(243), 'riscv64'), (elf(9999), None),
    (b'#!/bin/sh\n' + b'\x00' * 10, None), (b'\x7fELF', None),
])
def test_elf_arch(header, arch):
    assert elf_arch(header) == arch


@pytest.mark.parametrize('arch, platform_arch', [
    ('x86_64', 'amd64'), ('aarch64', 'arm64'), ('ix86', '386'), ('armv7l', 'arm'),
    ('s390x', 's390x'), ('ppc64le', 'ppc64le'), ('riscv64', 'riscv64'), ('mips', 'mips'),
])
def test_oci_arch(arch, platform_arch):
    assert oci_arch(arch) == platform_arch


def test_resolve_in_root_stays_inside(tmp_path):
    root = str(tmp_path)
    os.makedirs(tmp_path / 'usr' / 'bin')
    os.symlink('usr/bin', tmp_path / 'bin')
    os.symlink('/usr/bin', tmp_path / 'abs')
    os.symlink('../../..', tmp_path / 'usr' / 'bin' / 'up')
    os.symlink('loop', tmp_path / 'loop')
    assert resolve_in_root(root, 'bin/sh') == os.path.join(root, 'usr/bin/sh')
    assert resolve_in_root(root, '/abs/sh') == os.path.join(root, 'usr/bin/sh')
    assert resolve_in_root(root, 'bin/up/etc') == os.path.join(root, 'etc')
    assert resolve_in_root(root, '../../etc/passwd') == os.path.join(root, 'etc/passwd')
    assert resolve_in_root(root, '') == root
    with pytest.raises(OSError) as loop:
        resolve_in_root(root, 'loop/x')
    assert loop.value.errno == errno.ELOOP


@pytest.mark.parametrize('links, loops', [(40, False), (41, True), (42, True)])
def test_resolve_in_root_gives_up_as_linux_does(tmp_path, links, loops):
    # a chain of links; the last leads out of the root on the host
    outside = tmp_path / 'outside'
    outside.mkdir()
    root = tmp_path / 'root'
    root.mkdir()
    for index in range(1, links):
        os.symlink(f'l{index + 1}', root / f'l{index}')
    os.symlink(str(outside), root / f'l{links}')
    if loops:
        with pytest.raises(OSError, match='Too many levels of symbolic links'):
            resolve_in_root(str(root), 'l1/victim')
    else:
        assert resolve_in_root(str(root), 'l1/victim') == \
            os.path.join(str(root), str(outside).lstrip('/'), 'victim')


def write_config(root, text):
    os.makedirs(root / 'image', exist_ok=True)
    (root / 'image' / 'config.xml').write_text(text)


CONFIG = '''<image name="leap-base" schemaversion="7.5">
  <description type="system"><author>Jane "J" Doe</author></description>
  <preferences><version> 2.0.1 </version></preferences>
</image>'''


def test_read(tmp_path):
    root = tmp_path / 'root with space'
    write_config(root, CONFIG)
    os.makedirs(root / 'usr' / 'bin')
    os.symlink('usr/bin', root / 'bin')
    shutil.copy('/bin/sh', root / 'usr' / 'bin' / 'sh')
    os.chmod(root, 0o751)
    info = RootInfo.read(str(root))
    assert info.image_name == 'leap-base'
    assert info.version == '2.0.1'
    assert info.author == 'Jane "J" Doe'
    assert info.arch == platform.machine()
    assert info.mode == 0o751
    assert info.owner == f'{os.getuid()}:{os.getgid()}'
    assert info.root == str(root)
    labels = info.labels('2026-01-01T00:00:00Z')
    assert labels == {
        'org.opensuse.kiwi.stash.image-name': 'leap-base',
        'org.opensuse.kiwi.stash.image-version': '2.0.1',
        'org.opensuse.kiwi.stash.author': 'Jane "J" Doe',
        'org.opensuse.kiwi.stash.arch': platform.machine(),
        'org.opensuse.kiwi.stash.created': '2026-01-01T00:00:00Z',
        'org.opensuse.kiwi.stash.source': str(root),
        'org.opensuse.kiwi.stash.root-mode': '0751',
        'org.opensuse.kiwi.stash.root-owner': f'{os.getuid()}:{os.getgid()}',
    }


def test_read_foreign_arch_and_minimal_config(tmp_path):
    write_config(tmp_path, '<image name="x"/>')
    os.makedirs(tmp_path / 'usr' / 'bin')
    (tmp_path / 'usr' / 'bin' / 'env').write_bytes(elf(183) + b'\x00' * 40)
    info = RootInfo.read(str(tmp_path))
    assert (info.arch, info.version, info.author) == ('aarch64', '', '')


def test_read_without_programs_assumes_the_host(tmp_path, caplog):
    write_config(tmp_path, '<image name="x"/>')
    assert RootInfo.read(str(tmp_path)).arch == platform.machine()
    assert 'assuming' in caplog.text


def test_read_errors(tmp_path):
    with pytest.raises(KiwiStashRootError, match='is not a directory'):
        RootInfo.read(str(tmp_path / 'missing'))
    with pytest.raises(KiwiStashRootError, match='has no image/config.xml'):
        RootInfo.read(str(tmp_path))
    write_config(tmp_path, '<image')
    with pytest.raises(KiwiStashRootError, match='is not valid XML'):
        RootInfo.read(str(tmp_path))


def test_a_root_with_mounts_is_refused(tmp_path, mocker):
    write_config(tmp_path, CONFIG)
    mocker.patch.object(root_info_module, 'mounts_below', return_value=[
        (f'{tmp_path}/dev', 'devtmpfs'), (f'{tmp_path}/proc', 'proc'),
        (f'{tmp_path}/sys', 'sysfs'),
    ])
    with pytest.raises(KiwiStashMountError, match=(
        '^file systems are mounted in the root tree, as an interrupted kiwi build leaves '
        f'them: {tmp_path}/dev \\(devtmpfs\\) and 2 more; unmount them, e.g. with '
        f"'umount --recursive {tmp_path}/dev', and stash again$"
    )):
        RootInfo.read(str(tmp_path))
    root_info_module.mounts_below.assert_called_once_with(str(tmp_path))
