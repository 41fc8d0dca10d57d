import fcntl
import os

from kiwi_plugin_support.locks import lock_if_free


def test_lock_if_free(tmp_path):
    path = str(tmp_path / 'journal')
    assert lock_if_free(path) is None
    open(path, 'w').close()
    holder = os.open(path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    assert lock_if_free(path) is None
    os.close(holder)
    handle = lock_if_free(path)
    assert handle is not None
    assert lock_if_free(path) is None
    os.close(handle)


def test_lock_if_free_of_a_directory(tmp_path):
    handle = lock_if_free(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    assert handle is not None
    os.close(handle)
    assert lock_if_free(str(tmp_path / 'missing'), os.O_RDONLY | os.O_DIRECTORY) is None
