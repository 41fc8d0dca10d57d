"""
The conformance flavour of the Debian box runs a job as the published
boxes do: under qemu with 9p shares (the job on the kernel command
line, kiwi run against the mounted description, the result in the
bundle, then poweroff), and in its container image with systemd as
PID 1 (the job in /container.cmdline, the target emptied and built
into, then 'reboot -f' ends the container).

The jobs are quick: the description's boxroot profile proves the shares
and the box, and its config.xml is one kiwi rejects at once.
"""
import os
import socket
import subprocess
import time

import pytest

from harness.box_qemu import BOOT_TIMEOUT, qemu_box
from harness.descriptions import PROOF_FILE, proof_script, write_quick_description

pytestmark = [pytest.mark.integration, pytest.mark.vm]

JOB = 'kiwi="--type tbz system build" sharing_backend=_9p_'
# what kiwi says of the quick description's config.xml
KIWI_REJECTS = 'KiwiDescriptionInvalid'
# podman here: runc, and rlimits within root's hard limits
PODMAN_RUN = [
    'podman', 'run', '--rm', '--privileged', '--runtime', 'runc',
    '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096',
]
CONTAINER_TIMEOUT = 300


def read(path):
    with open(path) as handle:
        return handle.read()


def test_the_box_has_the_published_shape(conformance_box):
    for name in ('Kernel.tar.xz', 'System.qcow2'):
        assert os.path.isfile(conformance_box.path(f'Debian-Conformance-Box.x86_64-{name}'))
        assert os.path.isfile(
            conformance_box.path(f'Debian-Conformance-Box.x86_64-{name}.sha256')
        )
    public_key = read(conformance_box.path('Debian-Conformance-Box.x86_64-root_id_rsa.pub'))
    assert public_key.startswith('ssh-rsa ')
    assert 'kiwi_box_agent' not in read(conformance_box.catalog).split(
        'name: debian-conformance'
    )[1]


def test_a_vm_job_over_9p(boot_conformance_box, tmp_path):
    description = write_quick_description(
        str(tmp_path / 'description'),
        proof_script('cat /proc/1/comm > /bundle/init.txt\n'
                     'systemctl is-active ssh > /bundle/ssh.txt || true\n')
    )
    bundle = tmp_path / 'bundle'
    bundle.mkdir()
    # a stale success must not survive the job
    (bundle / 'result.code').write_text('0\n')
    result = boot_conformance_box(
        JOB, [('kiwidescription', description), ('kiwibundle', str(bundle))]
    )
    assert 'kiwi-box-job: job started' in result.console
    assert 'kiwi-box-job: mounted the shares (9p)' in result.console
    assert 'kiwi-box-job: job finished with exit code 1' in result.console
    # kiwi's own output reached the console
    assert KIWI_REJECTS in result.console
    assert read(bundle / 'result.code').strip() == '1'
    log = read(bundle / 'result.log')
    # kiwi read the mounted description and logged into the bundle
    assert KIWI_REJECTS in log
    assert 'Loading XML description: /description' in log
    assert "copied the description's boxroot into the box" in log
    assert 'sourced /etc/boxprofile' in log
    proof = read(bundle / PROOF_FILE).splitlines()
    assert proof[0] == 'read from the description'
    assert 'kiwi="--type tbz system build"' in proof[-1]
    assert 'kiwi_box_agent' not in proof[-1]
    assert read(bundle / 'init.txt').strip() == 'systemd'
    assert read(bundle / 'ssh.txt').strip() == 'active'
    # kiwi result bundle did not run: the build failed
    assert sorted(os.listdir(bundle)) == sorted(
        [PROOF_FILE, 'init.txt', 'ssh.txt', 'result.code', 'result.log']
    )


