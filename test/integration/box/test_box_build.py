"""
The Debian box as boxes/debian/build-box publishes it
"""
import hashlib
import os
import subprocess
import tarfile

import pytest

from harness.debian_box import BOX_OUTPUT, run_builder
from kiwi_boxed_plugin.catalog import BoxCatalog

BOX_FILES = ('Debian-Box.x86_64-Kernel.tar.xz', 'Debian-Box.x86_64-System.qcow2')

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b''):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.parametrize('name', BOX_FILES)
def test_box_files_match_their_checksums(box, name):
    with open(box.path(name + '.sha256')) as handle:
        expected = handle.read().split()[0]
    assert sha256_of(box.path(name)) == expected


def test_kernel_tarball_holds_one_kernel_and_one_initrd(box):
    with tarfile.open(box.path('Debian-Box.x86_64-Kernel.tar.xz')) as tarball:
        names = tarball.getnames()
    assert len(names) == 2
    assert sum(name.endswith('.kernel') for name in names) == 1
    assert sum(name.endswith('.initrd') for name in names) == 1
    assert all('/' not in name for name in names)


def test_system_disk_is_qcow2_with_one_ext4_partition(box):
    info = subprocess.run(
        ['qemu-img', 'info', '--output=json', box.path('Debian-Box.x86_64-System.qcow2')],
        stdout=subprocess.PIPE, check=True
    ).stdout.decode()
    assert '"format": "qcow2"' in info
    # the partition table and the file system signature, read through
    # qemu-img so that no loop device is needed
    raw = os.path.join(os.path.dirname(box.catalog), 'head.raw')
    subprocess.run([
        'qemu-img', 'dd', '-f', 'qcow2', '-O', 'raw', 'bs=1M', 'count=2',
        f"if={box.path('Debian-Box.x86_64-System.qcow2')}", f'of={raw}'
    ], check=True)
    with open(raw, 'rb') as handle:
        head = handle.read()
    os.unlink(raw)
    assert head[510:512] == b'\x55\xaa'
    assert head[446 + 4] == 0x83
    # ext4 superblock magic at 1024 + 56 into the partition at 1 MiB
    assert head[1024 * 1024 + 1024 + 56:1024 * 1024 + 1024 + 58] == b'\x53\xef'


def test_packages_file_lists_what_the_box_needs(box):
    with open(box.path('Debian-Box.x86_64-System.packages')) as handle:
        packages = {line.split('|')[0] for line in handle}
    for name in (
        'systemd', 'linux-image-amd64', 'python3', 'sshfs', 'openssh-client',
        'openssh-server', 'rsync', 'debootstrap', 'file', 'xz-utils', 'ca-certificates',
    ):
        assert name in packages


def test_catalog_entry_loads_with_the_plugin(box):
    catalog = BoxCatalog(user_candidates=[box.catalog])
    debian = catalog.get('debian')
    assert debian.console == 'hvc0'
    assert debian.processors == 2
    arch = debian.arch('x86_64')
    assert arch.source == 'file://' + BOX_OUTPUT
    assert arch.use_initrd
    assert 'root=/dev/vda1' in arch.cmdline
    assert arch.container == 'localhost/kiwi-boxes/debian:latest'
    for name in arch.boxfiles + (arch.packages_file,):
        assert os.path.isfile(os.path.join(BOX_OUTPUT, name))


def test_container_image_is_in_the_selected_store(box, box_environment):
    with open(box.path('recipe.hash')) as handle:
        recipe_hash = handle.read().strip()
    label = subprocess.run(
        ['podman', 'image', 'inspect', '--format',
         '{{ index .Labels "org.kiwi-plugins.box-recipe" }}',
         'localhost/kiwi-boxes/debian:latest'],
        env=box_environment, stdout=subprocess.PIPE, check=True
    ).stdout.decode().strip()
    assert label == recipe_hash
    mount = subprocess.run(
        ['podman', 'image', 'mount', 'localhost/kiwi-boxes/debian:latest'],
        env=box_environment, stdout=subprocess.PIPE, check=True
    ).stdout.decode().strip()
    try:
        assert os.path.islink(os.path.join(mount, 'opt/kiwi/bin/kiwi-ng')) or \
            os.path.isfile(os.path.join(mount, 'opt/kiwi/bin/kiwi-ng'))
        assert os.path.isfile(os.path.join(mount, 'usr/lib/kiwi-box/kiwi_box_agent.py'))
        assert os.path.islink(os.path.join(
            mount, 'etc/systemd/system/multi-user.target.wants/kiwi-box-agent.service'
        ))
    finally:
        subprocess.run(
            ['podman', 'image', 'unmount', 'localhost/kiwi-boxes/debian:latest'],
            env=box_environment, check=True
        )


def test_unchanged_recipe_is_not_rebuilt(box, box_environment):
    before = os.path.realpath(BOX_OUTPUT)
    disk = box.path('Debian-Box.x86_64-System.qcow2')
    modified = os.stat(disk).st_mtime_ns
    log = run_builder(box_environment)
    assert 'is up to date' in log
    assert 'debootstrap' not in log
    assert os.path.realpath(BOX_OUTPUT) == before
    assert os.stat(disk).st_mtime_ns == modified
