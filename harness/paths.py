"""
Where the harness finds things and keeps what it makes: the checkout,
its test data, the test store on this host, the kiwi-ng of this venv,
and scratch directories in the store.
"""
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

REPOSITORY = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
TEST_DATA = os.path.join(REPOSITORY, 'test', 'data')
# the tiny Debian description, with @MIRROR@ for the host's mirror
TINY_DEBIAN = os.path.join(TEST_DATA, 'tiny-debian')
# what the suites and benchmarks keep between runs: boxes, venvs, roots
TEST_STORE = '/var/cache/kiwi-plugins-test'
# the kiwi-ng of the venv that runs the tests or the benchmark
KIWI_NG = os.path.join(os.path.dirname(sys.executable), 'kiwi-ng')


@contextmanager
def scratch_dir(store: str) -> Iterator[str]:
    """
    A scratch directory below store/work, big enough for bundles and
    readable by every user; removed with what it holds at the end
    """
    os.makedirs(os.path.join(store, 'work'), exist_ok=True)
    path = tempfile.mkdtemp(dir=os.path.join(store, 'work'))
    # unprivileged runs read the descriptions in here
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
