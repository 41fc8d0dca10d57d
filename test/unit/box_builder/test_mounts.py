"""
box_builder.mounts: the chroot's mounts and what killed builds left
"""
import pytest

from box_builder import mounts
from box_builder.errors import BoxBuildError
from box_builder.mounts import chroot_mounts, mounts_below, remove_tree


class TestMountsBelow:
    TABLE = (
        'proc /proc proc rw 0 0\n'
        '/dev/vda / ext4 rw 0 0\n'
        'proc /var/cache/w/rootfs/proc proc rw 0 0\n'
        'udev /var/cache/w/rootfs/dev devtmpfs rw 0 0\n'
        'devpts /var/cache/w/rootfs/dev/pts devpts rw 0 0\n'
        '/dev/vda /var/cache/w/rootfs/var/cache/apt/archives ext4 rw 0 0\n'
        '/dev/vda /var/cache/w2/rootfs ext4 rw 0 0\n'
        '/dev/vda /var/cache/w/with\\040blank ext4 rw 0 0\n'
    )

    def test_deepest_first_and_only_below(self):
        assert mounts_below('/var/cache/w', self.TABLE) == [
            '/var/cache/w/rootfs/var/cache/apt/archives',
            '/var/cache/w/rootfs/dev/pts',
            '/var/cache/w/rootfs/proc',
            '/var/cache/w/rootfs/dev',
            '/var/cache/w/with blank',
        ]

    def test_none(self):
        assert mounts_below('/var/cache/x', self.TABLE) == []


class TestChrootMounts:
    def test_mounted_in_order_and_unmounted_in_reverse(self, tmp_path, mocker):
        run = mocker.patch.object(mounts, 'run')
        unmount = mocker.patch.object(mounts, 'unmount')
        with chroot_mounts(str(tmp_path)):
            assert [call.args[0] for call in run.call_args_list] == [
                ['mount', '-t', 'proc', 'proc', f'{tmp_path}/proc'],
                ['mount', '-t', 'sysfs', 'sysfs', f'{tmp_path}/sys'],
                ['mount', '--bind', '/dev', f'{tmp_path}/dev'],
                ['mount', '-t', 'devpts', 'devpts', f'{tmp_path}/dev/pts'],
            ]
            unmount.assert_not_called()
        assert [call.args[0] for call in unmount.call_args_list] == [
            f'{tmp_path}/dev/pts', f'{tmp_path}/dev', f'{tmp_path}/sys', f'{tmp_path}/proc'
        ]

    def test_a_failed_mount_unmounts_what_was_mounted(self, tmp_path, mocker):
        mocker.patch.object(
            mounts, 'run', side_effect=[None, BoxBuildError('mount failed')]
        )
        unmount = mocker.patch.object(mounts, 'unmount')
        with pytest.raises(BoxBuildError):
            with chroot_mounts(str(tmp_path)):
                pass  # pragma: no cover - the mounts fail before
        assert [call.args[0] for call in unmount.call_args_list] == [f'{tmp_path}/proc']


class TestRemoveTree:
    def test_detaches_what_is_mounted_below_first(self, tmp_path, mocker):
        tree = tmp_path / 'work'
        (tree / 'rootfs' / 'dev').mkdir(parents=True)
        mocker.patch('builtins.open', mocker.mock_open(
            read_data=f'udev {tree}/rootfs/dev devtmpfs rw 0 0\n'
        ))
        detach = mocker.patch.object(mounts.subprocess, 'run')
        remove_tree(str(tree))
        detach.assert_called_once_with(['umount', '--lazy', f'{tree}/rootfs/dev'])
        assert not tree.exists()

    def test_nothing_there(self, tmp_path, mocker):
        detach = mocker.patch.object(mounts.subprocess, 'run')
        remove_tree(str(tmp_path / 'missing'))
        detach.assert_not_called()