def test_a_container_job(conformance_box, tmp_path):
    description = write_quick_description(
        str(tmp_path / 'description'),
        proof_script('cat /proc/1/comm > /bundle/init.txt\n')
    )
    bundle = tmp_path / 'bundle'
    bundle.mkdir()
    # the published boxes empty the target directory of a container build
    (bundle / 'stale.txt').write_text('from an earlier build\n')
    cmdline = tmp_path / 'container.cmdline'
    cmdline.write_text('kiwi="--type tbz system build"\n')
    image = 'localhost/kiwi-boxes/debian-conformance:latest'
    environment = dict(os.environ, CONTAINERS_STORAGE_CONF=conformance_box.storage_conf)
    entry = subprocess.run(
        ['podman', 'image', 'inspect', '--format', '{{json .Config.Entrypoint}}', image],
        env=environment, stdout=subprocess.PIPE, text=True, check=True
    )
    assert entry.stdout.strip() == '["/sbin/init"]'
    run = subprocess.run(
        # a terminal: systemd and the job's unit write to the console
        PODMAN_RUN + ['-t', '--hostname', 'kiwi-box'] + [
            option for source, target, extra in (
                (description, '/description', ',ro'), (str(bundle), '/bundle', ''),
                (str(cmdline), '/container.cmdline', ',ro'),
            ) for option in (
                '--mount', f'type=bind,source={source},destination={target}{extra}'
            )
        ] + [image],
        env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=CONTAINER_TIMEOUT
    )
    console = run.stdout.decode(errors='replace')
    # 'reboot -f' ended systemd, and with it the container
    assert 'kiwi-box-job: job finished with exit code 1' in console, console
    assert read(bundle / 'init.txt').strip() == 'systemd'
    assert not (bundle / 'stale.txt').exists()
    assert read(bundle / 'result.code').strip() == '1'
    log = read(bundle / 'result.log')
    assert KIWI_REJECTS in log
    assert read(bundle / PROOF_FILE).splitlines()[0] == 'read from the description'
    # kiwi built into the target itself
    assert (bundle / 'build').is_dir()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def wait_for_line(path: str, line: str, vm: subprocess.Popen) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline and vm.poll() is None:
        if os.path.exists(path) and line in read(path):
            return
        time.sleep(2)
    raise AssertionError(f'no {line!r} on the console:\n{read(path)}')


def test_kiwi_no_halt_keeps_the_box_up_for_a_login_with_the_jobs_key(
    conformance_box, conformance_boot_files, tmp_path
):
    key = tmp_path / 'login_key'
    subprocess.run(
        ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(key)], check=True
    )
    key_type, key_data = read(f'{key}.pub').split()[:2]
    description = write_quick_description(str(tmp_path / 'description'), proof_script())
    bundle = tmp_path / 'bundle'
    bundle.mkdir()
    port = free_port()
    console = str(tmp_path / 'console.log')
    job = f'{JOB} kiwi-no-halt ssh_key_type=_{key_type}_ ssh_key=_{key_data}_'
    shares = [('kiwidescription', description), ('kiwibundle', str(bundle))]
    ssh = [
        'ssh', '-p', str(port), '-i', str(key), '-o', 'BatchMode=yes',
        '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
        '-o', 'ConnectTimeout=30', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', '--'
    ]
    with qemu_box(
        conformance_box, conformance_boot_files, job, shares, console, ssh_port=port
    ) as vm:
        wait_for_line(console, 'kiwi-box-job: kiwi-no-halt: the box stays up', vm)
        for _ in range(10):
            login = subprocess.run(
                ssh + ['cat /bundle/result.code; stat -c %a /root/.ssh/id_rsa; '
                       'sshd -T | grep -E "^(passwordauthentication|permitrootlogin) "'],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, timeout=120
            )
            if login.returncode == 0:
                break
            time.sleep(5)
        assert login.returncode == 0, login.stderr
        subprocess.run(
            ssh + ['systemctl poweroff'], stdin=subprocess.DEVNULL, timeout=120,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert vm.wait(timeout=BOOT_TIMEOUT) == 0
    assert login.stdout.splitlines() == [
        '1', '600', 'permitrootlogin without-password', 'passwordauthentication no'
    ]
    assert read(bundle / 'result.code').strip() == '1'
