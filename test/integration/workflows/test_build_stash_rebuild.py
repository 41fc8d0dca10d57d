"""
Workflow 1 of the documentation: build a bootable Debian disk, stash
its root, push the stash, delete image and stash, rebuild the disk from
the registry with stackbuild, and boot it.
"""
import os
import time

import pytest

from harness.boot_check import boot_to_login
from harness.podman import podman
from harness.stackbuild_kiwi import kiwi
from harness.workflows import (
    BOOTABLE_NAME, disk_image, image_exists, package_list, run_kiwi
)

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.slow]


def test_build_stash_push_rebuild_boot(native_bootable, registry, tmp_path):
    started = time.monotonic()
    root = os.path.join(native_bootable, 'build', 'image-root')
    original_packages = package_list(native_bootable)
    assert any(line.startswith('linux-image-') for line in original_packages)

    stashes = f'{registry}/workflows'
    kiwi('system', 'stash', '--root', root, '--push', stashes)
    local = f'localhost/{BOOTABLE_NAME}:latest'
    assert image_exists(local)

    # nothing of the first build is left to use but the registry's copy
    os.unlink(disk_image(native_bootable))
    podman(None, 'rmi', local)
    assert not image_exists(local)

    target = str(tmp_path / 'rebuilt')
    run_kiwi(
        'system', 'stackbuild', '--stash', BOOTABLE_NAME, '--from-registry', stashes,
        '--target-dir', target
    )
    assert package_list(target) == original_packages
    rebuilt = time.monotonic() - started

    booted = boot_to_login(disk_image(target), str(tmp_path / 'console.log'))
    print(
        f'workflow 1: stash, push, rebuild {rebuilt:.0f} s; boot to login '
        f'{booted.seconds:.0f} s ({booted.accelerator})'
    )
