"""
The pieces of the box tests: the builder run as 'make box' runs it,
the tiny Debian description with the host's mirror, and a bare qemu
harness that boots the box with 9p shares.

Everything the tests write lives under /var/cache/kiwi-plugins-test/box;
the box itself is built where 'make box' puts it, so that both reuse it.
"""
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, List, Sequence

REPOSITORY = os.path.realpath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
BUILDER = os.path.join(REPOSITORY, 'boxes', 'debian', 'build-box')
TINY_DEBIAN = os.path.join(REPOSITORY, 'test', 'data', 'tiny-debian')
TEST_ROOT = '/var/cache/kiwi-plugins-test/box'
BOX_OUTPUT = os.environ.get('KIWI_PLUGINS_BOX_DIR', '/var/cache/kiwi-plugins/debian-box')

# a generous bound for one boot of the box under software emulation on
# a loaded host; it only keeps a hung box from hanging the suite
BOOT_TIMEOUT = 900


@dataclass(frozen=True)
class BuiltBox:
    output: str
    catalog: str
    storage_conf: str
    build_log: str

    def path(self, name: str) -> str:
        return os.path.join(self.output, name)


def run_builder(environment: dict, *options: str) -> str:
    os.makedirs(environment['TMPDIR'], exist_ok=True)
    done = subprocess.run(
        [sys.executable, BUILDER, '--output', BOX_OUTPUT] + list(options),
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = done.stdout.decode()
    assert done.returncode == 0, output
    return output


def description_copy(target: str, mirror: str, broken: bool = False) -> str:
    """
    A copy of the tiny Debian description with the host's mirror in it

    :param bool broken: add an element kiwi's schema rejects
    """
    shutil.copytree(TINY_DEBIAN, target)
    config = os.path.join(target, 'config.xml')
    with open(config) as handle:
        text = handle.read().replace('@MIRROR@', mirror)
    if broken:
        text = text.replace(
            '<package name="netbase"/>', '<package name="netbase"/><no-such-element/>'
        )
    with open(config, 'w') as handle:
        handle.write(text)
    return target


@dataclass
class BootResult:
    returncode: int
    console: str


@contextmanager
def qemu_box(
    box: BuiltBox, boot: dict, kernel_args: str, shares: Sequence[tuple], console: str
) -> Iterator[subprocess.Popen]:
    """
    A running box VM: software emulation (the KVM of this host is too
    slow to use), the system disk as a throw-away snapshot, 9p shares
    and the console in a file; killed on the way out if still running

    :param list shares: (mount tag, host directory) pairs
    """
    cmdline = ' '.join(
        ['root=/dev/vda1', 'rw', 'quiet', 'panic=-1', 'console=hvc0', kernel_args]
    )
    argv: List[str] = [
        'qemu-system-x86_64', '-nodefaults', '-no-user-config', '-display', 'none',
        '-no-reboot', '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max',
        '-m', '3072', '-smp', '2',
        '-kernel', boot['kernel'], '-initrd', boot['initrd'], '-append', cmdline,
        '-drive', f"file={box.path('Debian-Box.x86_64-System.qcow2')},if=virtio,"
        'format=qcow2,snapshot=on',
        '-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0',
        '-device', 'virtio-serial-pci',
        '-chardev', f'file,id=console0,path={console}', '-device', 'virtconsole,chardev=console0',
    ]
    for number, (tag, directory) in enumerate(shares):
        argv += [
            '-fsdev', f'local,id=fs{number},path={directory},security_model=mapped-xattr',
            '-device', f'virtio-9p-pci,fsdev=fs{number},mount_tag={tag}',
        ]
    with open(console + '.qemu', 'wb') as qemu_log:
        vm = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=qemu_log, stderr=subprocess.STDOUT
        )
        try:
            yield vm
        finally:
            if vm.poll() is None:
                vm.kill()
                vm.wait()
