"""
Fixtures of the stash/stackbuild integration tests: a private container
storage, a registry on 127.0.0.1, a cached Debian minbase root and a
probe tree holding every kind of file metadata a root tree can have.
"""
import os
import subprocess
from typing import Dict, Iterator

import pytest

from harness import minbase, stackbuild_kiwi
from harness.podman import private_storage
from harness.probe_tree import make_probe
from harness.registry import RegistryError, running_registry
from harness.stackbuild_kiwi import kiwi, write_description


@pytest.fixture(scope='session')
def registry(tmp_path_factory) -> Iterator[str]:
    """
    Debian's docker-registry on 127.0.0.1 at a free port, storing in a
    test directory; yields 'HOST:PORT'
    """
    try:
        with running_registry(tmp_path_factory.mktemp('registry')) as address:
            yield address
    except RegistryError as issue:
        pytest.fail(str(issue))


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
    # no search registries: a short name must never leave the machine
    (base / 'registries.conf').write_text(
        'unqualified-search-registries = []\n\n'
        '[[registry]]\n'
        f'location = "{registry}"\n'
        'insecure = true\n'
    )
    with private_storage(
        str(base), CONTAINERS_REGISTRIES_CONF=str(base / 'registries.conf')
    ) as variables:
        stackbuild_kiwi.TEMP_DIR = str(base / 'tmp')
        try:
            yield variables
        finally:
            stackbuild_kiwi.TEMP_DIR = None


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
