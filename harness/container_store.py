"""
The podman storage and configuration of the container tests, and the
Debian box's container image in it: shared by the container suite and
by the suites that run a container box beside their own boxes.
"""
import os
import subprocess
from typing import Dict

from harness.container_boxbuild import ContainerEnvironment
from harness.debian_box import builder_argv
from harness.paths import TEST_STORE
from harness.podman import podman, write_storage_conf

STORE = os.path.join(TEST_STORE, 'container')


def podman_environment() -> Dict[str, str]:
    """
    The environment that points podman at the tests' own storage and
    configuration, never at the default store; containers an earlier,
    killed test run left are removed

    runc and the reduced ulimits are what running a container needs
    on these hosts (crun rejects their hybrid cgroups; root lacks
    CAP_SYS_RESOURCE to raise ulimits to podman's defaults).
    """
    storage = os.path.join(STORE, 'storage')
    temp = os.path.join(STORE, 'tmp')
    for path in (storage, temp):
        os.makedirs(path, exist_ok=True)
    storage_conf = write_storage_conf(
        os.path.join(STORE, 'storage.conf'), f'{storage}/graph', f'{storage}/run'
    )
    containers_conf = os.path.join(STORE, 'containers.conf')
    with open(containers_conf, 'w') as handle:
        handle.write(
            '[containers]\n'
            'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
            '[engine]\n'
            'runtime = "runc"\n'
            f'tmp_dir = "{storage}/libpod-tmp"\n'
            f'image_copy_tmp_dir = "{temp}"\n'
        )
    environment = dict(os.environ)
    environment.update(
        CONTAINERS_STORAGE_CONF=storage_conf, CONTAINERS_CONF=containers_conf, TMPDIR=temp
    )
    # containers of an earlier, killed test run would fail the checks
    # that nothing is left behind
    podman(environment, 'rm', '--all', '--force', '--time', '0')
    return environment


def container_box(environment: Dict[str, str]) -> ContainerEnvironment:
    """
    The Debian box with its container image imported into the tests'
    storage, in a catalog of the tests' own

    build-box reuses its output when the recipe is unchanged and
    imports the image only when the storage lacks this recipe's.

    :param dict environment: see podman_environment
    """
    catalog = os.path.join(STORE, 'catalog.yml')
    subprocess.run(
        builder_argv('--catalog', catalog),
        check=True, stdin=subprocess.DEVNULL, env=environment
    )
    return ContainerEnvironment(environment, catalog)
