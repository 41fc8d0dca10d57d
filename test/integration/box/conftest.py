"""
Fixtures of the box tests: the Debian box (built, or reused when its
recipe is unchanged), a private podman store and box catalog, and boots
of the box under qemu.
"""
import os
import shutil
import subprocess
import tarfile
from typing import Callable, Sequence

import pytest

from box_builder.apt_sources import host_mirror
from box_builder.recipe import load_recipe
from harness.box_qemu import BOOT_TIMEOUT, BootResult, BuiltBox, qemu_box
from harness.debian_box import BOX_OUTPUT, CONFORMANCE, CONFORMANCE_BOX_OUTPUT, run_builder
from harness.paths import TEST_STORE
from harness.podman import write_storage_conf

# everything the box tests write; the box itself is built where
# 'make box' puts it (BOX_OUTPUT), so that both reuse it
TEST_ROOT = os.path.join(TEST_STORE, 'box')


@pytest.fixture(scope='session')
def storage_conf() -> str:
    """
    A podman store of the tests' own, never the user's
    """
    root = os.path.join(TEST_ROOT, 'containers')
    os.makedirs(root, exist_ok=True)
    return write_storage_conf(
        os.path.join(root, 'storage.conf'), f'{root}/graphroot', f'{root}/runroot'
    )


@pytest.fixture(scope='session')
def box_environment(storage_conf) -> dict:
    catalog = os.path.join(TEST_ROOT, 'kiwi_boxed_plugin.yml')
    return dict(
        os.environ, KIWI_BOXED_PLUGIN_CFG=catalog, CONTAINERS_STORAGE_CONF=storage_conf,
        TMPDIR=os.path.join(TEST_ROOT, 'tmp')
    )


@pytest.fixture(scope='session')
def box(box_environment, storage_conf) -> BuiltBox:
    """
    The box, built now if its recipe changed since the last build
    """
    log = run_builder(box_environment)
    return BuiltBox(
        output=BOX_OUTPUT, catalog=box_environment['KIWI_BOXED_PLUGIN_CFG'],
        storage_conf=storage_conf, build_log=log
    )


def extract_boot_files(kernel_tarball: str, target: str) -> dict:
    """
    The kernel and initrd of a box's kernel tarball, extracted into
    target (made anew), by kind ('kernel', 'initrd')
    """
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    found = {}
    with tarfile.open(kernel_tarball) as tarball:
        for member in tarball.getmembers():
            kind = member.name.rsplit('.', 1)[-1]
            tarball.extract(member, target, filter='data')
            found[kind] = os.path.join(target, member.name)
    return found


def booter(box: BuiltBox, boot_files: dict, tmp_path) -> Callable[..., BootResult]:
    """
    Boot box with a job and shares; the call returns qemu's exit status
    and the console output once the box powered off
    """
    def boot(kernel_args: str, shares: Sequence[tuple]) -> BootResult:
        console = str(tmp_path / 'console.log')
        with qemu_box(box, boot_files, kernel_args, shares, console) as vm:
            try:
                returncode = vm.wait(timeout=BOOT_TIMEOUT)
            except subprocess.TimeoutExpired:
                returncode = -1
        with open(console, errors='replace') as handle:
            text = handle.read()
        with open(console + '.qemu', errors='replace') as handle:
            qemu_output = handle.read()
        assert returncode == 0, f'qemu: {returncode} {qemu_output}\nconsole:\n{text}'
        return BootResult(returncode, text)
    return boot


@pytest.fixture(scope='session')
def boot_files(box) -> dict:
    """
    The box's kernel and initrd, extracted once per session
    """
    return extract_boot_files(box.kernel_tarball, os.path.join(TEST_ROOT, 'boot'))


@pytest.fixture(scope='session')
def mirror() -> str:
    """
    The host's Debian mirror, found as the builder finds it
    """
    return host_mirror(load_recipe())


@pytest.fixture
def boot_box(box, boot_files, tmp_path):
    """
    Boot the box with a job and shares, see booter
    """
    return booter(box, boot_files, tmp_path)


# the conformance flavour of the box (boxes/debian/flavours/conformance):
# its own catalog, podman store and boot files, so that its tests and
# the agent box's never share state
CONFORMANCE_ROOT = os.path.join(TEST_STORE, 'box-conformance')


@pytest.fixture(scope='session')
def conformance_environment() -> dict:
    root = os.path.join(CONFORMANCE_ROOT, 'containers')
    os.makedirs(root, exist_ok=True)
    storage = write_storage_conf(
        os.path.join(root, 'storage.conf'), f'{root}/graphroot', f'{root}/runroot'
    )
    return dict(
        os.environ, KIWI_BOXED_PLUGIN_CFG=os.path.join(CONFORMANCE_ROOT, 'kiwi_boxed_plugin.yml'),
        CONTAINERS_STORAGE_CONF=storage, TMPDIR=os.path.join(CONFORMANCE_ROOT, 'tmp')
    )


@pytest.fixture(scope='session')
def conformance_box(conformance_environment) -> BuiltBox:
    """
    The conformance box, built now if its recipe changed since the last
    build, its container image in the tests' podman store
    """
    log = run_builder(conformance_environment, flavour=CONFORMANCE)
    recipe = load_recipe(flavour=CONFORMANCE)
    return BuiltBox(
        output=CONFORMANCE_BOX_OUTPUT, catalog=conformance_environment['KIWI_BOXED_PLUGIN_CFG'],
        storage_conf=conformance_environment['CONTAINERS_STORAGE_CONF'], build_log=log,
        file_prefix=f'{recipe.name}.{recipe.arch}',
        cmdline=tuple(recipe.data['catalog']['cmdline'])
    )


@pytest.fixture(scope='session')
def conformance_boot_files(conformance_box) -> dict:
    """
    The conformance box's kernel and initrd, extracted once per session
    """
    return extract_boot_files(
        conformance_box.kernel_tarball, os.path.join(CONFORMANCE_ROOT, 'boot')
    )


@pytest.fixture
def boot_conformance_box(conformance_box, conformance_boot_files, tmp_path):
    """
    Boot the conformance box with a job and 9p shares, see booter
    """
    return booter(conformance_box, conformance_boot_files, tmp_path)
