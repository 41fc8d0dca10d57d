"""
The aarch64 Debian box: built from the host's mirror through qemu-user,
its catalog entry merged beside the x86_64 one, booted under
qemu-system-aarch64 (software emulation, chosen without a probe) for a
quick real job through each sharing backend, and run as a container
through qemu-user when the host offers it, refused when not.
"""
import os
import subprocess

import pytest

from box_builder.emulation import user_emulation
from harness import container_store
from harness.binfmt import without_emulation
from harness.boxbuild import boxbuild_argv, run_boxbuild
from harness.debian_box import BOX_OUTPUT
from harness.descriptions import PROOF_FILE, proof_script, write_quick_description
from harness.vm_boxbuild import vm_box
from kiwi_boxed_plugin.binfmt import BINFMT_DIR, read_handlers
from kiwi_boxed_plugin.catalog import load_catalog_file

pytestmark = [pytest.mark.integration, pytest.mark.vm]

BACKEND_OPTIONS = {
    '9p': [], 'virtiofs': ['--virtiofs-sharing'], 'sshfs': ['--sshfs-sharing']
}
# what the box tells of itself in the bundle
ARCH_FILE = 'machine-in-box.txt'
BOX_SCRIPT = proof_script(f'uname -m > /bundle/{ARCH_FILE}\n')


def read(path):
    with open(path) as handle:
        return handle.read()


def binfmt_state():
    """
    What the host's binfmt_misc holds: mounted or not, and its handlers
    """
    return (
        os.path.exists(os.path.join(BINFMT_DIR, 'register')),
        sorted((handler.name, handler.enabled) for handler in read_handlers()),
    )


@pytest.fixture(scope='module')
def aarch64_vm():
    """
    Both boxes in the VM tests' catalog, the aarch64 one built now if
    its recipe changed
    """
    if os.geteuid() != 0:
        pytest.skip('the VM tests run as root (they build the box)')
    vm_box()
    before = binfmt_state()
    environment = vm_box(arch='aarch64')
    # the builder set up qemu-user for itself and took it down again
    assert binfmt_state() == before
    return environment


def test_builder_emulation_runs_aarch64_programs_and_leaves_nothing(aarch64_vm, tmp_path):
    """
    What the builder sets up for a box of another architecture, on its
    own: arm64 programs of the box's package cache (libc6, coreutils)
    run in a chroot only inside the block; binfmt_misc is as before
    after it, also when the host had a handler of its own (disabled
    for the test)
    """
    debs = f'{BOX_OUTPUT}-aarch64.debs'
    root = tmp_path / 'root'
    for package in ('libc6', 'coreutils'):
        deb = [name for name in os.listdir(debs) if name.startswith(f'{package}_')]
        subprocess.run(['dpkg-deb', '-x', os.path.join(debs, deb[0]), str(root)], check=True)
    chroot_true = ['chroot', str(root), '/bin/true']
    with without_emulation('aarch64'):
        before = binfmt_state()
        # exec format error: nothing runs aarch64 programs
        assert subprocess.run(chroot_true, stderr=subprocess.PIPE).returncode != 0
        with user_emulation('aarch64'):
            subprocess.run(chroot_true, check=True)
        assert binfmt_state() == before
        assert subprocess.run(chroot_true, stderr=subprocess.PIPE).returncode != 0


def assert_quick_job_in_aarch64_box(completed, target):
    assert completed.returncode == 1, completed.stdout
    assert 'the build in the box failed with exit code' in completed.stdout
    assert read(os.path.join(target, ARCH_FILE)).strip() == 'aarch64'
    assert read(os.path.join(target, PROOF_FILE)).startswith('read from the description\n')
    # kiwi ran in the box and rejected the description
    assert 'no-such-element-kiwi-rejects' in read(os.path.join(target, 'result.log'))


