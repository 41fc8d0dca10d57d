"""
Bare qemu boots of the Debian box, as the box tests make them: no
boxbuild, only the box's kernel, initrd and disk, 9p shares and the
console in a file.
"""
import os
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, List, Sequence, Tuple

# a generous bound for one boot of the box under software emulation on
# a loaded host; it only keeps a hung box from hanging the suite
BOOT_TIMEOUT = 900


@dataclass(frozen=True)
class BuiltBox:
    """
    The box as the builder published it, and where the tests keep
    its catalog and container storage
    """
    output: str
    catalog: str
    storage_conf: str
    build_log: str
    # the box files' name prefix, and the kernel arguments of its
    # catalog entry (the conformance flavour's has no panic=: the
    # boots add it, as boxbuild does)
    file_prefix: str = 'Debian-Box.x86_64'
    cmdline: Tuple[str, ...] = ('root=/dev/vda1', 'rw', 'quiet', 'panic=-1')

    def path(self, name: str) -> str:
        return os.path.join(self.output, name)

    @property
    def system_disk(self) -> str:
        return self.path(f'{self.file_prefix}-System.qcow2')

    @property
    def kernel_tarball(self) -> str:
        return self.path(f'{self.file_prefix}-Kernel.tar.xz')


@dataclass
class BootResult:
    returncode: int
    console: str


@contextmanager
def qemu_box(
    box: BuiltBox, boot: dict, kernel_args: str, shares: Sequence[tuple], console: str,
    ssh_port: int = 0
) -> Iterator[subprocess.Popen]:
    """
    A running box VM: software emulation (the KVM of this host is too
    slow to use), the system disk as a throw-away snapshot, 9p shares
    and the console in a file; killed on the way out if still running

    :param dict boot: paths of the box's 'kernel' and 'initrd'
    :param list shares: (mount tag, host directory) pairs
    :param str console: file of the console; qemu's own output goes
        to console + '.qemu'
    :param int ssh_port: if not 0, the host's 127.0.0.1 port forwarded
        to the box's port 22
    """
    netdev = 'user,id=net0' + (f',hostfwd=tcp:127.0.0.1:{ssh_port}-:22' if ssh_port else '')
    panic = [] if any(word.startswith('panic=') for word in box.cmdline) else ['panic=-1']
    cmdline = ' '.join(list(box.cmdline) + panic + ['console=hvc0', kernel_args])
    argv: List[str] = [
        'qemu-system-x86_64', '-nodefaults', '-no-user-config', '-display', 'none',
        '-no-reboot', '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max',
        '-m', '3072', '-smp', '2',
        '-kernel', boot['kernel'], '-initrd', boot['initrd'], '-append', cmdline,
        '-drive', f'file={box.system_disk},if=virtio,'
        'format=qcow2,snapshot=on',
        '-netdev', netdev, '-device', 'virtio-net-pci,netdev=net0',
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
