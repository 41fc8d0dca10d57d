"""
usage: .venv/bin/python -m bench.boot [--skip-throughput] [--arch ARCH]...
       (in the repository root)

Figures of 'kiwi-ng system boxbuild' with the Debian box, each against
its floor measured in the same run:

- start: from calling boxbuild to the box agent starting the job,
  against bare qemu booting the same kernel, initrd and disk overlay
  with the same shares to the same console line (goal: ratio <= 1.3),
  for the x86_64 box and the aarch64 one (software emulation here);
  plus the cache check of a cached box against hashing its qcow2
  (which a cached run must not do)
- write throughput of a 500 MB file into the target dir from inside
  the box through 9p, virtiofs and sshfs, against the host writing the
  same file into the same dir

Runs as root; builds the box first if needed (boxes/debian/build-box,
cached by recipe hash). Shares the catalog and box cache of the VM
integration tests in /var/cache/kiwi-plugins-test/vm.
"""
import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness.boxbuild import boxbuild_argv
from harness.descriptions import write_quick_description
from harness.vm_boxbuild import STORE, vm_box
from kiwi_boxed_plugin.accel import choose_accelerator
from kiwi_boxed_plugin.cache import BoxCache
from kiwi_boxed_plugin.catalog import BoxCatalog
from kiwi_plugin_support.host import host_arch

JOB_STARTED = b'kiwi-box-agent: job started'
WRITE_MB = 500
# per box architecture: the qemu binary, machine and TCG cpu one would
# type (written out here, not taken from the plugin)
FLOOR_QEMU = {
    'x86_64': ('qemu-system-x86_64', 'q35', 'max'),
    'aarch64': ('qemu-system-aarch64', 'virt', 'max,pauth-impdef=on'),
}
BACKENDS = {'9p': [], 'virtiofs': ['--virtiofs-sharing'], 'sshfs': ['--sshfs-sharing']}


def main() -> int:
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument('--skip-throughput', action='store_true')
    parser.add_argument(
        '--arch', action='append', choices=list(FLOOR_QEMU),
        help='the box architectures to start (default: all of them)'
    )
    arguments = parser.parse_args()
    arches = arguments.arch or list(FLOOR_QEMU)
    # the catalog and cache of the VM tests: one cached box for both
    for arch_name in arches:
        vm = vm_box(arch=arch_name, stdout=subprocess.DEVNULL)
    os.environ.update(KIWI_BOXED_PLUGIN_CFG=vm.catalog, KIWI_BOXED_CACHE_DIR=vm.cache)
    box = BoxCatalog().get('debian')
    with tempfile.TemporaryDirectory(dir=STORE) as work:
        description = write_quick_description(os.path.join(work, 'desc'), '')
        target = os.path.join(work, 'target')
        os.makedirs(target)
        for arch_name in arches:
            start_to_job(box, arch_name, description, target)
        check, hashing = cache_check_against_hash(box, box.arch(host_arch()))
        print(f'cached box check: {check * 1000:.0f} ms, hashing its qcow2: {hashing:.2f} s, '
              f'ratio {check / hashing:.3f} (no re-hash: far below 1)')
        if not arguments.skip_throughput:
            throughput(work)
    return 0


def start_to_job(box, arch_name: str, description: str, target: str) -> None:
    """
    Print boxbuild's start-to-job time of the box of an architecture
    against bare qemu's
    """
    arch = box.arch(arch_name)
    accel = choose_accelerator(arch_name, host_arch(), True)
    print(f'{arch_name} accelerator: {accel.describe()}')
    options = [f'--box-arch={arch_name}']
    # a first boxbuild fills the cache; it is not measured
    boxbuild_until_job(description, target, options)
    with BoxCache().use(box, arch, update_check=True) as files:
        floor = bare_qemu_until_job(
            files, arch_name, arch.cmdline, accel.name, description, target
        )
    ours = boxbuild_until_job(description, target, options)
    print(f'{arch_name} start to job: boxbuild {ours:.1f} s, bare qemu {floor:.1f} s, '
          f'ratio {ours / floor:.2f} (goal <= 1.3)')


def wait_for_line(process: subprocess.Popen, started: float) -> float:
    """
    Read the process output until the agent starts the job

    :return: seconds from started
    """
    seen = b''
    while True:
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            raise SystemExit(f'the box ended before the job started:\n{seen[-2000:].decode()}')
        seen = (seen + chunk)[-4096:]
        if JOB_STARTED in seen:
            return time.monotonic() - started


