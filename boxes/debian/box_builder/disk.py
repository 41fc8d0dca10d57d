"""
The box's system disk: a DOS partition table written here, one ext4
partition made from the root tree with mkfs.ext4 -d (no loop mounts),
converted to qcow2.
"""
import logging
import os
import struct
from typing import Tuple

from box_builder.errors import BoxBuildError
from box_builder.programs import run

# the partition starts at 1 MiB, the usual alignment
PARTITION_OFFSET = 1024 * 1024
BLOCK_SIZE = 4096
SECTOR = 512

log = logging.getLogger('build-box')


def disk_geometry(size_gib: int) -> Tuple[int, int]:
    """
    :return: the raw disk's size in bytes and the number of file
        system blocks of its one partition, which starts at 1 MiB and
        runs to the end
    """
    size = size_gib * 1024 ** 3
    return size, (size - PARTITION_OFFSET) // BLOCK_SIZE


def master_boot_record(size: int) -> bytes:
    """
    The first sector of the disk: a DOS partition table with one Linux
    partition from 1 MiB to the end (written here, so that the build
    needs no partitioning tool)

    :raises BoxBuildError: if the disk is beyond a DOS partition table
    """
    first = PARTITION_OFFSET // SECTOR
    sectors = (size - PARTITION_OFFSET) // SECTOR
    if first + sectors > 0xFFFFFFFF:
        raise BoxBuildError('the disk is too large for a DOS partition table')
    # CHS fields hold the "beyond CHS" marker: LBA is what counts
    entry = struct.pack(
        '<B3sB3sII', 0x00, b'\xfe\xff\xff', 0x83, b'\xfe\xff\xff', first, sectors
    )
    return bytes(440) + b'KIWI' + bytes(2) + entry + bytes(48) + b'\x55\xaa'


def write_system_disk(rootfs: str, size_gib: int, work: str, path: str) -> None:
    """
    Make the qcow2 system disk of a root tree

    :param str rootfs: the root tree, the partition's content
    :param int size_gib: the disk's size (sparse: only content takes space)
    :param str work: where the raw disk is made, on the output's file system
    :param str path: the qcow2 file to write
    """
    size, blocks = disk_geometry(size_gib)
    raw = os.path.join(work, 'disk.raw')
    with open(raw, 'wb') as handle:
        handle.write(master_boot_record(size))
        handle.truncate(size)
    log.info('making the file system')
    run([
        'mkfs.ext4', '-q', '-F', '-b', str(BLOCK_SIZE), '-L', 'kiwi-box',
        '-E', f'offset={PARTITION_OFFSET}', '-d', rootfs, raw, str(blocks)
    ])
    run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, path])
    os.unlink(raw)
