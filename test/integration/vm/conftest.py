"""
Fixtures of the VM integration tests: the Debian box (built, or reused
when its recipe is unchanged), a test catalog and cache of our own, an
unprivileged user, scratch space.
"""
import importlib.machinery
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import time

import pytest

from vm_helpers import BOX_BUILDER, REPOSITORY, STORE, TEST_USER, VmEnvironment

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from unprivileged import kiwi_ng_for  # noqa: E402

TINY_DEBIAN = os.path.join(REPOSITORY, 'test', 'data', 'tiny-debian')


@pytest.fixture(scope='session')
def vm() -> VmEnvironment:
    """
    The Debian box in a catalog of the tests' own

    build-box reuses its output when the recipe is unchanged, so this
    costs seconds after the first run on a machine.
    """
    if os.geteuid() != 0:
        pytest.skip('the VM tests run as root (they build the box and add a user)')
    os.makedirs(STORE, exist_ok=True)
    catalog = os.path.join(STORE, 'catalog.yml')
    subprocess.run(
        [sys.executable, BOX_BUILDER, '--no-container', '--catalog', catalog],
        check=True, stdin=subprocess.DEVNULL
    )
    return VmEnvironment(catalog=catalog, cache=os.path.join(STORE, 'cache'))


@pytest.fixture
def unprivileged_user():
    """
    A user created for the test, with a home and nothing else
    """
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(
            ['useradd', '--create-home', '--shell', '/bin/sh', TEST_USER], check=True
        )
    yield pwd.getpwnam(TEST_USER)
    subprocess.run(['userdel', '--remove', TEST_USER], check=False)


@pytest.fixture
def user_kiwi_ng(unprivileged_user) -> str:
    """
    A kiwi-ng with this project that the unprivileged user can run
    """
    return kiwi_ng_for(unprivileged_user.pw_name)


@pytest.fixture
def workdir(tmp_path_factory):
    """
    A scratch dir under the test store, big enough for bundles
    """
    os.makedirs(os.path.join(STORE, 'work'), exist_ok=True)
    path = os.path.join(STORE, 'work', f'{os.getpid()}-{time.monotonic_ns()}')
    os.makedirs(path)
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='session')
def tiny_description(vm) -> str:
    """
    The tiny Debian description of test/data with the host's Debian
    mirror in place of @MIRROR@, found the way the box builder finds it
    """
    loader = importlib.machinery.SourceFileLoader('build_box', BOX_BUILDER)
    spec = importlib.util.spec_from_loader('build_box', loader)
    assert spec is not None
    builder = importlib.util.module_from_spec(spec)
    loader.exec_module(builder)
    mirror = builder.host_mirror(builder.load_recipe())
    path = os.path.join(STORE, 'tiny-debian')
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(TINY_DEBIAN, path)
    config = os.path.join(path, 'config.xml')
    with open(config) as handle:
        text = handle.read()
    with open(config, 'w') as handle:
        handle.write(text.replace('@MIRROR@', mirror))
    return path