def test_catalog_has_both_architectures(aarch64_vm):
    debian = {box.name: box for box in load_catalog_file(aarch64_vm.catalog)}['debian']
    x86_64, aarch64 = debian.arch('x86_64'), debian.arch('aarch64')
    assert x86_64.system_disk == 'Debian-Box.x86_64-System.qcow2'
    assert aarch64.system_disk == 'Debian-Box.aarch64-System.qcow2'
    assert aarch64.source.endswith('/debian-box-aarch64')
    assert x86_64.source.endswith('/debian-box')
    assert aarch64.container == 'localhost/kiwi-boxes/debian:aarch64'


@pytest.mark.parametrize('backend', ['9p', 'virtiofs', 'sshfs'])
def test_quick_job(aarch64_vm, workdir, backend):
    """
    boxbuild --aarch64 with KVM allowed: the accelerator is chosen
    without a probe, the box's kernel says aarch64, the shares work,
    kiwi runs in the box
    """
    description = write_quick_description(os.path.join(workdir, 'desc'), BOX_SCRIPT)
    target = os.path.join(workdir, 'target')
    completed = run_boxbuild(aarch64_vm, boxbuild_argv(
        [], ['--aarch64'] + BACKEND_OPTIONS[backend], description, target
    ), cwd=workdir)
    assert 'software emulation (TCG): the box is aarch64, the host x86_64' in completed.stdout
    assert_quick_job_in_aarch64_box(completed, target)
    assert f'sharing_backend=_{backend}_' in read(os.path.join(target, PROOF_FILE))


@pytest.fixture(scope='module')
def aarch64_container(aarch64_vm):
    """
    The aarch64 box's container image in the container tests' storage
    and catalog
    """
    environment = container_store.podman_environment()
    return container_store.container_box(environment, arch='aarch64')


def test_container_without_emulation_is_refused(aarch64_container, workdir):
    description = write_quick_description(os.path.join(workdir, 'desc'), BOX_SCRIPT)
    target = os.path.join(workdir, 'target')
    with without_emulation('aarch64'):
        completed = run_boxbuild(aarch64_container, boxbuild_argv(
            ['--container'], ['--aarch64'], description, target
        ), cwd=workdir)
    assert completed.returncode == 1
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1, completed.stdout
    assert 'the box is aarch64, the host x86_64: its container runs through qemu-user' in lines[0]
    assert 'install qemu-user-static' in lines[0]
    assert not os.path.exists(target)


def test_container_through_qemu_user(aarch64_container, workdir):
    description = write_quick_description(os.path.join(workdir, 'desc'), BOX_SCRIPT)
    target = os.path.join(workdir, 'target')
    before = binfmt_state()
    with user_emulation('aarch64'):
        completed = run_boxbuild(aarch64_container, boxbuild_argv(
            ['--container'], ['--aarch64'], description, target
        ), cwd=workdir)
    assert binfmt_state() == before
    assert 'runs through qemu-user (binfmt_misc)' in completed.stdout
    assert_quick_job_in_aarch64_box(completed, target)


@pytest.mark.e2e
def test_full_aarch64_build(aarch64_vm, workdir, tiny_description):
    """
    The tiny Debian description built in the aarch64 box, end to end:
    the tarball's programs are aarch64 ones
    """
    target = os.path.join(workdir, 'result')
    completed = run_boxbuild(aarch64_vm, boxbuild_argv(
        [], ['--aarch64'], tiny_description, target, global_options=['--type', 'tbz']
    ), cwd=workdir)
    assert completed.returncode == 0, completed.stdout
    assert read(os.path.join(target, 'result.code')).strip() == '0'
    tarball = os.path.join(target, 'tiny-debian.aarch64-1.0.0-0.tar.xz')
    assert os.path.isfile(tarball), os.listdir(target)
    unpacked = os.path.join(workdir, 'unpacked')
    os.makedirs(unpacked)
    # kiwi names the members with or without a leading ./
    subprocess.run(
        ['tar', '-C', unpacked, '--wildcards', '-xJf', tarball,
         '*usr/bin/dpkg', '*usr/bin/apt'],
        check=True
    )
    for program in ('dpkg', 'apt'):
        described = subprocess.run(
            ['file', '-b', os.path.join(unpacked, 'usr', 'bin', program)],
            check=True, stdout=subprocess.PIPE
        ).stdout.decode()
        assert 'ARM aarch64' in described, described
