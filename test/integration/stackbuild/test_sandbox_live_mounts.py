"""
A root tree with live mounts, as an interrupted kiwi build leaves
/proc, /sys and /dev mounted in its image root: stash refuses it with
one line naming the mount, and stores nothing.
"""
import os
import subprocess
from contextlib import ExitStack, contextmanager
from typing import Iterator

import pytest

from harness.podman import podman_json
from harness.stackbuild_kiwi import kiwi, kiwi_error

pytestmark = pytest.mark.integration


@contextmanager
def mounted(*argv: str) -> Iterator[None]:
    """
    A mount for the time of the block: mount's arguments, the mount
    point last
    """
    subprocess.run(['mount'] + list(argv), check=True)
    try:
        yield
    finally:
        subprocess.run(['umount', '--lazy', argv[-1]], check=True)


def image_ids() -> set:
    return {image['Id'] for image in podman_json('images', '--all', '--format', 'json')}


def test_a_root_with_proc_and_dev_mounted_is_refused(containers, small_root):
    for name in ('proc', 'dev'):
        os.mkdir(os.path.join(small_root, name))
    before = image_ids()
    with ExitStack() as mounts:
        mounts.enter_context(mounted('-t', 'proc', 'proc', os.path.join(small_root, 'proc')))
        mounts.enter_context(mounted('--bind', '/dev', os.path.join(small_root, 'dev')))
        message = kiwi_error('system', 'stash', '--root', small_root)
    assert (
        'file systems are mounted in the root tree, as an interrupted kiwi build leaves '
        f'them: {small_root}/dev (devtmpfs) and 1 more; unmount them, e.g. with '
        f"'umount --recursive '{small_root}/dev'', and stash again"
    ) in message
    assert image_ids() == before


def test_a_root_that_is_a_mount_point_itself_is_stashed(containers, small_root):
    with mounted('--bind', small_root, small_root):
        kiwi('system', 'stash', '--root', small_root, '--container-name', 'mounted-root')
    assert podman_json('image', 'inspect', 'localhost/mounted-root:latest')
