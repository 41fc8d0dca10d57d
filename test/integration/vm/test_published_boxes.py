"""
Our host side against a box whose in-box side behaves as the published
boxes do (the conformance flavour of the Debian box: no agent of ours,
the published protocol only): real boots under software emulation, real
mounts through 9p, virtiofs and sshfs, real kiwi in the box.

sshfs with such a box goes through the run's login into the box and
the reverse tunnel it holds to the run's own sshd on a unix socket;
nothing of it may outlive the run.
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from harness.boxbuild import CONSOLE_LOG, HANG_GUARD_SECONDS, run_boxbuild
from harness.descriptions import PROOF_FILE, write_quick_description
from harness.processes import processes_mentioning, wait_for_text
from harness.vm_boxbuild import CONFORMANCE_FLAVOUR, VmEnvironment, boxbuild_argv, vm_box
from kiwi_plugin_support.host import free_port

pytestmark = [pytest.mark.integration, pytest.mark.vm]

BOX = 'debian-conformance'
BACKEND_OPTIONS = {
    '9p': ['--9p-sharing'], 'virtiofs': ['--virtiofs-sharing'], 'sshfs': ['--sshfs-sharing']
}
# the file system type each backend's mounts have in the box
MOUNT_TYPES = {'9p': '9p', 'virtiofs': 'virtiofs', 'sshfs': 'fuse.sshfs'}
# a stop for a run that hangs, far above what a quick job takes
QUICK_LIMIT_MINUTES = '20'


def proof_profile(extra: str = '') -> str:
    """
    The box profile of the quick jobs: proof of the mounts in the
    bundle. No 'set -e': the published box's job script sources it, and
    would end at kiwi's failure without result.code and poweroff
    """
    return (
        f'{{ cat /description/description-proof.txt; findmnt -n -o FSTYPE /bundle; '
        f'findmnt -n -o FSTYPE /description; cat /proc/cmdline; }} > /bundle/{PROOF_FILE}\n'
        + extra
    )


def read(path):
    with open(path) as handle:
        return handle.read()


@pytest.fixture(scope='module')
def published_vm() -> VmEnvironment:
    """
    The conformance box in a catalog of its own (built, or reused while
    its recipe is unchanged)
    """
    if os.geteuid() != 0:
        pytest.skip('the VM tests run as root (they build the box)')
    return vm_box(CONFORMANCE_FLAVOUR)


@pytest.fixture
def run_environment(published_vm):
    """
    The boxbuild's environment: a temp dir of the test's own, so that
    what the run leaves there can be seen; short, for the socket paths
    of the run's dir in it
    """
    temp_dir = tempfile.mkdtemp(prefix='kiwi-published-', dir='/tmp')
    try:
        yield temp_dir, published_vm.environment(TMPDIR=temp_dir)
    finally:
        shutil.rmtree(temp_dir)


def assert_nothing_left(temp_dir: str, target: str) -> None:
    """
    No run dir (keys, sockets, logs), no helper process of the run
    """
    assert os.listdir(temp_dir) == []
    assert processes_mentioning(temp_dir) == []
    assert processes_mentioning(target) == []


def assert_ran_kiwi_on_the_shares(completed, target: str, backend: str) -> None:
    """
    The quick job's kiwi read the mounted description, rejected it, and
    the bundle share took its log, result and the box's proof
    """
    assert completed.returncode == 1, completed.stdout
    assert 'the build in the box failed with exit code' in completed.stdout
    assert read(os.path.join(target, 'result.code')).strip() not in ('', '0')
    assert 'no-such-element-kiwi-rejects' in read(os.path.join(target, 'result.log'))
    proof = read(os.path.join(target, PROOF_FILE)).splitlines()
    assert proof[0] == 'read from the description'
    assert proof[1:3] == [MOUNT_TYPES[backend]] * 2
    assert f'sharing_backend=_{backend}_' in proof[3]
    # the published protocol only: nothing our agent alone reads
    assert 'kiwi_ssh_port' not in proof[3] and 'kiwi_box_agent' not in proof[3]


@pytest.mark.parametrize('backend,network', [
    ('9p', 'isolated'), ('virtiofs', 'isolated'), ('sshfs', 'isolated'), ('sshfs', 'host')
])
def test_quick_job(published_vm, workdir, run_environment, backend, network):
    """
    A quick job through each backend, on the isolated box network and,
    for sshfs, whose login and tunnel go through the forwarded port, on
    qemu's own network too (KIWI_BOXED_NETWORK=host)
    """
    temp_dir, environment = run_environment
    environment = dict(environment, KIWI_BOXED_NETWORK=network)
    description = write_quick_description(os.path.join(workdir, 'desc'), proof_profile())
    target = os.path.join(workdir, 'target')
    os.makedirs(target)
    with open(os.path.join(target, 'keep.txt'), 'w') as keep:
        keep.write('mine\n')
    home_ssh_before = os.path.exists('/root/.ssh')

    completed = run_boxbuild(published_vm, boxbuild_argv(
        BACKEND_OPTIONS[backend] + [
            '--box-memory', '3G', '--box-smp-cpus', '1', '--box-timeout', QUICK_LIMIT_MINUTES
        ], description, target, box_name=BOX
    ), cwd=workdir, environment=environment)

    assert_ran_kiwi_on_the_shares(completed, target, backend)
    assert read(os.path.join(target, 'keep.txt')) == 'mine\n'
    assert_nothing_left(temp_dir, target)
    if backend == 'sshfs':
        assert 'logged into the box' in completed.stdout
        proof = read(os.path.join(target, PROOF_FILE)).splitlines()
        user = re.search(r'host_kiwibundle=_(\S+)@localhost:/kiwibundle_', proof[3])
        assert user and user.group(1) == 'root'
    # the user's ssh setup is never touched
    assert os.path.exists('/root/.ssh') == home_ssh_before


def test_upstream_command_line_with_login(published_vm, workdir, run_environment):
    """
    --sshfs-sharing --ssh-key NAME --ssh-port PORT as upstream takes
    it: the user logs into the box with ~/.ssh/NAME through 127.0.0.1
    PORT while it runs, and finds the shares mounted over sshfs
    """
    temp_dir, environment = run_environment
    home = os.path.join(workdir, 'home')
    os.makedirs(os.path.join(home, '.ssh'), mode=0o700)
    key = os.path.join(home, '.ssh', 'boxlogin')
    subprocess.run(
        ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key], check=True,
        stdin=subprocess.DEVNULL
    )
    environment = dict(environment, HOME=home)
    port = free_port()
    description = write_quick_description(
        os.path.join(workdir, 'desc'), proof_profile(
            'echo box-waits-for-login > /dev/console\n'
            'for second in $(seq 900); do [ -e /tmp/released ] && break; sleep 1; done\n'
        )
    )
    target = os.path.join(workdir, 'target')
    process = subprocess.Popen(
        boxbuild_argv(
            ['--sshfs-sharing', '--ssh-key', 'boxlogin', '--ssh-port', str(port),
             '--box-memory', '3G', '--box-timeout', QUICK_LIMIT_MINUTES],
            description, target, box_name=BOX
        ), cwd=workdir, env=environment, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for_text(
            os.path.join(target, CONSOLE_LOG), 'box-waits-for-login', process,
            HANG_GUARD_SECONDS
        )
        login = subprocess.run(
            [
                'ssh', '-F', '/dev/null', '-i', key, '-p', str(port),
                '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes',
                '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                'root@127.0.0.1',
                'findmnt -n -o FSTYPE /bundle; cat /description/description-proof.txt; '
                'touch /tmp/released'
            ], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=600
        )
        output = process.communicate(timeout=HANG_GUARD_SECONDS)[0].decode(errors='replace')
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    print(output)
    print(login.stdout)
    assert login.returncode == 0
    assert login.stdout.splitlines()[-2:] == ['fuse.sshfs', 'read from the description']
    assert f'ssh -p {port} -i {key} root@127.0.0.1' in output
    assert process.returncode == 1
    assert 'no-such-element-kiwi-rejects' in read(os.path.join(target, 'result.log'))
    assert_nothing_left(temp_dir, target)
    assert sorted(os.listdir(os.path.join(home, '.ssh'))) == ['boxlogin', 'boxlogin.pub']


@pytest.mark.e2e
@pytest.mark.parametrize('backend', ['9p', 'sshfs'])
def test_full_build(published_vm, workdir, run_environment, tiny_description, backend):
    """
    The tiny Debian description built in the published-manner box
    """
    temp_dir, environment = run_environment
    description = os.path.join(workdir, 'tiny desc')
    shutil.copytree(tiny_description, description)
    target = os.path.join(workdir, 'result dir')
    completed = run_boxbuild(published_vm, boxbuild_argv(
        BACKEND_OPTIONS[backend], description, target, box_name=BOX
    ), cwd=workdir, environment=environment)
    assert completed.returncode == 0, completed.stdout
    assert read(os.path.join(target, 'result.code')).strip() == '0'
    assert [name for name in os.listdir(target) if name.endswith('.tar.xz')]
    assert_nothing_left(temp_dir, target)
