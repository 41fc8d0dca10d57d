"""
Real boxbuilds: the Debian box under software emulation, real shares,
real kiwi in the box.

Most tests run a quick real job: a description whose boxprofile leaves
proof in the shared directories and whose config.xml kiwi rejects at
once. One test runs a whole image build (minutes under TCG).
"""
import os
import re
import shutil
import subprocess
import threading

import pytest

from harness.boxbuild import HANG_GUARD_SECONDS, run_boxbuild
from harness.descriptions import PROOF_FILE, proof_script, write_quick_description
from harness.paths import REPOSITORY
from harness.processes import (
    alive,
    descendants,
    interrupt,
    processes,
    processes_mentioning,
    wait_for_text,
)
from harness.vm_boxbuild import boxbuild_argv
from kiwi_boxed_plugin.package_cache import cached_entries

pytestmark = [pytest.mark.integration, pytest.mark.vm]

BACKEND_OPTIONS = {
    '9p': [], 'virtiofs': ['--virtiofs-sharing'], 'sshfs': ['--sshfs-sharing']
}
ODD_NAME = "a b 'q' $(touch X)"


def read(path):
    with open(path) as handle:
        return handle.read()


def assert_rejected_by_kiwi(completed, target):
    """
    The quick job ran kiwi in the box, kiwi failed, boxbuild said so
    """
    assert completed.returncode == 1, completed.stdout
    assert 'the build in the box failed with exit code' in completed.stdout
    assert read(os.path.join(target, 'result.code')).strip() not in ('', '0')
    assert 'no-such-element-kiwi-rejects' in read(os.path.join(target, 'result.log'))
    assert os.path.isfile(os.path.join(target, 'boxbuild.console.log'))


@pytest.mark.parametrize('backend', ['9p', 'virtiofs', 'sshfs'])
def test_quick_job(vm, workdir, backend):
    """
    Through each backend: odd paths (spaces, quotes, '$(touch X)') for
    description and target, an extra shared path, a stale result.code
    0, a file already in the target, memory and cpus, global kiwi
    options reaching kiwi in the box, and a signing key from elsewhere
    on the host carried in for the build
    """
    shared = os.path.join(workdir, 'shared')
    os.makedirs(shared)
    key_dir = os.path.join(workdir, f'keys {ODD_NAME}')
    os.makedirs(key_dir)
    host_key = os.path.join(key_dir, 'release key.asc')
    with open(host_key, 'w') as key:
        key.write('signing key of the host\n')
    description = write_quick_description(
        os.path.join(workdir, f'desc {ODD_NAME}'),
        proof_script(
            f'echo written-in-box > {shared}/from-box.txt\n'
            # the key as kiwi in the box is told to find it
            'key=$(tr \' "\' \'\\n\\n\' < /proc/cmdline | sed -n \'s/^--signing-key=//p\')\n'
            'cat "$key" > /bundle/key-seen-in-box.txt\n'
            # what the box's kernel makes of the emulation settings
            'cat /sys/devices/system/clocksource/clocksource0/current_clocksource'
            ' > /bundle/box-clock.txt\n'
            'grep -m1 "^flags" /proc/cpuinfo > /bundle/box-cpu-flags.txt\n'
        )
    )
    target = os.path.join(workdir, f'target {ODD_NAME}')
    os.makedirs(target)
    with open(os.path.join(target, 'result.code'), 'w') as stale:
        stale.write('0\n')
    with open(os.path.join(target, 'keep.txt'), 'w') as keep:
        keep.write('mine\n')

    completed = run_boxbuild(vm, boxbuild_argv(
        BACKEND_OPTIONS[backend] + [
            '--shared-path', shared, '--box-memory', '3G', '--box-smp-cpus', '1'
        ],
        description, target, global_options=['--debug', '--profile', 'quick'],
        kiwi_options=['--signing-key', host_key]
    ), cwd=workdir)

    assert_rejected_by_kiwi(completed, target)
    assert 'software emulation (TCG): --no-accel given' in completed.stdout
    assert read(os.path.join(target, 'keep.txt')) == 'mine\n'
    assert read(os.path.join(shared, 'from-box.txt')) == 'written-in-box\n'
    proof = read(os.path.join(target, PROOF_FILE)).splitlines()
    assert proof[0] == 'read from the description'
    assert proof[1] == '1'
    memory_kib = int(proof[2].split()[1])
    assert 2_500_000 < memory_kib <= 3 * 1024 * 1024
    assert 'kiwi="--debug --profile=quick system build ' \
        '--signing-key=/bundle/.boxbuild.files/1/release_key.asc"' in proof[3]
    assert read(os.path.join(target, 'key-seen-in-box.txt')) == 'signing key of the host\n'
    assert not os.path.exists(os.path.join(target, '.boxbuild.files'))
    assert read(host_key) == 'signing key of the host\n'
    assert f'sharing_backend=_{backend}_' in proof[3]
    # under TCG: the TSC instead of the HPET, no zeroing of every kernel
    # allocation, no ERMS or AVX for glibc and the kernel to pick
    assert read(os.path.join(target, 'box-clock.txt')) == 'tsc\n'
    assert 'init_on_alloc=0' in proof[3].split()
    cpu_flags = read(os.path.join(target, 'box-cpu-flags.txt')).split()
    assert 'sse4_2' in cpu_flags
    assert not {'erms', 'avx', 'avx2'} & set(cpu_flags)
    # nothing of the paths was run by a shell, here or in the box
    for place in (workdir, description, target, REPOSITORY, '/'):
        assert not os.path.exists(os.path.join(place, 'X'))


