"""
Fixtures of the workflow tests: a registry on 127.0.0.1, a private
container storage that knows it, the host's Debian mirror, and one
native build of the bootable Debian description that the tests share.
"""
from typing import Dict, Iterator

import pytest

from harness import minbase, stackbuild_kiwi
from harness.podman import private_storage
from harness.registry import RegistryError, running_registry
from harness.workflows import BOOTABLE_DEBIAN, native_build, render


@pytest.fixture(scope='session')
def registry(tmp_path_factory) -> Iterator[str]:
    """
    Debian's docker-registry on 127.0.0.1 at a free port, storing in a
    test directory; yields 'HOST:PORT'
    """
    try:
        with running_registry(tmp_path_factory.mktemp('wp4-workflows-registry')) as address:
            yield address
    except RegistryError as issue:
        pytest.fail(str(issue))


@pytest.fixture(scope='session')
def containers(tmp_path_factory, registry) -> Iterator[Dict[str, str]]:
    """
    A private container storage, and a registries.conf that lets podman
    reach the test registry over plain http and searches no registry
    for short names; set for this process and every tool it starts
    """
    base = tmp_path_factory.mktemp('wp4-workflows-containers')
    (base / 'tmp').mkdir()
    (base / 'registries.conf').write_text(
        'unqualified-search-registries = []\n\n'
        '[[registry]]\n'
        f'location = "{registry}"\n'
        'insecure = true\n'
    )
    with private_storage(
        str(base), CONTAINERS_REGISTRIES_CONF=str(base / 'registries.conf')
    ) as variables:
        # the stackbuild suite's storage may be set up in the same session
        saved = stackbuild_kiwi.TEMP_DIR
        stackbuild_kiwi.TEMP_DIR = str(base / 'tmp')
        try:
            yield variables
        finally:
            stackbuild_kiwi.TEMP_DIR = saved


@pytest.fixture(scope='session')
def mirror() -> str:
    """
    The host's Debian mirror, read from /etc/apt/sources.list*
    """
    return minbase.debian_mirror()


@pytest.fixture(scope='session')
def native_bootable(tmp_path_factory, containers, mirror) -> str:
    """
    The bootable Debian description built natively, once: its target
    directory, with build/image-root, the disk and the .packages file;
    tests must not change it
    """
    base = tmp_path_factory.mktemp('wp4-workflows-native')
    description = render(BOOTABLE_DEBIAN, str(base / 'description'), mirror)
    target = str(base / 'target')
    native_build(description, target)
    return target
