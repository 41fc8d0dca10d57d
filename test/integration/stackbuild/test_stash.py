"""kiwi-ng system stash on real podman and skopeo, with a private storage."""
import os
import platform
import shutil
import stat
import subprocess

import pytest

from harness.podman import podman_json
from harness.stackbuild_kiwi import kiwi

pytestmark = pytest.mark.integration


def inspect(reference: str) -> dict:
    return podman_json('image', 'inspect', reference)[0]


def layer_content(image: dict) -> dict:
    """
    Non-directories of the image's top overlay layer: path -> kind
    """
    upper = image['GraphDriver']['Data']['UpperDir']
    content = {}
    for directory, _, files in os.walk(upper):
        for name in files:
            path = os.path.join(directory, name)
            status = os.lstat(path)
            whiteout = stat.S_ISCHR(status.st_mode) and status.st_rdev == 0
            content[os.path.relpath(path, upper)] = 'whiteout' if whiteout else 'file'
    return content


def test_stash_named_after_the_image_with_labels(debian_stash):
    image = inspect('localhost/stackbuild-probe:latest')
    labels = image['Labels']
    assert labels['org.opensuse.kiwi.stash.image-name'] == 'stackbuild-probe'
    assert labels['org.opensuse.kiwi.stash.image-version'] == '1.2.3'
    assert labels['org.opensuse.kiwi.stash.author'] == 'Probe Author "Q" $(true)'
    assert labels['org.opensuse.kiwi.stash.arch'] == platform.machine()
    assert labels['org.opensuse.kiwi.stash.root-mode'] == '0750'
    assert labels['org.opensuse.kiwi.stash.root-owner'] == '0:0'
    assert labels['org.opensuse.kiwi.stash.source'] == debian_stash
    assert labels['org.opensuse.kiwi.stash.created'].startswith(image['Created'][:16])
    assert image['Architecture'] == {'x86_64': 'amd64', 'aarch64': 'arm64'}.get(
        platform.machine(), platform.machine())
    assert len(image['RootFS']['Layers']) == 1


def test_second_stash_adds_a_layer_with_only_the_changes(containers, debian_root):
    kiwi('system', 'stash', '--root', debian_root, '--container-name', 'stash-diff')
    first = inspect('localhost/stash-diff:latest')
    with open(os.path.join(debian_root, 'etc', 'stash-new'), 'w') as handle:
        handle.write('new\n')
    with open(os.path.join(debian_root, 'etc', 'hostname'), 'w') as handle:
        handle.write('overwritten\n')
    os.unlink(os.path.join(debian_root, 'etc', 'motd'))
    shutil.rmtree(os.path.join(debian_root, 'usr', 'share', 'doc', 'apt'))

    kiwi('system', 'stash', '--root', debian_root, '--container-name', 'stash-diff')
    second = inspect('localhost/stash-diff:latest')

    assert second['RootFS']['Layers'][:-1] == first['RootFS']['Layers']
    assert len(second['RootFS']['Layers']) == 2
    assert layer_content(second) == {
        'etc/stash-new': 'file', 'etc/hostname': 'file',
        'etc/motd': 'whiteout', 'usr/share/doc/apt': 'whiteout',
    }
    tree = subprocess.run(
        ['podman', 'image', 'mount', 'localhost/stash-diff:latest'],
        capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        with open(os.path.join(tree, 'etc', 'hostname')) as handle:
            assert handle.read() == 'overwritten\n'
        assert not os.path.lexists(os.path.join(tree, 'etc', 'motd'))
        assert not os.path.lexists(os.path.join(tree, 'usr', 'share', 'doc', 'apt'))
        assert os.path.isdir(os.path.join(tree, 'usr', 'share', 'doc'))
    finally:
        subprocess.run(['podman', 'image', 'unmount', 'localhost/stash-diff:latest'], check=True)


def test_new_tag_on_an_existing_stash(containers, small_root):
    kiwi('system', 'stash', '--root', small_root, '--container-name', 'stash-tags')
    latest = inspect('localhost/stash-tags:latest')
    # unchanged: the new tag names the same image
    kiwi('system', 'stash', '--root', small_root, '--container-name', 'stash-tags',
         '--tag', 'same')
    assert inspect('localhost/stash-tags:same')['Id'] == latest['Id']
    with open(os.path.join(small_root, 'tagged'), 'w') as handle:
        handle.write('v2\n')
    kiwi('system', 'stash', '--root', small_root, '--container-name', 'stash-tags',
         '--tag', 'v2')
    v2 = inspect('localhost/stash-tags:v2')
    assert v2['RootFS']['Layers'][:-1] == latest['RootFS']['Layers']
    assert layer_content(v2) == {'tagged': 'file'}
    assert inspect('localhost/stash-tags:latest')['Id'] == latest['Id']


def test_list_shows_stashes_as_podman_sees_them(debian_stash):
    listing = kiwi('system', 'stash', '--list').stdout.splitlines()
    header = next(index for index, line in enumerate(listing) if line.startswith('NAME '))
    assert listing[header].split() == ['NAME', 'TAG', 'SIZE', 'CREATED', 'ARCH', 'DESCRIPTION']
    row = next(line for line in listing[header:] if line.startswith('stackbuild-probe '))
    assert row.split()[:2] == ['stackbuild-probe', 'latest']
    assert platform.machine() in row.split()
    assert row.endswith('stackbuild-probe 1.2.3 by Probe Author "Q" $(true)')
    assert ' MB ' in row
