"""
box_builder.files: reading, writing and checksumming files
"""
import hashlib
import os
import stat

from box_builder.files import file_sha256, read_file, sha256_line, write_file


def test_write_file_makes_the_directory_and_sets_the_mode(tmp_path):
    path = tmp_path / 'usr' / 'sbin' / 'policy-rc.d'
    write_file(str(path), '#!/bin/sh\n', 0o755)
    assert read_file(str(path)) == b'#!/bin/sh\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755


def test_sha256_of_a_file_larger_than_a_chunk(tmp_path):
    content = os.urandom(3 * 1024 * 1024 + 7)
    (tmp_path / 'disk').write_bytes(content)
    assert file_sha256(str(tmp_path / 'disk')) == hashlib.sha256(content).hexdigest()


def test_sha256_line_as_sha256sum_writes_it():
    assert sha256_line('ab12', 'box.qcow2') == 'ab12  box.qcow2\n'
