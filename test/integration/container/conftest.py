"""
Fixtures of the container integration tests: podman with a storage and
configuration of the tests' own, the Debian box's container image in
it, a catalog naming it, scratch space.
"""
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
from typing import Dict

import pytest

from container_helpers import BOX_BUILDER, STORE, ContainerEnvironment, podman


def write_file(path: str, content: str) -> None:
    with open(path, 'w') as handle:
        handle.write(content)


@pytest.fixture(scope='session')
def podman_environment() -> Dict[str, str]:
    """
    The environment that points podman at the tests' own storage and
    configuration, never at the default store

    runc and the reduced ulimits are what running a container needs
    on these hosts (crun rejects their hybrid cgroups; root lacks
    CAP_SYS_RESOURCE to raise ulimits to podman's defaults).
    """
    if os.geteuid() != 0:
        pytest.skip('the container tests run as root (privileged podman containers)')
    storage = os.path.join(STORE, 'storage')
    temp = os.path.join(STORE, 'tmp')
    for path in (storage, temp):
        os.makedirs(path, exist_ok=True)
    storage_conf = os.path.join(STORE, 'storage.conf')
    write_file(storage_conf, (
        '[storage]\n'
        'driver = "overlay"\n'
        f'graphroot = "{storage}/graph"\n'
        f'runroot = "{storage}/run"\n'
    ))
    containers_conf = os.path.join(STORE, 'containers.conf')
    write_file(containers_conf, (
        '[containers]\n'
        'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
        '[engine]\n'
        'runtime = "runc"\n'
        f'tmp_dir = "{storage}/libpod-tmp"\n'
        f'image_copy_tmp_dir = "{temp}"\n'
    ))
    environment = dict(os.environ)
    environment.update(
        CONTAINERS_STORAGE_CONF=storage_conf, CONTAINERS_CONF=containers_conf, TMPDIR=temp
    )
    # containers of an earlier, killed test run would fail the checks
    # that nothing is left behind
    podman(environment, 'rm', '--all', '--force', '--time', '0')
    return environment


@pytest.fixture(scope='session')
def box(podman_environment) -> ContainerEnvironment:
    """
    The Debian box with its container image imported into the tests'
    storage, in a catalog of the tests' own

    build-box reuses its output when the recipe is unchanged and
    imports the image only when the storage lacks this recipe's.
    """
    catalog = os.path.join(STORE, 'catalog.yml')
    subprocess.run(
        [sys.executable, BOX_BUILDER, '--catalog', catalog],
        check=True, stdin=subprocess.DEVNULL, env=podman_environment
    )
    return ContainerEnvironment(podman_environment, catalog)


@pytest.fixture(scope='session')
def mirror() -> str:
    """
    The host's Debian mirror, as the box builder finds it
    """
    builder = runpy.run_path(BOX_BUILDER, run_name='build_box')
    return builder['host_mirror'](builder['load_recipe']())


@pytest.fixture
def workdir() -> str:
    """
    Scratch space under the test store, big enough for bundles
    """
    os.makedirs(os.path.join(STORE, 'work'), exist_ok=True)
    path = tempfile.mkdtemp(dir=os.path.join(STORE, 'work'))
    # the unprivileged run of test_not_root reads the description here
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
