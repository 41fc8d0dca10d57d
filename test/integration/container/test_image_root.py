"""
--keep-image-root: the build's build/image-root comes back into the
target dir faithfully enough for 'kiwi-ng system stash' (owners, modes,
links), and a stackbuild rebuild from that stash gives an image with
the same packages as the original (kiwi's .packages beside each image).
"""
import glob
import os

import pytest

from harness import stackbuild_kiwi
from harness.boxbuild import run_boxbuild
from harness.container_boxbuild import boxbuild_argv, containers
from harness.descriptions import description_copy
from harness.podman import private_storage
from harness.stackbuild_kiwi import RUNTIME_CONFIG, kiwi

pytestmark = pytest.mark.integration

# the image name of test/data/tiny-debian, the stash's default name
IMAGE_NAME = 'tiny-debian'


def read(path):
    with open(path) as handle:
        return handle.read()


def packages_file(directory):
    found = glob.glob(os.path.join(directory, f'{IMAGE_NAME}.*.packages'))
    assert len(found) == 1, os.listdir(directory)
    return found[0]


def test_existing_image_root_refused_up_front(conformance_box, workdir):
    """
    As kiwi refuses an existing root: one line, no box started, the
    target dir as it was
    """
    description = description_copy(os.path.join(workdir, 'desc'), 'http://unused.invalid/')
    target = os.path.join(workdir, 'target')
    os.makedirs(os.path.join(target, 'build', 'image-root'))
    completed = run_boxbuild(conformance_box, boxbuild_argv(
        ['--keep-image-root'], description, target, box_name='debian-conformance'
    ), cwd=workdir)
    assert completed.returncode == 1
    assert f'--keep-image-root: {target}/build/image-root exists: remove it' \
        in completed.stdout
    assert 'Traceback' not in completed.stdout
    assert os.listdir(target) == ['build']
    assert containers(conformance_box) == []


@pytest.mark.slow
def test_kept_root_stashed_and_rebuilt(box, mirror, workdir):
    """
    Our agent's box (the image root word of the job): the root comes
    back as kiwi left it, is stashed, and stackbuild rebuilds the same
    package list from it
    """
    description = description_copy(os.path.join(workdir, 'desc'), mirror)
    target = os.path.join(workdir, 'target')
    completed = run_boxbuild(box, boxbuild_argv(
        ['--keep-image-root'], description, target,
        global_options=[
            f'--config={RUNTIME_CONFIG}',
            f'--shared-cache-dir={os.path.join(workdir, "kiwi cache")}'
        ]
    ), cwd=workdir)
    assert completed.returncode == 0, completed.stdout
    root = os.path.join(target, 'build', 'image-root')
    assert os.listdir(os.path.join(target, 'build')) == ['image-root']
    # what a stash needs: kiwi's description, owners, modes, links
    assert f'name="{IMAGE_NAME}"' in read(os.path.join(root, 'image', 'config.xml'))
    assert os.readlink(os.path.join(root, 'bin')) == 'usr/bin'
    su = os.stat(os.path.join(root, 'usr', 'bin', 'su'))
    assert (su.st_uid, su.st_gid, su.st_mode & 0o7777) == (0, 0, 0o4755)
    shadow = os.stat(os.path.join(root, 'etc', 'shadow'))
    assert shadow.st_gid != 0 and shadow.st_mode & 0o777 == 0o640
    original = read(packages_file(target))
    assert 'netbase|' in original
    assert containers(box) == []

    storage = os.path.join(workdir, 'containers')
    temp = os.path.join(workdir, 'kiwi-temp')
    for path in (storage, temp):
        os.makedirs(path)
    with private_storage(storage):
        stackbuild_kiwi.TEMP_DIR = temp
        try:
            kiwi('system', 'stash', '--root', root)
            rebuilt = os.path.join(workdir, 'rebuilt')
            kiwi('--type', 'tbz', 'system', 'stackbuild', '--stash', IMAGE_NAME,
                 '--target-dir', rebuilt)
        finally:
            stackbuild_kiwi.TEMP_DIR = None
    assert read(packages_file(rebuilt)) == original
