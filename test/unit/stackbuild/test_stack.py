import os
import stat
from contextlib import contextmanager

import pytest

from kiwi_stackbuild_plugin.exceptions import (
    KiwiStackbuildError, KiwiStackConflictError, KiwiStackTargetExistsError
)
from kiwi_stackbuild_plugin.root_info import resolve_in_root
from kiwi_stackbuild_plugin.stack import (
    RSYNC_OPTIONS, Stacker, StackItem, check_target_free, conflict_message, find_conflicts,
    layer_markers, lower_kind, remove_path, tree_kinds
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='mknod of whiteouts needs root')


def test_find_conflicts():
    upper = {'bin': True, 'bin/x': False, 'etc': True, 'etc/a': True, 'etc/a/b': False,
             'lib': False, 'new': False, 'sbin': False, 'file': False}
    lower = {'bin': 'dirlink', 'etc': 'dir', 'etc/a': 'other', 'etc/a/b': 'dir',
             'lib': 'dir', 'sbin': 'dirlink', 'file': 'other'}
    # below the conflict at etc/a nothing more is reported
    assert find_conflicts(upper, lower) == ['etc/a', 'lib']


def test_conflict_message():
    upper = {f'p{index}': bool(index % 2) for index in range(7)}
    message = conflict_message('up:latest', list(upper), upper)
    assert message.startswith(
        'the stash up:latest conflicts with the stashes below it at '
        '/p0 (not a directory in up:latest), /p1 (a directory in up:latest), '
    )
    assert ' and 2 more: a file and a directory cannot stack' in message
    assert '/p5' not in message


def test_lower_kind(tmp_path):
    root = str(tmp_path)
    os.makedirs(tmp_path / 'usr' / 'bin')
    (tmp_path / 'usr' / 'bin' / 'sh').write_text('')
    os.symlink('usr/bin', tmp_path / 'bin')
    os.symlink('usr/bin/sh', tmp_path / 'shell')
    os.symlink('/nowhere', tmp_path / 'dangling')
    assert lower_kind(root, 'usr') == 'dir'
    assert lower_kind(root, 'bin') == 'dirlink'
    assert lower_kind(root, 'bin/sh') == 'other'
    assert lower_kind(root, 'shell') == 'other'
    assert lower_kind(root, 'dangling') == 'other'
    assert lower_kind(root, 'missing') is None
    assert lower_kind(root, 'bin/missing') is None


def test_tree_kinds(tmp_path):
    os.makedirs(tmp_path / 'a' / 'b')
    (tmp_path / 'a' / 'f').write_text('')
    os.symlink('a', tmp_path / 'l')
    assert tree_kinds(str(tmp_path)) == {'a': True, 'l': False, 'a/b': True, 'a/f': False}


def test_remove_path_through_parent_links(tmp_path):
    root = str(tmp_path)
    os.makedirs(tmp_path / 'usr' / 'bin' / 'd')
    (tmp_path / 'usr' / 'bin' / 'f').write_text('')
    os.symlink('usr/bin', tmp_path / 'bin')
    os.symlink('usr', tmp_path / 'ulink')
    remove_path(root, 'bin/f')
    remove_path(root, 'bin/d')
    remove_path(root, 'ulink')
    remove_path(root, 'missing/too')
    assert os.listdir(tmp_path / 'usr' / 'bin') == []
    assert not os.path.lexists(tmp_path / 'ulink')


@needs_root
def test_layer_markers(tmp_path):
    os.makedirs(tmp_path / 'etc' / 'opaque')
    os.mknod(tmp_path / 'etc' / 'gone', stat.S_IFCHR, os.makedev(0, 0))
    os.mknod(tmp_path / 'etc' / 'tty', stat.S_IFCHR | 0o600, os.makedev(4, 1))
    os.setxattr(tmp_path / 'etc' / 'opaque', 'trusted.overlay.opaque', b'y')
    os.makedirs(tmp_path / 'var' / 'oci')
    (tmp_path / 'var' / '.wh.old').write_text('')
    (tmp_path / 'var' / 'oci' / '.wh..wh..opq').write_text('')
    (tmp_path / 'plain').write_text('')
    assert layer_markers(str(tmp_path)) == (
        {'etc/gone', 'var/old'}, {'etc/opaque', 'var/oci'}
    )


def test_check_target_free(tmp_path):
    check_target_free(str(tmp_path / 'root'))
    os.symlink('nowhere', tmp_path / 'root')
    with pytest.raises(KiwiStackTargetExistsError, match='exists and is kept'):
        check_target_free(str(tmp_path / 'root'))


