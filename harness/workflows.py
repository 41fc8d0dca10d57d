"""
The documented workflows as the tests, the benchmark and the demo run
them: the bootable Debian descriptions of test/data rendered with the
host's mirror, their native kiwi build, a Debian container image in a
registry, and the files kiwi leaves in a target directory.
"""
import glob
import os
import shutil
import subprocess
from typing import List

from harness.paths import TEST_DATA
from harness.stackbuild_kiwi import kiwi_argv

# a small bootable Debian 12 disk (kiwi oem, raw, BIOS GRUB, serial
# console); its stash is named after it
BOOTABLE_DEBIAN = os.path.join(TEST_DATA, 'bootable-debian')
BOOTABLE_NAME = 'bootable-debian'
# the layer that makes a Debian 12 container a bootable disk
CONTAINER_TO_VM = os.path.join(TEST_DATA, 'container-to-vm')


def render(source: str, target: str, mirror: str) -> str:
    """
    Copy a description of test/data to target (which must not exist)
    with @MIRROR@ replaced by the host's mirror

    :return: target
    """
    shutil.copytree(source, target)
    config = os.path.join(target, 'config.xml')
    with open(config) as handle:
        text = handle.read()
    with open(config, 'w') as handle:
        handle.write(text.replace('@MIRROR@', mirror))
    return target


def run_kiwi(*args: str) -> None:
    """
    kiwi-ng of this venv with the test runtime config, its output
    passed through (builds take minutes: the log shows where they are)

    :raises AssertionError: if kiwi fails
    """
    code = subprocess.run(kiwi_argv(*args), stdin=subprocess.DEVNULL).returncode
    assert code == 0, f'kiwi-ng {" ".join(args)} failed with exit code {code}'


def native_build(description: str, target: str) -> None:
    """
    kiwi-ng system build of the description into target
    """
    run_kiwi('system', 'build', '--description', description, '--target-dir', target)


def one_file(target: str, pattern: str) -> str:
    """
    The one file of target matching pattern, e.g. '*.raw'

    :raises AssertionError: naming what target holds otherwise
    """
    found = glob.glob(os.path.join(glob.escape(target), pattern))
    assert len(found) == 1, f'{pattern} in {target}: {sorted(os.listdir(target))}'
    return found[0]


def disk_image(target: str) -> str:
    """
    The disk kiwi's oem type left in target
    """
    return one_file(target, '*.raw')


def package_list(target: str) -> List[str]:
    """
    The lines of the .packages file kiwi wrote into target: name,
    epoch, version, release, arch, disturl, license of every package
    """
    with open(one_file(target, '*.packages')) as handle:
        return sorted(line for line in handle.read().splitlines() if line)


def import_root(root: str, reference: str) -> None:
    """
    A root tree as a single-layer container image, as a user would make
    one: tar with owners, xattrs and ACLs into 'podman import'

    :param str reference: the image's name, e.g. 'HOST:PORT/debian:bookworm'
    """
    tar = subprocess.Popen(
        ['tar', '--numeric-owner', '--xattrs', "--xattrs-include=*", '--acls',
         '-C', root, '-c', '.'],
        stdout=subprocess.PIPE
    )
    subprocess.run(
        ['podman', 'import', '--quiet', '-', reference], stdin=tar.stdout,
        stdout=subprocess.DEVNULL, check=True
    )
    assert tar.stdout is not None
    tar.stdout.close()
    assert tar.wait() == 0, f'tar of {root} failed'


def image_exists(reference: str) -> bool:
    """
    Whether the container storage of this process holds the image
    """
    return subprocess.run(
        ['podman', 'image', 'exists', reference], capture_output=True
    ).returncode == 0
