"""kiwi-ng system stackbuild: stacking real stashes and building with real kiwi."""
import glob
import os
import subprocess
import tarfile

import pytest

from harness.probe_tree import FINE_MTIME_NS, OLD_MTIME_NS, fingerprint
from harness.stackbuild_kiwi import kiwi, write_description

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


def read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def test_two_stashes_rebuilt_with_system_create(debian_stash, tmp_path, mirror):
    # lower stash: Debian with the probe tree and /etc/hostname and
    # /etc/motd, which the upper stash overwrites and deletes

    # upper stash: a real /bin directory (must go through the merged-/usr
    # symlink), then a second layer overwriting hostname, deleting motd
    upper = str(tmp_path / 'upper root')
    write_description(os.path.join(upper, 'image', 'config.xml'), mirror, name='stack-b')
    write(os.path.join(upper, 'etc', 'motd'), 'b\n')
    write(os.path.join(upper, 'etc', 'hostname'), 'b\n')
    write(os.path.join(upper, 'bin', 'stack-tool'), 'tool\n')
    os.chmod(upper, 0o711)
    kiwi('system', 'stash', '--root', upper)
    os.unlink(os.path.join(upper, 'etc', 'motd'))
    write(os.path.join(upper, 'etc', 'hostname'), 'b2\n')
    kiwi('system', 'stash', '--root', upper)

    target = str(tmp_path / 'target')
    kiwi('--type', 'tbz', 'system', 'stackbuild', '--stash', 'stackbuild-probe',
         '--stash', 'stack-b:latest', '--target-dir', target)

    root = os.path.join(target, 'build', 'image-root')
    assert fingerprint(os.path.join(root, 'probe')) == \
        fingerprint(os.path.join(debian_stash, 'probe'))
    assert os.stat(os.path.join(root, 'probe', 'fine')).st_mtime_ns == FINE_MTIME_NS
    assert os.readlink(os.path.join(root, 'bin')) == 'usr/bin'
    assert read(os.path.join(root, 'usr', 'bin', 'stack-tool')) == 'tool\n'
    assert read(os.path.join(root, 'etc', 'hostname')) == 'b2\n'
    assert not os.path.lexists(os.path.join(root, 'etc', 'motd'))
    assert os.stat(root).st_mode & 0o7777 == 0o711
    assert not glob.glob(os.path.join(target, 'build', '.image-root.stacking-*'))

    # the image kiwi made holds the stacked root
    tarballs = glob.glob(os.path.join(target, 'stack-b.*-1.2.3.tar.xz'))
    assert len(tarballs) == 1
    with tarfile.open(tarballs[0]) as tarball:
        members = {
            os.path.normpath(member.name): member for member in tarball.getmembers()
        }
        assert tarball.extractfile(members['etc/hostname']).read() == b'b2\n'
    assert 'etc/motd' not in members
    for name in members:
        if name != '.':
            assert os.path.lexists(os.path.join(root, name)), name
    owned = members['probe/owned']
    assert (owned.uid, owned.gid, owned.mode) == (1234, 5678, 0o4751)
    assert members['probe/old'].mtime == OLD_MTIME_NS // 10**9
    assert members['probe/char'].ischr() and members['probe/fifo'].isfifo()
    assert members['probe/hardlink'].islnk() or members['probe/linked'].islnk()
    assert 'SCHILY.xattr.security.capability' in members['probe/capable'].pax_headers


def test_build_a_description_on_top_of_a_stash(split_usr_stash, tmp_path, mirror):
    description = str(tmp_path / 'description')
    write_description(os.path.join(description, 'config.xml'), mirror, name='on-top')
    target = str(tmp_path / 'target')

    kiwi('--type', 'tbz', 'system', 'stackbuild', '--stash', 'stackbuild-split',
         '--target-dir', target, '--description', description)

    root = os.path.join(target, 'build', 'image-root')
    # netbase is in the description, not in the minbase stash
    assert os.path.isfile(os.path.join(root, 'etc', 'protocols'))
    tarballs = glob.glob(os.path.join(target, 'on-top.*-1.2.3.tar.xz'))
    assert len(tarballs) == 1
    names = subprocess.run(
        ['tar', '-tJf', tarballs[0]], capture_output=True, text=True, check=True
    ).stdout.split()
    assert './etc/protocols' in names or 'etc/protocols' in names
