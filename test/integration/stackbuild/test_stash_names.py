"""Stash names resolved among the local images as podman resolves them."""
import os
import subprocess

import pytest

from harness import stackbuild_kiwi
from harness.podman import podman_json
from kiwi_stackbuild_plugin.exceptions import KiwiStashNotFoundError
from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.reference import StashReference
from kiwi_stackbuild_plugin.stack import Stacker
from kiwi_stackbuild_plugin.stackbuild_command import resolve

pytestmark = pytest.mark.integration


def import_tree(root: str, reference: str) -> str:
    """
    A plain image (no stash) of root, as a pull would leave it
    """
    tar = subprocess.Popen(['tar', '-C', root, '-c', '.'], stdout=subprocess.PIPE)
    subprocess.run(
        ['podman', 'import', '-', reference], stdin=tar.stdout, check=True,
        stdout=subprocess.DEVNULL
    )
    assert tar.wait() == 0
    return podman_json('image', 'inspect', reference)[0]['Id']


def test_pulled_images_resolve_by_short_and_full_name(containers, small_root, tmp_path):
    image = import_tree(small_root, 'docker.io/library/names-probe:bookworm')
    images = ContainerImages(tls_verify=False, temp_dir=stackbuild_kiwi.TEMP_DIR)
    for typed in (
        'names-probe:bookworm', 'library/names-probe:bookworm',
        'docker.io/library/names-probe:bookworm'
    ):
        items = resolve(images, [StashReference.parse(typed)], None)
        assert [item.image for item in items] == [image], typed
    root = str(tmp_path / 'stacked' / 'image-root')
    short = [StashReference.parse('names-probe:bookworm')]
    Stacker(images).stack(resolve(images, short, None), root)
    with open(os.path.join(root, 'one')) as handle:
        assert handle.read() == 'one\n'
    # a name podman cannot resolve locally is reported, never pulled
    with pytest.raises(KiwiStashNotFoundError, match="no stash 'quay.io/x/names-probe:bookworm'"):
        resolve(images, [StashReference.parse('quay.io/x/names-probe:bookworm')], None)
