import os
import signal

import pytest

from kiwi_boxed_plugin.exceptions import KiwiBoxTargetDirError
from kiwi_boxed_plugin.target_files import create_file, read_file_end, remove_entry


@pytest.fixture(autouse=True)
def no_hang():
    """
    A FIFO a build left blocks whoever opens it: fail instead of hanging
    """
    def hung(signum, frame):
        raise TimeoutError('blocked on a file of the target dir')
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def sentinel(tmp_path):
    sentinel = tmp_path / 'sentinel'
    sentinel.write_text('precious\n')
    return sentinel


def plant(kind, path, sentinel):
    """
    What a build can leave in the target dir under path
    """
    if kind == 'link':
        path.symlink_to(sentinel)
    elif kind == 'dangling link':
        path.symlink_to(sentinel.parent / 'not-yet')
    elif kind == 'hard link':
        os.link(sentinel, path)
    elif kind == 'fifo':
        os.mkfifo(path)
    elif kind == 'dir':
        (path / 'sub').mkdir(parents=True)
        (path / 'sub' / 'out').symlink_to(sentinel.parent)


KINDS = ['link', 'dangling link', 'hard link', 'fifo', 'dir']


class TestRemoveEntry:
    @pytest.mark.parametrize('kind', KINDS)
    def test_removed_never_followed(self, tmp_path, sentinel, kind):
        path = tmp_path / 'name'
        plant(kind, path, sentinel)
        remove_entry(str(path))
        assert not os.path.lexists(path)
        assert sentinel.read_text() == 'precious\n'
        assert not os.path.lexists(tmp_path / 'not-yet')

    def test_missing_is_fine(self, tmp_path):
        remove_entry(str(tmp_path / 'none'))

    def test_unremovable_is_one_line(self, tmp_path):
        with pytest.raises(KiwiBoxTargetDirError, match='cannot remove .*: remove it yourself'):
            remove_entry('/proc/self/status')


class TestCreateFile:
    @pytest.mark.parametrize('kind', KINDS)
    def test_a_file_of_its_own(self, tmp_path, sentinel, kind):
        path = tmp_path / 'boxbuild.console.log'
        plant(kind, path, sentinel)
        with create_file(str(path)) as handle:
            handle.write(b'console\n')
        assert path.read_bytes() == b'console\n' and not path.is_symlink()
        assert os.stat(path).st_nlink == 1
        assert sentinel.read_text() == 'precious\n'
        assert not os.path.lexists(tmp_path / 'not-yet')

    def test_replaces_an_old_log(self, tmp_path):
        path = tmp_path / 'log'
        path.write_text('old run')
        with create_file(str(path)) as handle:
            handle.write(b'new')
        assert path.read_text() == 'new'


class TestReadFileEnd:
    def test_regular_file(self, tmp_path):
        path = tmp_path / 'result.code'
        path.write_text('0\n')
        assert read_file_end(str(path), 100) == b'0\n'

    def test_only_the_end_of_a_big_file(self, tmp_path):
        path = tmp_path / 'result.log'
        path.write_bytes(b'x' * 1000 + b'last\n')
        assert read_file_end(str(path), 5) == b'last\n'

    def test_missing(self, tmp_path):
        assert read_file_end(str(tmp_path / 'none'), 100) is None

    @pytest.mark.parametrize('kind', ['link', 'dangling link', 'fifo', 'dir'])
    def test_no_regular_file_is_refused(self, tmp_path, sentinel, kind):
        path = tmp_path / 'result.code'
        plant(kind, path, sentinel)
        with pytest.raises(KiwiBoxTargetDirError, match='is a link or a special file'):
            read_file_end(str(path), 100)