def test_unprivileged_user(vm, workdir, unprivileged_user, user_kiwi_ng):
    """
    A user without any rights: own cache, 9p shares of own dirs; a
    target dir the user cannot write is refused up front
    """
    os.chown(workdir, unprivileged_user.pw_uid, unprivileged_user.pw_gid)
    description = write_quick_description(
        os.path.join(workdir, 'desc'), proof_script()
    )
    target = os.path.join(workdir, 'target')
    cache = os.path.join(workdir, 'cache')
    for path in (description, os.path.join(description, 'boxroot'),
                 os.path.join(description, 'boxroot', 'etc')):
        os.chown(path, unprivileged_user.pw_uid, unprivileged_user.pw_gid)
    environment = vm.environment(
        KIWI_BOXED_CACHE_DIR=cache, HOME=unprivileged_user.pw_dir,
        USER=unprivileged_user.pw_name, LOGNAME=unprivileged_user.pw_name
    )
    # a target dir the user cannot create: refused before any download
    locked = os.path.join(workdir, 'locked')
    os.makedirs(locked, mode=0o755)
    refused = run_boxbuild(
        vm, [user_kiwi_ng] + boxbuild_argv(
            [], description, os.path.join(locked, 'target')
        )[1:], cwd=workdir, user=unprivileged_user.pw_name, environment=environment
    )
    assert refused.returncode == 1
    assert len(refused.stdout.strip().splitlines()) == 1, refused.stdout
    assert f'{locked} is not writable for this user' in refused.stdout
    assert not os.path.exists(cache)

    completed = run_boxbuild(
        vm, [user_kiwi_ng] + boxbuild_argv([], description, target)[1:], cwd=workdir,
        user=unprivileged_user.pw_name, environment=environment
    )
    assert_rejected_by_kiwi(completed, target)
    assert os.stat(os.path.join(target, 'result.code')).st_uid == unprivileged_user.pw_uid
    assert read(os.path.join(target, PROOF_FILE)).startswith('read from the description')


def test_two_at_once(vm, workdir):
    """
    Two boxbuilds of the same box at the same time, 9p and sshfs: no
    collision of ports, sockets, overlays or results
    """
    runs = {}

    def build(name, options):
        description = write_quick_description(
            os.path.join(workdir, f'desc-{name}'),
            proof_script(f'echo {name} > /bundle/who.txt\n')
        )
        target = os.path.join(workdir, f'target-{name}')
        runs[name] = (target, run_boxbuild(
            vm, boxbuild_argv(options, description, target), cwd=workdir
        ))
    threads = [
        threading.Thread(target=build, args=('first', [])),
        threading.Thread(target=build, args=('second', ['--sshfs-sharing'])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, (target, completed) in runs.items():
        assert_rejected_by_kiwi(completed, target)
        assert read(os.path.join(target, 'who.txt')) == f'{name}\n'


@pytest.mark.parametrize('backend', ['9p', 'virtiofs', 'sshfs'])
def test_interrupt_leaves_nothing(vm, workdir, backend):
    """
    Ctrl-C while the job runs in the box: exit 130, a clear line, and
    no qemu, virtiofsd or sshd of the run left
    """
    description = write_quick_description(
        os.path.join(workdir, 'desc'),
        proof_script('echo box-is-busy > /dev/console\nsleep 600\n')
    )
    target = os.path.join(workdir, 'target')
    process = subprocess.Popen(
        boxbuild_argv(BACKEND_OPTIONS[backend], description, target),
        cwd=workdir, env=vm.environment(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        # a terminal's foreground group of its own, to send Ctrl-C to
        start_new_session=True
    )
    try:
        wait_for_text(
            os.path.join(target, 'boxbuild.console.log'), 'box-is-busy', process,
            HANG_GUARD_SECONDS
        )
        helpers = descendants(process.pid)
        names = {os.path.basename(processes().get(pid, ['?'])[0]) for pid in helpers}
        assert any(name.startswith('qemu-system') for name in names)
        interrupt(process)
        output = process.communicate(timeout=HANG_GUARD_SECONDS)[0].decode(errors='replace')
    finally:
        if process.poll() is None:
            process.kill()
    print(output)
    assert process.returncode == 130
    assert 'boxbuild interrupted' in output
    assert [pid for pid in helpers if alive(pid)] == []
    assert processes_mentioning(target) == []


@pytest.mark.slow
def test_full_build_9p(vm, workdir, tiny_description):
    """
    The tiny Debian description built in the box, end to end
    """
    description = os.path.join(workdir, 'tiny desc $(touch X)')
    shutil.copytree(tiny_description, description)
    target = os.path.join(workdir, 'result dir')
    os.makedirs(target)
    with open(os.path.join(target, 'result.code'), 'w') as stale:
        stale.write('1\n')
    # an empty package cache of the test's own: every package fetched
    # through it and kept
    packages = os.path.join(workdir, 'package cache')
    completed = run_boxbuild(
        vm, boxbuild_argv(['--9p-sharing'], description, target), workdir,
        environment=vm.environment(KIWI_BOXED_PACKAGE_CACHE=packages)
    )
    assert completed.returncode == 0, completed.stdout
    assert "packages come through the host's package cache" in completed.stdout
    fetched = re.search(r'package cache: 0 served from the cache, (\d+) fetched', completed.stdout)
    assert fetched and int(fetched.group(1)) > 50, completed.stdout
    kept = cached_entries(os.path.join(packages, 'debian', 'x86_64'))
    assert len(kept) == int(fetched.group(1))
    assert read(os.path.join(target, 'result.code')).strip() == '0'
    bundle = [name for name in os.listdir(target) if re.search(r'\.tar\.xz$', name)]
    assert bundle, os.listdir(target)
    assert 'build in the box done in' in completed.stdout
    assert f'  {bundle[0]}' in completed.stdout
    assert not os.path.exists(os.path.join(workdir, 'X'))
