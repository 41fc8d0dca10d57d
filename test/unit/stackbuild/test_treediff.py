import os

from kiwi_stackbuild_plugin.treediff import Entry, TreeDiff, entry_of, scan_tree


def entry(kind='file', size=1, mtime=1, inode=None, **changes):
    values = dict(
        kind=kind, mode=0o644, uid=0, gid=0, size=size, mtime_ns=mtime, rdev=0,
        target='', xattrs=(), inode=inode
    )
    values.update(changes)
    return Entry(**values)


DIR = entry('dir', size=0)


def test_same_content_ignores_only_the_inode():
    assert entry(inode=(1, 2)).same_content(entry(inode=(3, 4)))
    for change in (
        {'kind': 'fifo'}, {'mode': 0o600}, {'uid': 1}, {'gid': 1}, {'size': 2},
        {'mtime_ns': 2}, {'rdev': 5}, {'target': 'x'}, {'xattrs': (('user.a', b'1'),)},
    ):
        assert not entry().same_content(entry(**change)), change


def test_identical_trees():
    tree = {'etc': DIR, 'etc/a': entry()}
    assert TreeDiff.compare(tree, dict(tree)).empty


def test_added_changed_and_deleted():
    old = {
        'etc': DIR, 'etc/a': entry(), 'etc/b': entry(), 'etc/gone': entry(),
        'usr': DIR, 'usr/doc': DIR, 'usr/doc/x': entry(), 'usr/doc/y': DIR,
        'usr/doc/y/z': entry(),
    }
    new = {
        'etc': entry('dir', size=0, mtime=2), 'etc/a': entry(),
        'etc/b': entry(mtime=5), 'etc/new': entry(), 'usr': DIR,
    }
    diff = TreeDiff.compare(old, new)
    assert diff.changed == ['etc', 'etc/b', 'etc/new']
    # only the top of a deleted subtree is whited out
    assert diff.deleted == ['etc/gone', 'usr/doc']
    assert not diff.empty


def test_type_changes_replace_without_whiteout():
    old = {'a': DIR, 'a/x': entry(), 'b': entry()}
    new = {'a': entry(), 'b': DIR, 'b/y': entry()}
    diff = TreeDiff.compare(old, new)
    assert diff.changed == ['a', 'b', 'b/y']
    assert diff.deleted == []


def test_a_changed_hardlink_takes_its_partners_along():
    old = {'a': entry(inode=(1, 1)), 'b': entry(inode=(1, 1)), 'c': entry()}
    new = {'a': entry(inode=(1, 7), mtime=9), 'b': entry(inode=(1, 7), mtime=9), 'c': entry()}
    assert TreeDiff.compare(old, new).changed == ['a', 'b']
    # same inode everywhere, but content of one name changed: both go
    new = {'a': entry(inode=(1, 7), size=3), 'b': entry(inode=(1, 7)), 'c': entry()}
    assert TreeDiff.compare(old, new).changed == ['a', 'b']


def test_links_made_or_split_count_as_changes():
    separate = {'a': entry(), 'b': entry()}
    linked = {'a': entry(inode=(1, 1)), 'b': entry(inode=(1, 1))}
    assert TreeDiff.compare(separate, linked).changed == ['a', 'b']
    assert TreeDiff.compare(linked, separate).changed == ['a', 'b']


def test_scan_tree(tmp_path):
    os.makedirs(tmp_path / 'd' / 'e')
    (tmp_path / 'd' / 'f').write_text('12345')
    os.link(tmp_path / 'd' / 'f', tmp_path / 'g')
    os.symlink('d/f', tmp_path / 'link')
    os.mkfifo(tmp_path / 'fifo')
    os.setxattr(tmp_path / 'g', 'user.k', b'v')
    os.utime(tmp_path / 'd' / 'f', ns=(5, 123456789))
    tree = scan_tree(str(tmp_path))
    assert list(tree) == ['d', 'd/e', 'd/f', 'fifo', 'g', 'link']
    assert tree['d'].kind == 'dir' and tree['d'].inode is None
    assert tree['d/f'].size == 5 and tree['d/f'].mtime_ns == 123456789
    assert tree['d/f'].inode == tree['g'].inode is not None
    assert tree['g'].xattrs == (('user.k', b'v'),)
    assert tree['link'].kind == 'link' and tree['link'].target == 'd/f'
    assert tree['link'].size == 0
    assert tree['fifo'].kind == 'fifo'
    assert entry_of(str(tmp_path / 'd' / 'e')).mode == tree['d/e'].mode
