import hashlib
import os
import tarfile

import pytest

from kiwi_stackbuild_plugin.exceptions import KiwiStashError
from kiwi_stackbuild_plugin.layer import (
    TAR_OPTIONS, LayerTar, tar_argv, whiteout_name, write_listing
)


@pytest.mark.parametrize('path, name', [
    ('motd', '.wh.motd'), ('etc/motd', 'etc/.wh.motd'), ('a/b/c d', 'a/b/.wh.c d'),
])
def test_whiteout_name(path, name):
    assert whiteout_name(path) == name


def test_tar_argv_whole_tree():
    assert tar_argv('/r o') == ['tar', '--create', '--file=-'] + TAR_OPTIONS + \
        ['--directory', '/r o', '.']


def test_tar_argv_listing_with_and_without_whiteouts():
    base = ['tar', '--create', '--file=-'] + TAR_OPTIONS + \
        ['--no-recursion', '--null', '--verbatim-files-from']
    assert tar_argv('/r', '/l') == base + ['--directory', '/r', '--files-from', '/l']
    assert tar_argv('/r', '/l', '/w', '/wl') == base + [
        '--directory', '/w', '--files-from', '/wl', '--directory', '/r', '--files-from', '/l'
    ]


def test_write_listing(tmp_path):
    write_listing(str(tmp_path / 'l'), ['a', 'b\nc', '-x'])
    assert (tmp_path / 'l').read_bytes() == b'a\0b\nc\0-x\0'


def members(path):
    with tarfile.open(path) as tar:
        return {os.path.normpath(member.name): member for member in tar.getmembers()}


def test_whole_tree(tmp_path):
    root = tmp_path / 'root'
    os.makedirs(root / 'etc')
    (root / 'etc' / 'a').write_text('a')
    os.utime(root / 'etc' / 'a', ns=(0, 1500000000123456789))
    os.setxattr(root / 'etc' / 'a', 'user.x', b'1')
    layer = LayerTar.whole_tree(str(root), str(tmp_path / 'layer.tar'))
    data = (tmp_path / 'layer.tar').read_bytes()
    assert layer.size == len(data)
    assert layer.digest == 'sha256:' + hashlib.sha256(data).hexdigest()
    found = members(layer.path)
    assert set(found) == {'.', 'etc', 'etc/a'}
    assert found['etc/a'].pax_headers['mtime'] == '1500000000.123456789'
    assert found['etc/a'].pax_headers['SCHILY.xattr.user.x'] == '1'
    assert 'atime' not in found['etc/a'].pax_headers
    # the same tree gives the same layer
    again = LayerTar.whole_tree(str(root), str(tmp_path / 'again.tar'))
    assert again.digest == layer.digest


def test_changes_with_whiteouts_and_odd_names(tmp_path):
    root = tmp_path / 'root'
    os.makedirs(root / 'etc')
    (root / 'etc' / 'new').write_text('n')
    (root / '-dash').write_text('d')
    (root / 'etc' / 'untouched').write_text('u')
    work = tmp_path / 'work'
    work.mkdir()
    layer = LayerTar.changes(
        str(root), ['etc', 'etc/new', '-dash'], ['etc/old', 'gone dir'],
        str(work / 'layer.tar')
    )
    found = members(layer.path)
    assert set(found) == {'etc', 'etc/new', '-dash', 'etc/.wh.old', '.wh.gone dir'}
    assert found['etc/.wh.old'].isfile() and found['etc/.wh.old'].size == 0


def test_changes_without_whiteouts(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    (root / 'a').write_text('a')
    layer = LayerTar.changes(str(root), ['a'], [], str(tmp_path / 'layer.tar'))
    assert set(members(layer.path)) == {'a'}


def test_tar_failure_is_one_line(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    with pytest.raises(KiwiStashError, match='tar failed on the root tree: .*missing'):
        LayerTar.changes(str(root), ['missing'], [], str(tmp_path / 'layer.tar'))
