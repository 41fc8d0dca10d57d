"""
Fixtures of the container integration tests: podman with a storage and
configuration of the tests' own, the Debian box's container image in
it, a catalog naming it, scratch space.
"""
import os
from typing import Dict

import pytest

from box_builder.apt_sources import host_mirror
from box_builder.recipe import load_recipe
from harness import container_store
from harness.container_boxbuild import ContainerEnvironment

STORE = container_store.STORE


@pytest.fixture(scope='session')
def suite_store() -> str:
    """
    Where the container tests keep their podman storage, catalog and
    scratch dirs
    """
    return STORE


@pytest.fixture(scope='session')
def podman_environment() -> Dict[str, str]:
    """
    podman with the tests' own storage and configuration, see
    harness.container_store
    """
    if os.geteuid() != 0:
        pytest.skip('the container tests run as root (privileged podman containers)')
    return container_store.podman_environment()


@pytest.fixture(scope='session')
def box(podman_environment) -> ContainerEnvironment:
    """
    The Debian box's container image in the tests' storage, in a
    catalog of the tests' own
    """
    return container_store.container_box(podman_environment)


@pytest.fixture(scope='session')
def mirror() -> str:
    """
    The host's Debian mirror, as the box builder finds it
    """
    return host_mirror(load_recipe())


@pytest.fixture(scope='session')
def conformance_box(podman_environment) -> ContainerEnvironment:
    """
    The published-manner Debian box (catalog entry debian-conformance:
    systemd as entry point, /container.cmdline, no agent of ours) in
    the tests' storage and catalog
    """
    return container_store.container_box(podman_environment, 'conformance')
