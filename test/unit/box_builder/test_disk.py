"""
box_builder.disk: the system disk without partitioning tools or loops
"""
import os
import struct

import pytest

from box_builder import disk
from box_builder.disk import disk_geometry, master_boot_record, write_system_disk
from box_builder.errors import BoxBuildError


class TestDisk:
    def test_geometry(self):
        size, blocks = disk_geometry(20)
        assert size == 20 * 1024 ** 3
        assert blocks * 4096 + 1024 * 1024 == size

    def test_master_boot_record(self):
        size = 20 * 1024 ** 3
        record = master_boot_record(size)
        assert len(record) == 512
        assert record[510:] == b'\x55\xaa'
        status, kind, first, sectors = struct.unpack('<B3xB3xII', record[446:462])
        assert (status, kind) == (0, 0x83)
        assert first == 2048
        assert (first + sectors) * 512 == size
        assert record[462:510] == bytes(48)

    def test_too_large_for_dos(self):
        with pytest.raises(BoxBuildError, match='too large'):
            master_boot_record(3 * 1024 ** 4)


class TestWriteSystemDisk:
    def test_sparse_raw_disk_file_system_then_qcow2(self, tmp_path, mocker):
        calls = []

        def run(argv):
            # both programs read the raw disk, named last but one
            with open(argv[-2], 'rb') as handle:
                calls.append((argv, handle.read(512), os.path.getsize(argv[-2])))
        mocker.patch.object(disk, 'run', side_effect=run)
        raw = str(tmp_path / 'disk.raw')
        write_system_disk('/rootfs', 1, str(tmp_path), str(tmp_path / 'box.qcow2'))
        (mkfs, record, size), (convert, _, _) = calls
        assert mkfs == [
            'mkfs.ext4', '-q', '-F', '-b', '4096', '-L', 'kiwi-box',
            '-E', 'offset=1048576', '-d', '/rootfs', raw, str(disk_geometry(1)[1])
        ]
        assert record == master_boot_record(1024 ** 3)
        assert size == 1024 ** 3
        assert convert == [
            'qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, str(tmp_path / 'box.qcow2')
        ]
        assert not os.path.exists(raw)
