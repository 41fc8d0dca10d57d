"""
Fixtures of the VM integration tests: the Debian box (built, or reused
when its recipe is unchanged), a test catalog and cache of our own, an
unprivileged user, scratch space.
"""
import os
import shutil

import pytest

from box_builder.apt_sources import host_mirror
from box_builder.recipe import load_recipe
from harness.descriptions import description_copy
from harness.unprivileged import kiwi_ng_for, throwaway_user
from harness.vm_boxbuild import STORE, VmEnvironment, vm_box

# An unprivileged account made by the tests, removed afterwards
TEST_USER = 'kiwiboxvm'


@pytest.fixture(scope='session')
def vm() -> VmEnvironment:
    """
    The Debian box in a catalog of the tests' own

    build-box reuses its output when the recipe is unchanged, so this
    costs seconds after the first run on a machine.
    """
    if os.geteuid() != 0:
        pytest.skip('the VM tests run as root (they build the box and add a user)')
    return vm_box()


@pytest.fixture(scope='session')
def suite_store() -> str:
    """
    Where the VM tests keep their box catalog, cache and scratch dirs
    """
    return STORE


@pytest.fixture
def unprivileged_user():
    """
    A user created for the test, with a home and nothing else
    """
    with throwaway_user(TEST_USER) as account:
        yield account


@pytest.fixture
def user_kiwi_ng(unprivileged_user) -> str:
    """
    A kiwi-ng with this project that the unprivileged user can run
    """
    return kiwi_ng_for(unprivileged_user.pw_name)


@pytest.fixture(scope='session')
def tiny_description(vm) -> str:
    """
    The tiny Debian description of test/data with the host's Debian
    mirror in place of @MIRROR@, found the way the box builder finds it
    """
    mirror = host_mirror(load_recipe())
    path = os.path.join(STORE, 'tiny-debian')
    shutil.rmtree(path, ignore_errors=True)
    return description_copy(path, mirror)
