"""
The qemu call and the kernel command line of a box, as pure functions
of their inputs.
"""
import logging
from dataclasses import dataclass
from typing import Dict, List, Sequence

from kiwi_boxed_plugin.exceptions import KiwiBoxProtocolError
from kiwi_boxed_plugin.shares import ShareSetup, qemu_option_value

log = logging.getLogger('kiwi')


@dataclass(frozen=True)
class QemuArch:
    """
    How qemu runs a box of one architecture

    :param str package: the Debian package that has the binary
    :param str bus: suffix of the virtio devices: pci, or ccw on s390x
    :param int cmdline_limit: the kernel's COMMAND_LINE_SIZE, minus
        the terminating zero
    """
    binary: str
    package: str
    machine: str
    emulated_cpu: str
    bus: str
    cmdline_limit: int


QEMU_ARCHES: Dict[str, QemuArch] = {
    'x86_64': QemuArch('qemu-system-x86_64', 'qemu-system-x86', 'q35', 'max', 'pci', 2047),
    'aarch64': QemuArch('qemu-system-aarch64', 'qemu-system-arm', 'virt', 'max', 'pci', 2047),
    's390x': QemuArch(
        'qemu-system-s390x', 'qemu-system-misc', 's390-ccw-virtio', 'max', 'ccw', 4095
    ),
    # TCG of qemu 7.2 has no 'max' cpu for POWER
    'ppc64': QemuArch('qemu-system-ppc64', 'qemu-system-ppc', 'pseries', 'power9', 'pci', 2047),
    'ppc64le': QemuArch(
        'qemu-system-ppc64', 'qemu-system-ppc', 'pseries', 'power9', 'pci', 2047
    ),
}


@dataclass(frozen=True)
class BoxMachine:
    """
    Everything the qemu call of one box run depends on

    :param str accel: 'kvm' or 'tcg'
    :param str machine: qemu machine type, '' for the arch's default
    :param str cpu: qemu cpu model, '' for the default of the accel
    :param str initrd: '' when the box boots without one
    :param bool interactive: --box-debug: the terminal is the console
    """
    arch: str
    accel: str
    machine: str
    cpu: str
    memory_mb: int
    cpus: int
    kernel: str
    initrd: str
    disk: str
    interactive: bool


def qemu_argv(
    binary: str, box: BoxMachine, sharing: ShareSetup, cmdline: str
) -> List[str]:
    """
    The qemu argument list for a box run

    :param str binary: path of the qemu binary of box.arch
    :param ShareSetup sharing: arguments of the sharing backend
    :param str cmdline: the kernel command line
    """
    arch = QEMU_ARCHES[box.arch]
    machine = box.machine or arch.machine
    if sharing.shared_memory:
        # vhost-user devices map the guest memory, so it must be shared
        machine += ',memory-backend=box_memory'
    argv = [
        binary, '-name', 'kiwi-boxbuild',
        '-nodefaults', '-no-user-config', '-display', 'none',
        # the box powers off when done; a reboot would start it again
        '-no-reboot',
        '-machine', machine,
        '-accel', box.accel,
        '-cpu', box.cpu or ('host' if box.accel == 'kvm' else arch.emulated_cpu),
        '-smp', str(box.cpus),
        '-m', f'{box.memory_mb}M',
    ]
    if sharing.shared_memory:
        argv += [
            '-object',
            f'memory-backend-memfd,id=box_memory,size={box.memory_mb}M,share=on'
        ]
    argv += ['-kernel', box.kernel]
    if box.initrd:
        argv += ['-initrd', box.initrd]
    argv += [
        '-append', cmdline,
        '-drive',
        f'file={qemu_option_value(box.disk)},if=none,id=system,format=qcow2,'
        'discard=unmap',
        '-device', f'virtio-blk-{arch.bus},drive=system',
        '-netdev', ','.join(['user', 'id=net'] + list(sharing.netdev_options)),
        '-device', f'virtio-net-{arch.bus},netdev=net',
        # signal=off: a Ctrl-C is for boxbuild (or, with --box-debug,
        # for the box), never a silent kill of qemu
        '-chardev', 'stdio,id=console,signal=off' + (
            ',mux=on' if box.interactive else ''
        ),
        '-device', f'virtio-serial-{arch.bus}',
        '-device', 'virtconsole,chardev=console',
    ]
    return argv + list(sharing.qemu_args)


def check_protocol_args(kiwi_args: Sequence[str]) -> None:
    """
    The agent reads kiwi's arguments between the first pair of '"'
    on the kernel command line and splits them on white space

    :raises KiwiBoxProtocolError: for an argument it cannot carry
    """
    for argument in kiwi_args:
        if '"' in argument:
            raise KiwiBoxProtocolError(
                f'the argument {argument} contains a \'"\', which the box '
                'protocol cannot carry: leave it out or set it in the description'
            )
        if not argument or any(character.isspace() for character in argument):
            raise KiwiBoxProtocolError(
                f"the argument '{argument}' is empty or contains white space, "
                'which the box protocol cannot carry: set it in the description instead'
            )


def kernel_cmdline(
    arch: str, box_cmdline: Sequence[str], console: str,
    share_args: Sequence[str], kiwi_args: Sequence[str],
    kiwi_version: str, keep_running: bool
) -> str:
    """
    The job of a box run as kernel command line

    :param list box_cmdline: the arch's cmdline entries of the catalog
    :param list share_args: kernel arguments of the sharing backend
    :param list kiwi_args: kiwi global options, 'system build' and
        the build options
    :param bool keep_running: --box-debug: no poweroff at the end
    :raises KiwiBoxProtocolError: if an argument cannot be carried or
        the whole line is longer than the box kernel takes
    """
    check_protocol_args(kiwi_args)
    words = list(box_cmdline) + [f'console={console}'] + list(share_args)
    if kiwi_version:
        words.append(f'kiwi_version=_{kiwi_version}_')
    if keep_running:
        words.append('kiwi-no-halt')
    words.append('kiwi="{0}"'.format(' '.join(kiwi_args)))
    cmdline = ' '.join(words)
    limit = QEMU_ARCHES[arch].cmdline_limit
    if len(cmdline) > limit:
        raise KiwiBoxProtocolError(
            f'the job for the box needs a kernel command line of {len(cmdline)} '
            f'characters, the {arch} kernel takes {limit}: pass fewer or shorter '
            'arguments, e.g. set repositories in the description'
        )
    return cmdline