class FakeImages:
    """
    Images whose merged trees are directories of the test
    """
    def __init__(self, trees, layers=None, labels=None):
        self.trees = trees
        self.layers = layers or {}
        self.labels = labels or {}

    @contextmanager
    def mounted(self, image):
        yield self.trees[image]

    def layer_dirs(self, image):
        return self.layers.get(image)

    def inspect(self, image):
        return {'Labels': self.labels.get(image)}


@pytest.fixture
def copying_rsync(command_run, tool_result):
    """
    Command.run replaced by a copy that behaves like the rsync call
    """
    def run(argv, raise_on_error=True):
        assert argv[:len(RSYNC_OPTIONS) + 1] == ['rsync'] + RSYNC_OPTIONS
        source, target = argv[-2], argv[-1]
        for directory, dirs, files in os.walk(source):
            relative = os.path.relpath(directory, source)
            for name in dirs:
                os.makedirs(resolve_in_root(target, os.path.join(relative, name)),
                            exist_ok=True)
            for name in files:
                with open(os.path.join(directory, name)) as handle:
                    content = handle.read()
                path = resolve_in_root(target, os.path.join(relative, name))
                with open(path, 'w') as handle:
                    handle.write(content)
        return tool_result()
    command_run.side_effect = run


def test_stack_applies_order_deletions_and_root_mode(tmp_path, copying_rsync):
    lower, upper, upper_layer = tmp_path / 'lower', tmp_path / 'upper', tmp_path / 'layer'
    for tree in (lower, upper, upper_layer):
        tree.mkdir()
    (lower / 'a').write_text('lower')
    (lower / 'gone').write_text('lower')
    os.makedirs(lower / 'opq' / 'old')
    (upper / 'a').write_text('upper')
    os.makedirs(upper / 'opq' / 'new')
    (upper_layer / '.wh.gone').write_text('')
    os.makedirs(upper_layer / 'opq')
    (upper_layer / 'opq' / '.wh..wh..opq').write_text('')
    images = FakeImages(
        {'L': str(lower), 'U': str(upper)}, layers={'U': [str(upper_layer)]},
        labels={'U': {'org.opensuse.kiwi.stash.root-mode': '0711',
                      'org.opensuse.kiwi.stash.root-owner': f'{os.getuid()}:{os.getgid()}'}}
    )
    root = tmp_path / 'target' / 'build' / 'image-root'
    Stacker(images).stack([StackItem('l', 'L'), StackItem('u', 'U')], str(root))
    assert (root / 'a').read_text() == 'upper'
    assert not (root / 'gone').exists()
    assert os.listdir(root / 'opq') == ['new']
    assert os.stat(root).st_mode & 0o7777 == 0o711
    assert os.listdir(root.parent) == ['image-root']


def test_stack_without_labels_or_layers(tmp_path, copying_rsync, caplog):
    lower, upper = tmp_path / 'lower', tmp_path / 'upper'
    lower.mkdir()
    upper.mkdir()
    (lower / 'a').write_text('lower')
    root = tmp_path / 'image-root'
    Stacker(FakeImages({'L': str(lower), 'U': str(upper)})).stack(
        [StackItem('l', 'L'), StackItem('u', 'U')], str(root)
    )
    assert os.stat(root).st_mode & 0o7777 == 0o755
    assert (root / 'a').read_text() == 'lower'
    assert 'cannot apply to the stashes below it' in caplog.text


def test_conflict_leaves_nothing(tmp_path, copying_rsync):
    lower, upper = tmp_path / 'lower', tmp_path / 'upper'
    os.makedirs(lower / 'thing')
    os.makedirs(upper)
    (upper / 'thing').write_text('file')
    target = tmp_path / 'target'
    with pytest.raises(KiwiStackConflictError, match=r'/thing \(not a directory in u\)'):
        Stacker(FakeImages({'L': str(lower), 'U': str(upper)}, layers={'U': []})).stack(
            [StackItem('l', 'L'), StackItem('u', 'U')], str(target / 'image-root')
        )
    assert os.listdir(target) == []


def test_rsync_failure_leaves_nothing(tmp_path, command_run, tool_result):
    (tmp_path / 'tree').mkdir()
    command_run.return_value = tool_result(
        error='rsync: some error\nrsync error: code 23\n', returncode=23
    )
    with pytest.raises(KiwiStackbuildError, match='cannot copy the stash s: rsync error: code 23'):
        Stacker(FakeImages({'S': str(tmp_path / 'tree')})).stack(
            [StackItem('s', 'S')], str(tmp_path / 'target' / 'image-root')
        )
    assert os.listdir(tmp_path / 'target') == []
