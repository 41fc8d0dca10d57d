"""
Workflow 2 of the documentation: a Debian 12 container image (merged
/usr, as debootstrap and the official images lay it out) in a registry
made a bootable disk by stackbuild with a layer description that adds
kernel, bootloader, a user and the oem type.
"""
import os
import time

import pytest

from harness import minbase
from harness.boot_check import boot_to_login
from harness.podman import podman
from harness.workflows import (
    CONTAINER_TO_VM, disk_image, image_exists, import_root, package_list, render, run_kiwi
)

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.slow]

MERGED = {'bin': 'usr/bin', 'sbin': 'usr/sbin', 'lib': 'usr/lib', 'lib64': 'usr/lib64'}


def test_container_to_vm(containers, registry, mirror, tmp_path):
    container_root = minbase.minbase_root(merged_usr=True)
    assert {name: os.readlink(os.path.join(container_root, name)) for name in MERGED} == MERGED
    # the container as it would come from elsewhere: in the registry only
    remote = f'{registry}/debian:bookworm'
    import_root(container_root, remote)
    podman(None, 'push', '--quiet', remote)
    podman(None, 'rmi', remote)
    assert not image_exists(remote)

    started = time.monotonic()
    layer = render(CONTAINER_TO_VM, str(tmp_path / 'layer'), mirror)
    target = str(tmp_path / 'disk')
    run_kiwi(
        'system', 'stackbuild', '--stash', 'debian:bookworm', '--from-registry', registry,
        '--description', layer, '--target-dir', target
    )
    built = time.monotonic() - started

    root = os.path.join(target, 'build', 'image-root')
    # still merged: kiwi's bootstrap went through the links
    assert {name: os.readlink(os.path.join(root, name)) for name in MERGED} == MERGED
    with open(os.path.join(root, 'etc', 'passwd')) as passwd:
        assert any(line.startswith('tux:') for line in passwd)
    names = {line.split('|')[0] for line in package_list(target)}
    assert {'linux-image-cloud-amd64', 'grub-pc-bin', 'systemd-sysv'} <= names

    booted = boot_to_login(disk_image(target), str(tmp_path / 'console.log'))
    print(
        f'workflow 2: container to disk {built:.0f} s; boot to login '
        f'{booted.seconds:.0f} s ({booted.accelerator})'
    )
