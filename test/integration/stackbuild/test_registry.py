"""Stashes pushed to and pulled from a real registry on 127.0.0.1."""
import os
import subprocess

import pytest

from harness import stackbuild_kiwi
from harness.podman import podman_json
from harness.stackbuild_kiwi import kiwi
from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.reference import StashReference
from kiwi_stackbuild_plugin.stack import Stacker
from kiwi_stackbuild_plugin.stackbuild_command import resolve

pytestmark = pytest.mark.integration


def inspect(reference: str) -> dict:
    return podman_json('image', 'inspect', reference)[0]


def test_push_then_pull_uses_the_pulled_image(containers, registry, small_root, tmp_path):
    location = f'{registry}/stashes'
    kiwi('system', 'stash', '--root', small_root, '--container-name', 'reg-stash',
         '--push', location, '--no-tls-verify')
    pushed = inspect('localhost/reg-stash:latest')
    # a newer local stash of the same short name must not be used
    with open(os.path.join(small_root, 'one'), 'w') as handle:
        handle.write('local change\n')
    kiwi('system', 'stash', '--root', small_root, '--container-name', 'reg-stash')
    stale = inspect('localhost/reg-stash:latest')

    images = ContainerImages(tls_verify=False, temp_dir=stackbuild_kiwi.TEMP_DIR)
    items = resolve(images, [StashReference.parse('reg-stash')], location)
    pulled = inspect(items[0].image)
    assert pulled['RootFS']['Layers'] == pushed['RootFS']['Layers']
    assert pulled['Id'] != stale['Id']
    root = str(tmp_path / 'stacked' / 'image-root')
    Stacker(images).stack(items, root)
    with open(os.path.join(root, 'one')) as handle:
        assert handle.read() == 'one\n'

    # a digest pins the image whatever the tag points to later
    digest = subprocess.run(
        ['skopeo', 'inspect', '--tls-verify=false', '--format', '{{.Digest}}',
         f'docker://{location}/reg-stash:latest'],
        capture_output=True, text=True, check=True
    ).stdout.strip()
    kiwi('system', 'stash', '--root', small_root, '--container-name', 'reg-stash',
         '--push', location)
    pinned = resolve(images, [StashReference.parse(f'reg-stash@{digest}')], location)
    assert inspect(pinned[0].image)['RootFS']['Layers'] == pushed['RootFS']['Layers']
