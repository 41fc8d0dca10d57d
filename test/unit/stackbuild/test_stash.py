import os
from contextlib import nullcontext
from unittest.mock import Mock

import pytest

from kiwi_stackbuild_plugin import stash as stash_module
from kiwi_stackbuild_plugin.exceptions import KiwiStashNameError
from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.reference import StashReference
from kiwi_stackbuild_plugin.root_info import RootInfo
from kiwi_stackbuild_plugin.stash import (
    Stash, StashResult, newest_of_repository, rfc3339_now
)


def info(name='leap-base'):
    return RootInfo('/r', name, '1', 'me', 'x86_64', 0o755, '0:0')


def test_reference_for():
    assert Stash.reference_for(info(), None, None).local() == 'localhost/leap-base:latest'
    assert Stash.reference_for(info('Bad Name'), 'good', 'v1').local() == 'localhost/good:v1'
    with pytest.raises(KiwiStashNameError, match=(
        r"'Leap Base' is not a valid stash name: upper case .* \(the image name in "
        r"/r/image/config.xml\): choose a valid one with --container-name, e.g. "
        r"--container-name leap-base$"
    )):
        Stash.reference_for(info('Leap Base'), None, None)
    with pytest.raises(KiwiStashNameError, match='--container-name my-stash$'):
        Stash.reference_for(info('$$$'), None, None)
    with pytest.raises(KiwiStashNameError, match='upper case'):
        Stash.reference_for(info(), 'Bad', None)
    with pytest.raises(KiwiStashNameError, match='not a valid tag'):
        Stash.reference_for(info(), None, 'a b')


def test_newest_of_repository():
    stashes = [
        {'Id': 'old', 'Names': ['localhost/a:v1'], 'Created': 1},
        {'Id': 'new', 'Names': ['localhost/a:v2', 'localhost/b:x'], 'Created': 3},
        {'Id': 'other', 'Names': ['localhost/ab:v9'], 'Created': 9},
        {'Id': 'dangling', 'Names': None, 'Created': 10},
    ]
    assert newest_of_repository(stashes, 'localhost/a') == 'new'
    assert newest_of_repository(stashes, 'localhost/c') is None


def test_rfc3339_now():
    now = rfc3339_now()
    assert len(now) == 27 and now.endswith('Z') and now[10] == 'T'


def storage(old_tree=''):
    """
    The container storage, its stashes mounted at old_tree
    """
    images = Mock(spec=ContainerImages)
    images.mounted.side_effect = lambda image, journal: nullcontext(old_tree)
    return images


@pytest.fixture
def root(tmp_path):
    os.makedirs(tmp_path / 'root' / 'image')
    (tmp_path / 'root' / 'image' / 'config.xml').write_text('<image name="probe"/>')
    (tmp_path / 'root' / 'a').write_text('a')
    return tmp_path / 'root'


def test_first_stash(root):
    images = storage()
    images.exists.return_value = False
    images.stashes.return_value = []
    images.commit.return_value = 'f' * 64
    result = Stash(images).store(str(root))
    assert result == StashResult(StashReference('probe'), 'f' * 64, 0, 0, True)
    layer, base, labels, arch, created, reference, work = images.commit.call_args.args
    assert base is None and reference == 'localhost/probe:latest'
    assert labels['org.opensuse.kiwi.stash.image-name'] == 'probe'
    assert arch in ('amd64', 'arm64') or arch
    assert layer.size > 0
    assert os.path.basename(os.path.dirname(work)).startswith('kiwi-stash-')
    assert not os.path.exists(os.path.dirname(work))


def test_stash_on_a_tagged_base_stores_the_changes(root, tmp_path):
    old = tmp_path / 'old'
    os.makedirs(old / 'image')
    (old / 'image' / 'config.xml').write_text('<image name="probe"/>')
    (old / 'gone').write_text('g')
    images = storage(str(old))
    images.exists.return_value = True
    images.inspect.return_value = {'Id': 'base-id'}
    images.commit.return_value = 'n' * 64
    result = Stash(images).store(str(root), tag='v2')
    assert result.reference == StashReference('probe', 'v2')
    assert result.first is False
    assert result.deleted == 1 and result.changed >= 1
    images.exists.assert_called_once_with('localhost/probe:v2')
    assert images.commit.call_args.args[1] == 'base-id'
    assert images.commit.call_args.args[5] == 'localhost/probe:v2'


def test_stash_with_a_new_tag_uses_the_newest_stash_as_base(root):
    images = storage(str(root))
    images.exists.return_value = False
    images.stashes.return_value = [
        {'Id': 'newest', 'Names': ['localhost/probe:v1']},
        {'Id': 'other', 'Names': ['localhost/probe-2:v1']},
    ]
    result = Stash(images).store(str(root), tag='v2')
    # nothing changed: the new tag names the newest stash
    images.tag.assert_called_once_with('newest', 'localhost/probe:v2')
    images.commit.assert_not_called()
    assert result == StashResult(StashReference('probe', 'v2'), '', 0, 0, False)


def test_stash_name_checked_before_anything_is_stored(root):
    images = storage()
    with pytest.raises(KiwiStashNameError):
        Stash(images).store(str(root), container_name='Bad')
    assert images.method_calls == []


def test_suggest():
    assert stash_module._suggest('My Image 2') == 'my-image-2'
    assert stash_module._suggest('___') == 'my-stash'
