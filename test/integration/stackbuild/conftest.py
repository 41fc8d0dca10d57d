"""
Fixtures of the stash/stackbuild integration tests: a private container
storage, a registry on 127.0.0.1, a cached Debian minbase root and a
probe tree holding every kind of file metadata a root tree can have.
"""
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from typing import Dict, Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))
# the helpers shared by the integration suites
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import minbase  # noqa: E402
import stack_helpers  # noqa: E402
from stack_helpers import kiwi, make_probe, write_description  # noqa: E402


def unmount_below(directory: str) -> None:
    """
    Unmount what podman left mounted below directory, deepest first
    """
    with open('/proc/self/mountinfo') as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    for point in sorted(points, key=len, reverse=True):
        if point.startswith(directory + '/'):
            subprocess.run(['umount', '-l', point], check=False)


@pytest.fixture(scope='session')
def registry(tmp_path_factory) -> Iterator[str]:
    """
    Debian's docker-registry on 127.0.0.1 at a free port, storing in a
    test directory; yields 'HOST:PORT'
    """
    if not shutil.which('docker-registry'):
        pytest.fail('docker-registry is not installed: apt-get install docker-registry')
    base = tmp_path_factory.mktemp('registry')
    port = stack_helpers.free_port()
    config = base / 'config.yml'
    config.write_text(
        'version: 0.1\n'
        'log:\n  level: error\n'
        f'storage:\n  filesystem:\n    rootdirectory: {base / "data"}\n'
        f'http:\n  addr: 127.0.0.1:{port}\n'
    )
    server = subprocess.Popen(
        ['docker-registry', 'serve', str(config)],
        stdout=subprocess.DEVNULL, stderr=open(base / 'registry.log', 'w')
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f'http://127.0.0.1:{port}/v2/', timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f'registry did not start: {(base / "registry.log").read_text()}')
                time.sleep(0.2)
        yield f'127.0.0.1:{port}'
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope='session')
def containers(tmp_path_factory, registry) -> Iterator[Dict[str, str]]:
    """
    A private container storage and registries.conf, set in the
    environment of this process and of every tool it starts; kiwi-ng
    runs of the tests get a --temp-dir of their own

    :return: the environment variables set
    """
    base = tmp_path_factory.mktemp('containers')
    (base / 'tmp').mkdir()
    (base / 'storage.conf').write_text(
        '[storage]\n'
        'driver = "overlay"\n'
        f'graphroot = "{base / "graph"}"\n'
        f'runroot = "{base / "run"}"\n'
    )
    # no search registries: a short name must never leave the machine
    (base / 'registries.conf').write_text(
        'unqualified-search-registries = []\n\n'
        '[[registry]]\n'
        f'location = "{registry}"\n'
        'insecure = true\n'
    )
    variables = {
        'CONTAINERS_STORAGE_CONF': str(base / 'storage.conf'),
        'CONTAINERS_REGISTRIES_CONF': str(base / 'registries.conf'),
    }
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    stack_helpers.TEMP_DIR = str(base / 'tmp')
    try:
        yield variables
    finally:
        stack_helpers.TEMP_DIR = None
        subprocess.run(['podman', 'image', 'unmount', '--all'], capture_output=True)
        subprocess.run(['podman', 'rmi', '--all', '--force'], capture_output=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        unmount_below(str(base))
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope='session')
def minbase_root() -> str:
    return minbase.minbase_root()


@pytest.fixture(scope='session')
def mirror() -> str:
    return minbase.debian_mirror()


@pytest.fixture
def debian_root(tmp_path, minbase_root, mirror) -> str:
    """
    A kiwi root tree: the minbase root with its description inside
    """
    root = str(tmp_path / 'debian root')
    subprocess.run(['cp', '-a', minbase_root, root], check=True)
    write_description(os.path.join(root, 'image', 'config.xml'), mirror)
    return root


@pytest.fixture(scope='session')
def debian_stash(tmp_path_factory, containers, minbase_root, mirror) -> str:
    """
    A Debian root with the probe tree, stashed once under the default
    name 'stackbuild-probe'; tests must not change the returned root
    """
    root = str(tmp_path_factory.mktemp('debian-stash') / 'root tree')
    subprocess.run(['cp', '-a', minbase_root, root], check=True)
    write_description(os.path.join(root, 'image', 'config.xml'), mirror)
    make_probe(os.path.join(root, 'probe'))
    os.chmod(root, 0o750)
    kiwi('system', 'stash', '--root', root)
    return root


@pytest.fixture(scope='session')
def split_usr_stash(tmp_path_factory, containers, mirror) -> str:
    """
    A Debian root whose /bin, /lib and /sbin are directories, stashed
    as 'stackbuild-split'

    kiwi 10's apt bootstrap unpacks the essential packages with a plain
    'tar -x' into the existing root; on a merged-/usr root that turns
    /lib into a directory and the build fails. A split-/usr root is
    what kiwi can build a Debian description on top of: usrmerge then
    converts it.
    """
    root = str(tmp_path_factory.mktemp('split-stash') / 'root')
    subprocess.run(['cp', '-a', minbase.minbase_root(merged_usr=False), root], check=True)
    write_description(os.path.join(root, 'image', 'config.xml'), mirror, name='stackbuild-split')
    kiwi('system', 'stash', '--root', root)
    return root


@pytest.fixture
def small_root(tmp_path, mirror) -> str:
    """
    A kiwi root tree of a few files, for tests that need no Debian
    """
    root = str(tmp_path / 'small root')
    write_description(os.path.join(root, 'image', 'config.xml'), mirror, name='small')
    for name in ('one', 'two'):
        with open(os.path.join(root, name), 'w') as handle:
            handle.write(f'{name}\n')
    return root
