"""
Workflow 3 of the documentation: the bootable Debian disk built by
'kiwi-ng system boxbuild --box debian' in a VM (software emulation
here: ten minutes and more), and it boots.
"""
import os
import time

import pytest

from harness.boot_check import boot_to_login
from harness.boxbuild import run_boxbuild
from harness.vm_boxbuild import boxbuild_argv, vm_box
from harness.workflows import BOOTABLE_DEBIAN, disk_image, package_list, render

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.slow, pytest.mark.e2e]


def test_boxbuild_bootable_disk(mirror, tmp_path):
    box = vm_box()
    description = render(BOOTABLE_DEBIAN, str(tmp_path / 'description'), mirror)
    target = str(tmp_path / 'target')
    os.makedirs(target)
    started = time.monotonic()
    completed = run_boxbuild(box, boxbuild_argv([], description, target), str(tmp_path))
    built = time.monotonic() - started
    assert completed.returncode == 0, completed.stdout[-5000:]
    names = {line.split('|')[0] for line in package_list(target)}
    assert {'linux-image-cloud-amd64', 'grub-pc-bin', 'systemd-sysv'} <= names

    booted = boot_to_login(disk_image(target), str(tmp_path / 'console.log'))
    print(
        f'workflow 3: boxbuild {built:.0f} s; boot to login '
        f'{booted.seconds:.0f} s ({booted.accelerator})'
    )
