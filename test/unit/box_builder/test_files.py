"""
box_builder.files: reading, writing and checksumming files
"""
import hashlib
import os
import stat

from box_builder.files import (
    file_sha256, first_file_holding, read_file, sha256_line, write_file,
)


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


class TestFirstFileHolding:
    def test_a_needle_across_the_border_of_two_chunks(self, tmp_path):
        (tmp_path / 'a').mkdir()
        (tmp_path / 'a' / 'clean').write_bytes(b'x' * 100)
        (tmp_path / 'a' / 'log').write_bytes(b'x' * (1024 * 1024 - 3) + b'SECRET')
        assert first_file_holding(str(tmp_path), [b'OTHER', b'SECRET']) == \
            str(tmp_path / 'a' / 'log')

    def test_links_are_not_followed(self, tmp_path):
        outside = tmp_path / 'outside'
        outside.write_text('SECRET')
        (tmp_path / 'tree').mkdir()
        (tmp_path / 'tree' / 'link').symlink_to(outside)
        assert first_file_holding(str(tmp_path / 'tree'), [b'SECRET']) is None