def boxbuild_until_job(description: str, target: str, options: list) -> float:
    """
    boxbuild from its start to the agent's job line; then Ctrl-C
    """
    argv = boxbuild_argv([], options, description, target)
    started = time.monotonic()
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        return wait_for_line(process, started)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.communicate()


def bare_qemu_until_job(
    files, arch: str, cmdline, accel: str, description: str, target: str
) -> float:
    """
    The floor: qemu as one would type it, same boot files and shares
    """
    overlay = os.path.join(files.temp_dir, 'bench-overlay.qcow2')
    started = time.monotonic()
    subprocess.run(
        ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b',
         files.system_disk, overlay], check=True
    )
    binary, machine, emulated_cpu = FLOOR_QEMU[arch]
    argv = [
        binary, '-nodefaults', '-display', 'none', '-no-reboot',
        '-machine', machine, '-accel', accel, '-cpu', 'host' if accel == 'kvm' else emulated_cpu,
        '-smp', '2', '-m', '4096M', '-kernel', files.kernel, '-initrd', files.initrd,
        '-append', ' '.join(list(cmdline) + [
            'console=hvc0', 'sharing_backend=_9p_', 'kiwi="system build"'
        ]),
        '-drive', f'file={overlay},if=virtio,format=qcow2',
        '-netdev', 'user,id=n', '-device', 'virtio-net-pci,netdev=n',
        '-chardev', 'stdio,id=c,signal=off', '-device', 'virtio-serial-pci',
        '-device', 'virtconsole,chardev=c',
        '-fsdev', f'local,id=d,path={description},security_model=mapped-xattr',
        '-device', 'virtio-9p-pci,fsdev=d,mount_tag=kiwidescription',
        '-fsdev', f'local,id=b,path={target},security_model=mapped-xattr',
        '-device', 'virtio-9p-pci,fsdev=b,mount_tag=kiwibundle',
    ]
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        return wait_for_line(process, started)
    finally:
        process.kill()
        process.communicate()
        os.unlink(overlay)


def cache_check_against_hash(box, arch) -> tuple:
    started = time.monotonic()
    with BoxCache().use(box, arch, update_check=True) as files:
        check = time.monotonic() - started
        disk = files.system_disk
        started = time.monotonic()
        digest = hashlib.sha256()
        with open(disk, 'rb') as handle:
            for block in iter(lambda: handle.read(1 << 20), b''):
                digest.update(block)
        hashing = time.monotonic() - started
    return check, hashing


def host_write_rate(directory: str) -> float:
    """
    MB/s of the host writing the file the box writes, same dir
    """
    path = os.path.join(directory, 'host-write')
    completed = subprocess.run(
        ['dd', 'if=/dev/zero', f'of={path}', 'bs=1M', f'count={WRITE_MB}', 'conv=fsync'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True
    )
    os.unlink(path)
    return dd_rate(completed.stdout.decode())


def dd_rate(text: str) -> float:
    """
    MB/s from dd's summary: '524288000 bytes (524 MB, 500 MiB) copied, 1.6 s, 328 MB/s'
    """
    match = re.search(r'(\d+) bytes .* copied, ([\d.]+) s', text)
    if not match:
        raise SystemExit(f'no dd summary in: {text}')
    return int(match.group(1)) / float(match.group(2)) / 1e6


def throughput(work: str) -> None:
    for backend, options in BACKENDS.items():
        description = write_quick_description(
            os.path.join(work, f'desc-{backend}'),
            f'dd if=/dev/zero of=/bundle/box-write bs=1M count={WRITE_MB} conv=fsync '
            '2> /bundle/dd.txt\nrm -f /bundle/box-write\n'
        )
        target = os.path.join(work, f'target-{backend}')
        os.makedirs(target)
        subprocess.run(
            boxbuild_argv([], options, description, target),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        with open(os.path.join(target, 'dd.txt')) as report:
            box_rate = dd_rate(report.read())
        host_rate = host_write_rate(target)
        print(f'write {WRITE_MB} MB into the target dir via {backend}: {box_rate:.0f} MB/s, '
              f'host {host_rate:.0f} MB/s, ratio {box_rate / host_rate:.2f}')
        shutil.rmtree(target)


if __name__ == '__main__':
    sys.exit(main())
