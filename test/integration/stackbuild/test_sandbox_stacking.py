"""
Hostile stashes: crafted images whose stacking would write or delete
outside the stacked root. Every attack aims at a sentinel directory of
the test instead of the host's /etc, and every test checks that the
sentinel and whatever lies beside the root are as they were.
"""
import os

import pytest

from harness import stackbuild_kiwi
from harness.crafted_images import (
    directory, regular_file, stash_labels, store_image, symlink, whiteout
)
from harness.podman import podman_json
from harness.probe_tree import fingerprint
from harness.stackbuild_kiwi import kiwi_error
from harness.stash_leftovers import storage_mounts
from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.stack import Stacker, StackItem

pytestmark = pytest.mark.integration


@pytest.fixture
def sentinel(tmp_path) -> str:
    """
    A directory of the host that the attacks aim at, with a file and a
    directory holding one
    """
    path = tmp_path / 'host etc'
    (path / 'victim').mkdir(parents=True)
    (path / 'victim' / 'precious').write_text('the host\'s\n')
    (path / 'passwd').write_text('root:x:0:0\n')
    return str(path)


@pytest.fixture
def target(tmp_path) -> str:
    """
    A target dir whose build dir holds a file of the user beside the
    root that stackbuild stacks there
    """
    build = tmp_path / 'target' / 'build'
    build.mkdir(parents=True)
    (build / 'beside').write_text('the user\'s\n')
    return str(tmp_path / 'target')


def refused(sentinel: str, target: str, *stashes: str) -> str:
    """
    Run stackbuild of the stashes, which must fail with one line and
    change nothing outside the root, neither the sentinel nor the file
    beside the root; return the line
    """
    before = fingerprint(sentinel)
    options = [word for name in stashes for word in ('--stash', name)]
    message = kiwi_error('system', 'stackbuild', *options, '--target-dir', target)
    assert fingerprint(sentinel) == before
    assert os.listdir(os.path.join(target, 'build')) == ['beside']
    return message


def stash(name: str, *layers, **labels: str) -> str:
    """
    Store a crafted stash localhost/<name>:latest
    """
    return store_image(f'localhost/{name}:latest', layers, stash_labels(name, **labels))


def test_a_lower_link_to_the_host_leads_into_the_root(containers, sentinel, tmp_path):
    # below: etc -> <sentinel>, absolute, and that directory inside the
    # root; on top: etc/passwd. rsync --keep-dirlinks would follow the
    # link on the host
    inside = sentinel.lstrip('/')
    parts = inside.split('/')
    lower = stash('hostile-etc-link', [directory('/'.join(parts[:depth])) for depth in range(
        1, len(parts) + 1
    )] + [symlink('etc', sentinel)])
    upper = stash('hostile-etc-dir', [
        directory('etc'), regular_file('etc/passwd', 'stash:x:0:0\n')
    ])
    before = fingerprint(sentinel)
    root = str(tmp_path / 'image-root')
    images = ContainerImages(temp_dir=stackbuild_kiwi.TEMP_DIR)
    Stacker(images).stack(
        [StackItem('hostile-etc-link', lower), StackItem('hostile-etc-dir', upper)], root
    )
    assert fingerprint(sentinel) == before
    with open(os.path.join(root, inside, 'passwd')) as passwd:
        assert passwd.read() == 'stash:x:0:0\n'
    assert os.readlink(os.path.join(root, 'etc')) == sentinel
    assert sorted(os.listdir(root)) == sorted(['etc', parts[0]])
    assert storage_mounts(containers) == []


def test_a_link_the_upper_stash_makes_is_not_gone_through(
    containers, sentinel, target
):
    # below: z -> c; on top: c/d -> <sentinel> and z/d/x, which would
    # go through z to the link that the same copy made
    stash('hostile-alias-lower', [directory('c'), symlink('z', 'c')])
    stash('hostile-alias-upper', [
        directory('c'), symlink('c/d', sentinel),
        directory('z'), directory('z/d'), regular_file('z/d/passwd', 'stash\n'),
    ])
    message = refused(sentinel, target, 'hostile-alias-lower', 'hostile-alias-upper')
    assert 'conflicts with the stashes below it at /z/d (a directory in ' \
        'hostile-alias-upper:latest)' in message


def test_a_chain_of_42_links_deletes_nothing_outside(containers, sentinel, target):
    # below: l1 -> l2 -> ... -> l42 -> <sentinel>; on top: l1/ with a
    # whiteout of l1/victim. Linux and the stacking follow 40 links.
    stash('hostile-chain', [symlink(f'l{index}', f'l{index + 1}') for index in range(1, 42)]
          + [symlink('l42', sentinel)])
    stash('hostile-chain-whiteout', [directory('l1'), whiteout('l1/victim')])
    message = refused(sentinel, target, 'hostile-chain', 'hostile-chain-whiteout')
    assert 'conflicts with the stashes below it at /l1 (a directory in ' \
        'hostile-chain-whiteout:latest)' in message


@pytest.mark.parametrize('name', ['.wh...', '.wh..'])
def test_a_whiteout_of_dot_dot_deletes_nothing_beside_the_root(
    containers, sentinel, target, name
):
    # podman refuses such a whiteout in a layer it pulls ('file
    # exists'); a storage that keeps OCI style whiteout files holds it
    # as it is: the test puts it into the layer of the crafted stash in
    # its own storage
    stash('hostile-dotdot-lower', [directory('etc'), regular_file('etc/a', 'a\n')])
    upper = stash('hostile-dotdot', [directory('etc'), regular_file('etc/b', 'b\n')])
    layer = podman_json('image', 'inspect', upper)[0]['GraphDriver']['Data']['UpperDir']
    open(os.path.join(layer, name), 'w').close()
    message = refused(sentinel, target, 'hostile-dotdot-lower', 'hostile-dotdot')
    assert f"the stash hostile-dotdot:latest holds the whiteout '/{name}', which names " \
        'no file: the stash is damaged or crafted; rebuild it' in message


@pytest.mark.parametrize('labels, shown', [
    ({'root_mode': '0777'}, "the mode '0777'"),
    ({'root_mode': '1777'}, "the mode '1777'"),
    ({'root_mode': 'rwx'}, "the mode 'rwx'"),
    ({'root_owner': 'a:b'}, "the owner 'a:b'"),
    ({'root_owner': '1000:1000'}, "the owner '1000:1000'"),
])
def test_labels_cannot_make_an_unsafe_root_directory(
    containers, sentinel, target, labels, shown
):
    stash('hostile-labels', [directory('etc')], **labels)
    message = refused(sentinel, target, 'hostile-labels')
    assert f'the stash hostile-labels:latest asks for {shown} of the root directory' in message
