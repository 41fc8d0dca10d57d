import os
import re
import shutil
import stat
from contextlib import contextmanager

import pytest

from kiwi_stackbuild_plugin.exceptions import (
    KiwiStackbuildError, KiwiStackConflictError, KiwiStackLabelError,
    KiwiStackTargetExistsError, KiwiStackWhiteoutError
)
from kiwi_stackbuild_plugin.interruption import dies_with_parent
from kiwi_stackbuild_plugin.root_info import resolve_in_root
from kiwi_stackbuild_plugin.stack import (
    RSYNC_OPTIONS, Stacker, StackItem, check_target_free, conflict_message, dirlinks_inside,
    find_conflicts, layer_markers, lower_kind, remove_path, root_mode, root_owner,
    shared_places, tree_kinds, whiteout_target
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
    assert layer_markers(str(tmp_path), 's') == (
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
    def mounted(self, image, journal):
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
        assert argv[:-2] == dies_with_parent(['rsync'] + RSYNC_OPTIONS)
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


@pytest.fixture
def trees(tmp_path):
    """
    Empty directories: the merged trees of a lower and an upper stash,
    and the layer of the upper one
    """
    made = tuple(tmp_path / name for name in ('lower', 'upper', 'layer'))
    for tree in made:
        tree.mkdir()
    return made


def test_stack_applies_order_deletions_and_root_mode(tmp_path, trees, copying_rsync):
    lower, upper, upper_layer = trees
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


@pytest.mark.parametrize('name, target', [
    ('.wh.motd', 'motd'), ('.wh.a.b', 'a.b'), ('.wh....', '...'),
    ('.wh.', None), ('.wh..', None), ('.wh...', None), ('.wh.a/b', None),
    ('.wh..wh.plnk', None),
])
def test_whiteout_target(name, target):
    assert whiteout_target(name) == target


@needs_root
def test_layer_markers_take_overlay_whiteouts_by_their_own_name(tmp_path):
    # a 0/0 device is overlayfs' whiteout of its name, '.wh.' or not
    os.mknod(tmp_path / '.wh.plnk', stat.S_IFCHR, os.makedev(0, 0))
    assert layer_markers(str(tmp_path), 's') == ({'.wh.plnk'}, set())


@pytest.mark.parametrize('name', ['.wh...', '.wh..', '.wh.'])
def test_a_whiteout_that_names_no_file_is_refused(tmp_path, name):
    os.makedirs(tmp_path / 'etc')
    (tmp_path / 'etc' / name).write_text('')
    with pytest.raises(KiwiStackWhiteoutError, match=(
        f"^the stash up:latest holds the whiteout '/etc/{re.escape(name)}', which names no "
        'file: the stash is damaged or crafted; rebuild it$'
    )):
        layer_markers(str(tmp_path), 'up:latest')


def link_chain(root, links: int, end: str) -> None:
    """
    root/l1 -> l2 -> ... -> l<links> -> end
    """
    for index in range(1, links):
        os.symlink(f'l{index + 1}', os.path.join(root, f'l{index}'))
    os.symlink(end, os.path.join(root, f'l{links}'))


def test_remove_path_below_a_chain_too_long_stays_in_the_root(tmp_path):
    outside = tmp_path / 'outside'
    os.makedirs(outside / 'victim')
    root = tmp_path / 'root'
    root.mkdir()
    link_chain(str(root), 42, str(outside))
    remove_path(str(root), 'l1/victim')
    assert (outside / 'victim').is_dir()
    assert lower_kind(str(root), 'l1') == 'other'
    assert lower_kind(str(root), 'l1/victim') is None


def test_shared_places(tmp_path):
    os.makedirs(tmp_path / 'c')
    os.makedirs(tmp_path / 'usr' / 'bin')
    os.symlink('c', tmp_path / 'z')
    os.symlink('usr/bin', tmp_path / 'bin')
    upper = {
        'c': True, 'c/d': False, 'z': True, 'z/d': True, 'z/d/x': False,
        # two directories in one place are the merged /usr
        'bin': True, 'bin/sh': False, 'usr': True, 'usr/bin': True, 'usr/bin/sh': False,
    }
    assert shared_places(str(tmp_path), upper) == ['z/d']


def test_dirlinks_inside_puts_the_originals_back(tmp_path):
    os.makedirs(tmp_path / 'real')
    os.symlink('/real', tmp_path / 'link')
    os.utime(tmp_path / 'link', ns=(1, 1), follow_symlinks=False)
    with pytest.raises(RuntimeError):
        with dirlinks_inside({str(tmp_path / 'link'): str(tmp_path / 'real')}):
            assert os.readlink(tmp_path / 'link') == 'real'
            raise RuntimeError()
    assert os.readlink(tmp_path / 'link') == '/real'
    assert os.lstat(tmp_path / 'link').st_mtime_ns == 1
    assert sorted(os.listdir(tmp_path)) == ['link', 'real']


@pytest.fixture
def following_rsync(command_run, tool_result):
    """
    Command.run replaced by a copy that behaves like an older rsync
    with --keep-dirlinks: in rsync's order, through every symlink of
    the target on the host, to wherever it points
    """
    def copy(source, target):
        for name in sorted(os.listdir(source)):
            origin, destination = os.path.join(source, name), os.path.join(target, name)
            if os.path.islink(origin):
                if os.path.lexists(destination):
                    os.unlink(destination)
                os.symlink(os.readlink(origin), destination)
            elif os.path.isdir(origin):
                if not os.path.isdir(destination):
                    os.mkdir(destination)
                copy(origin, destination)
            else:
                shutil.copyfile(origin, destination)

    def run(argv, raise_on_error=True):
        copy(argv[-2].rstrip('/'), argv[-1].rstrip('/'))
        return tool_result()
    command_run.side_effect = run


def test_a_lower_link_out_of_the_root_leads_inside_it(tmp_path, following_rsync):
    # the lower stash: etc -> /<outside> and that directory in itself
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'passwd').write_text('host\n')
    lower, upper = tmp_path / 'lower', tmp_path / 'upper'
    os.makedirs(lower / str(outside).lstrip('/'))
    os.symlink(str(outside), lower / 'etc')
    os.makedirs(upper / 'etc')
    (upper / 'etc' / 'passwd').write_text('stash\n')
    root = tmp_path / 'target' / 'image-root'
    Stacker(FakeImages({'L': str(lower), 'U': str(upper)}, layers={'U': []})).stack(
        [StackItem('l', 'L'), StackItem('u', 'U')], str(root)
    )
    assert (outside / 'passwd').read_text() == 'host\n'
    assert os.listdir(outside) == ['passwd']
    assert (root / str(outside).lstrip('/') / 'passwd').read_text() == 'stash\n'
    assert os.readlink(root / 'etc') == str(outside)
    assert sorted(os.listdir(root)) == ['etc', str(outside).lstrip('/').split('/')[0]]


def test_a_link_the_upper_stash_makes_is_not_gone_through(tmp_path, following_rsync):
    # z -> c below; above, c/d -> /<outside> and z/d/x: the copy would
    # make the link, then write x through z and the link
    outside = tmp_path / 'outside'
    outside.mkdir()
    lower, upper = tmp_path / 'lower', tmp_path / 'upper'
    os.makedirs(lower / 'c')
    os.symlink('c', lower / 'z')
    os.makedirs(upper / 'c')
    os.symlink(str(outside), upper / 'c' / 'd')
    os.makedirs(upper / 'z' / 'd')
    (upper / 'z' / 'd' / 'x').write_text('x\n')
    target = tmp_path / 'target'
    with pytest.raises(KiwiStackConflictError, match=r'at /z/d \(a directory in u\)'):
        Stacker(FakeImages({'L': str(lower), 'U': str(upper)}, layers={'U': []})).stack(
            [StackItem('l', 'L'), StackItem('u', 'U')], str(target / 'image-root')
        )
    assert os.listdir(outside) == []
    assert os.listdir(target) == []


def test_a_whiteout_of_dot_dot_deletes_nothing(tmp_path, trees, copying_rsync):
    lower, upper, layer = trees
    (lower / 'a').write_text('a')
    (layer / '.wh...').write_text('')
    target = tmp_path / 'target'
    target.mkdir()
    (target / 'beside').write_text('the user\'s\n')
    with pytest.raises(KiwiStackWhiteoutError, match=r"whiteout '/\.wh\.\.\.'"):
        Stacker(FakeImages({'L': str(lower), 'U': str(upper)}, layers={'U': [str(layer)]})).stack(
            [StackItem('l', 'L'), StackItem('u', 'U')], str(target / 'image-root')
        )
    assert os.listdir(target) == ['beside']


@pytest.mark.parametrize('labels, mode', [
    ({}, 0o755), ({'org.opensuse.kiwi.stash.root-mode': ''}, 0o755),
    ({'org.opensuse.kiwi.stash.root-mode': '0750'}, 0o750),
    ({'org.opensuse.kiwi.stash.root-mode': '555'}, 0o555),
    ({'org.opensuse.kiwi.stash.root-mode': '0711'}, 0o711),
])
def test_root_mode(labels, mode):
    assert root_mode(labels, 's') == mode


# what the message of a refused label says after the label
REFUSED_LABELS = {
    'root-mode': (root_mode, 'mode', 'only a mode that lets no one but root write, such as '
                  '0755, is taken'),
    'root-owner': (root_owner, 'owner', "a root tree belongs to root, '0:GID' with a numeric "
                   'group'),
}


@pytest.mark.parametrize('label, text', [('root-mode', text) for text in (
    '0777', '0775', '0757', '1755', '4755', '2755', '07777', 'zz', '0o755', ' 0755', '-1', '8',
)] + [('root-owner', text) for text in (
    'a:b', '1000:1000', '0', '0:', ':0', '0:0:0', '0:-1', '0:4294967295', '0:99999999999',
)])
def test_unsafe_root_labels_are_refused(label, text):
    read, what, rule = REFUSED_LABELS[label]
    with pytest.raises(KiwiStackLabelError, match='^' + re.escape(
        f"the stash s asks for the {what} '{text}' of the root directory "
        f'(label org.opensuse.kiwi.stash.{label}): {rule}; rebuild the stash'
    ) + '$'):
        read({f'org.opensuse.kiwi.stash.{label}': text}, 's')


@pytest.mark.parametrize('labels, owner', [
    ({}, None), ({'org.opensuse.kiwi.stash.root-owner': '0:0'}, (0, 0)),
    ({'org.opensuse.kiwi.stash.root-owner': '0:42'}, (0, 42)),
])
def test_root_owner(labels, owner):
    assert root_owner(labels, 's') == owner


def test_labels_are_checked_before_anything_is_stacked(tmp_path, command_run):
    (tmp_path / 'tree').mkdir()
    images = FakeImages(
        {'S': str(tmp_path / 'tree')},
        labels={'S': {'org.opensuse.kiwi.stash.root-mode': '0777'}}
    )
    with pytest.raises(KiwiStackLabelError):
        Stacker(images).stack([StackItem('s', 'S')], str(tmp_path / 'target' / 'image-root'))
    command_run.assert_not_called()
    assert not (tmp_path / 'target').exists()


def test_stacking_is_journaled(tmp_path, copying_rsync, journal_dir):
    journals = []

    class JournalingImages(FakeImages):
        @contextmanager
        def mounted(self, image, journal):
            journals.append(journal)
            leftovers = journal.leftovers()
            assert len(leftovers.directories) == 1
            assert os.path.basename(leftovers.directories[0]).startswith(
                '.image-root.stacking-'
            )
            yield self.trees[image]

    (tmp_path / 'tree').mkdir()
    Stacker(JournalingImages({'S': str(tmp_path / 'tree')})).stack(
        [StackItem('s', 'S')], str(tmp_path / 'target' / 'image-root')
    )
    assert journals and os.listdir(journal_dir) == []
