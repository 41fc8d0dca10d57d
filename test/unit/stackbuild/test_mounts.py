import pytest

from kiwi_stackbuild_plugin import mounts
from kiwi_stackbuild_plugin.mounts import mountinfo_entry, mounts_below

MOUNTINFO = (
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n'
    '40 22 0:5 / /r/proc rw,nosuid shared:12 master:3 - proc proc rw\n'
    '41 22 0:6 / /r/dev rw - devtmpfs udev rw\n'
    '42 22 8:1 /x /r\\040tree/sys rw - sysfs sysfs rw\n'
    '43 22 8:1 / /r rw - ext4 /dev/sda1 rw\n'
    '44 22 8:1 / /rest rw - tmpfs tmpfs rw\n'
)


@pytest.fixture
def mountinfo(tmp_path, monkeypatch):
    path = tmp_path / 'mountinfo'
    path.write_text(MOUNTINFO)
    monkeypatch.setattr(mounts, 'MOUNTINFO', str(path))


def test_mountinfo_entry():
    assert mountinfo_entry(MOUNTINFO.splitlines()[1]) == ('/r/proc', 'proc')
    assert mountinfo_entry(MOUNTINFO.splitlines()[3]) == ('/r tree/sys', 'sysfs')


def test_mounts_below(mountinfo):
    # the mount on the directory itself is none of them, nor /rest
    assert mounts_below('/r') == [('/r/dev', 'devtmpfs'), ('/r/proc', 'proc')]
    assert mounts_below('/r/') == mounts_below('/r')
    assert mounts_below('/r tree') == [('/r tree/sys', 'sysfs')]
    assert mounts_below('/r/proc') == []
    assert len(mounts_below('/')) == 5
