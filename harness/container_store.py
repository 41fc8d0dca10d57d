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

# KIWI_PLUGINS_CONTAINER_STORE: a store of its own, e.g. for a second
# test run beside another one
STORE = os.environ.get('KIWI_PLUGINS_CONTAINER_STORE') or os.path.join(TEST_STORE, 'container')


def podman_environment() -> Dict[str, str]:
    """
    The environment that points podman at the tests' own storage, never
    at the default store, and at no configuration of the tests': podman
    runs as installed (no containers.conf of ours, none of the caller's
    either), so the suite proves that boxbuild finds what this host's
    podman needs by itself (runc, ulimits root can raise). Containers an
    earlier, killed test run left are removed.
    """
    storage = os.path.join(STORE, 'storage')
    temp = os.path.join(STORE, 'tmp')
    for path in (storage, temp):
        os.makedirs(path, exist_ok=True)
    storage_conf = write_storage_conf(
        os.path.join(STORE, 'storage.conf'), f'{storage}/graph', f'{storage}/run'
    )
    environment = dict(os.environ)
    environment.pop('CONTAINERS_CONF', None)
    # TMPDIR: podman copies images through it (its default is /var/tmp)
    environment.update(CONTAINERS_STORAGE_CONF=storage_conf, TMPDIR=temp)
    # containers of an earlier, killed test run would fail the checks
    # that nothing is left behind
    podman(environment, 'rm', '--all', '--force', '--time', '0')
    return environment


def container_box(
    environment: Dict[str, str], flavour: str = '', arch: str = ''
) -> ContainerEnvironment:
    """
    The Debian box with its container image imported into the tests'
    storage, in a catalog of the tests' own

    build-box reuses its output when the recipe is unchanged and
    imports the image only when the storage lacks this recipe's.

    :param dict environment: see podman_environment
    :param str flavour: the box flavour, '' for our agent's box,
        'conformance' for the published-manner one (catalog entry
        debian-conformance, in the same catalog)
    :param str arch: the box's architecture, '' for the default
        (x86_64); another goes into the same catalog entry
    """
    catalog = os.path.join(STORE, 'catalog.yml')
    options = (['--flavour', flavour] if flavour else []) + (['--arch', arch] if arch else [])
    subprocess.run(
        builder_argv(*options, '--catalog', catalog),
        check=True, stdin=subprocess.DEVNULL, env=environment
    )
    return ContainerEnvironment(environment, catalog)
