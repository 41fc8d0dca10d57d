"""
What only qemu needs: the binary per architecture, the throw-away
overlay of the box disk, and the qemu call and kernel command line of a
box run as pure functions of their inputs.
"""
import logging
import os
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Sequence, Tuple

from kiwi_boxed_plugin.agent.kiwi_box_protocol import BoxJob, ProtocolError, encode_job
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import KiwiBoxProtocolError
from kiwi_plugin_support.host import find_program

log = logging.getLogger('kiwi')


@dataclass(frozen=True)
class QemuArch:
    """
    How qemu runs a box of one architecture

    :param str package: the Debian package that has the binary
    :param str emulated_cpu: the cpu model under software emulation
    :param str bus: suffix of the virtio devices: pci, or ccw on s390x
    :param int cmdline_limit: the kernel's COMMAND_LINE_SIZE, minus
        the terminating zero
    :param tuple emulated_cmdline: kernel arguments under software
        emulation, ahead of the catalog's (which win where both set one)
    """
    binary: str
    package: str
    machine: str
    emulated_cpu: str
    bus: str
    cmdline_limit: int
    emulated_cmdline: Tuple[str, ...] = ()


# Under software emulation every instruction of the box costs host
# instructions, so the box is kept from work that emulation makes dear
# and a VM running one build does not need. The x86_64 set made the
# tiny Debian build faster in every phase: 524 -> 452 s in an A/B of
# two box builds one after the other (bench.boxbuild: 516 -> 440 s
# against an earlier session's run).
#
# Debian's kernels (among others) zero every page and slab object on
# allocation as hardening against stale kernel memory; pages a process
# gets are zeroed anyway, and a box that runs one build of one author
# holds nothing of anybody else's to leak.
EMULATED_KERNEL = ('init_on_alloc=0',)
# ERMS makes the kernel clear pages and glibc copy large buffers with
# rep stosb/movsb, which TCG runs one byte per iteration; without it
# they go by 8 bytes. Without AVX glibc takes its SSE2 string functions,
# which TCG translates into less host code.
EMULATED_X86_64_CPU = 'max,erms=off,avx=off,avx2=off'
# The kernel of a TCG guest falls back from the TSC to the HPET, whose
# every read is an exit into qemu's device emulation under its global
# lock, and makes every clock_gettime a system call (the vDSO cannot
# read an HPET). qemu's emulated TSC is the host's own: constant, and
# the same on every vCPU.
EMULATED_X86_64_KERNEL = ('clocksource=tsc', 'tsc=reliable') + EMULATED_KERNEL


QEMU_ARCHES: Dict[str, QemuArch] = {
    'x86_64': QemuArch(
        'qemu-system-x86_64', 'qemu-system-x86', 'q35', EMULATED_X86_64_CPU, 'pci', 2047,
        EMULATED_X86_64_KERNEL
    ),
    # pointer authentication with the architecture's QARMA cipher costs
    # TCG much time on every call and return: qemu's own cheaper
    # algorithm boots the box about a quarter faster
    'aarch64': QemuArch(
        'qemu-system-aarch64', 'qemu-system-arm', 'virt', 'max,pauth-impdef=on', 'pci', 2047,
        EMULATED_KERNEL
    ),
    's390x': QemuArch(
        'qemu-system-s390x', 'qemu-system-misc', 's390-ccw-virtio', 'max', 'ccw', 4095,
        EMULATED_KERNEL
    ),
    # TCG of qemu 7.2 has no 'max' cpu for POWER
    'ppc64': QemuArch(
        'qemu-system-ppc64', 'qemu-system-ppc', 'pseries', 'power9', 'pci', 2047,
        EMULATED_KERNEL
    ),
    'ppc64le': QemuArch(
        'qemu-system-ppc64', 'qemu-system-ppc', 'pseries', 'power9', 'pci', 2047,
        EMULATED_KERNEL
    ),
}


# The id of the box's network backend in the qemu call
NETDEV_ID = 'net'


@dataclass(frozen=True)
class BoxMachine:
    """
    Everything the qemu call of one box run depends on

    :param str accel: 'kvm' or 'tcg'
    :param str machine: qemu machine type, '' for the arch's default
    :param str cpu: qemu cpu model, '' for the default of the accel
    :param str initrd: '' when the box boots without one
    :param bool interactive: --box-debug: the terminal is the console
    :param str netdev: the value of -netdev, the box's network (see
        user_netdev, stream_netdev)
    :param tuple share_args: the qemu arguments of the sharing backend
    :param bool shared_memory: the box memory must be shareable
        (vhost-user devices map it)
    :param bool throwaway_disk: disk is an overlay removed after the
        run: qemu may ignore the box's flushes
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
    netdev: str
    share_args: Tuple[str, ...] = ()
    shared_memory: bool = False
    throwaway_disk: bool = False


def find_qemu_binary(arch: str) -> str:
    """
    :raises KiwiPluginToolMissingError: naming the package to install
    """
    qemu_arch = QEMU_ARCHES[arch]
    return find_program(qemu_arch.binary, qemu_arch.package, f'for a {arch} box')


@contextmanager
def snapshot_overlay(disk: str, temp_dir: str) -> Iterator[str]:
    """
    A throw-away qcow2 on top of the cached box disk, removed after

    :param str temp_dir: the cache's temp area: overlays grow by GBs
        during a build, more than /tmp may hold
    """
    qemu_img = find_program('qemu-img', 'qemu-utils', 'for the box disk overlay')
    overlay = os.path.join(temp_dir, 'system-overlay.qcow2')
    subprocess.run(
        [
            qemu_img, 'create', '-q', '-f', 'qcow2', '-F', 'qcow2',
            '-b', os.path.abspath(disk), overlay
        ], check=True, stdin=subprocess.DEVNULL
    )
    try:
        yield overlay
    finally:
        os.unlink(overlay)


def qemu_option_value(value: str) -> str:
    """
    A value for a qemu -option key=value list: commas are doubled
    """
    return value.replace(',', ',,')


def user_netdev(to_box: Sequence[Tuple[int, int]]) -> str:
    """
    qemu's own user network, which shows the host's loopback to the box
    at 10.0.2.2

    :param list to_box: (port of the host's loopback, port of the
        box) pairs forwarded into the box
    """
    return ','.join(['user', f'id={NETDEV_ID}'] + [
        f'hostfwd=tcp:127.0.0.1:{host_port}-:{box_port}' for host_port, box_port in to_box
    ])


def stream_netdev(socket_path: str) -> str:
    """
    A network served on a unix socket, by passt
    """
    return (
        f'stream,id={NETDEV_ID},server=off,addr.type=unix,'
        f'addr.path={qemu_option_value(socket_path)}'
    )


def qemu_argv(binary: str, box: BoxMachine, cmdline: str) -> List[str]:
    """
    The qemu argument list for a box run

    :param str binary: path of the qemu binary of box.arch
    :param str cmdline: the kernel command line
    """
    arch = QEMU_ARCHES[box.arch]
    machine = box.machine or arch.machine
    if box.shared_memory:
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
    if box.shared_memory:
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
        # a throw-away overlay need not survive a crash of the host:
        # every fsync of the build (dpkg makes thousands) would wait
        # for the host's disk for nothing
        'discard=unmap' + (',cache=unsafe' if box.throwaway_disk else ''),
        '-device', f'virtio-blk-{arch.bus},drive=system',
        '-netdev', box.netdev,
        '-device', f'virtio-net-{arch.bus},netdev={NETDEV_ID}',
        # signal=off: a Ctrl-C is for boxbuild (or, with --box-debug,
        # for the box), never a silent kill of qemu
        '-chardev', 'stdio,id=console,signal=off' + (
            ',mux=on' if box.interactive else ''
        ),
        '-device', f'virtio-serial-{arch.bus}',
        '-device', 'virtconsole,chardev=console',
    ]
    return argv + list(box.share_args)


def kernel_cmdline(
    arch: str, box_cmdline: Sequence[str], console: str, job: BoxJob, emulated: bool = False
) -> str:
    """
    The job of a box run as kernel command line

    A box whose catalog entry sets no panic= gets one: the published
    boxes set none, so a kernel panic would hang the box for good; with
    it the kernel reboots, which ends qemu (-no-reboot).

    :param list box_cmdline: the arch's cmdline entries of the catalog
    :param bool emulated: the box runs under software emulation (TCG)
    :raises KiwiBoxProtocolError: if a value cannot be carried or the
        whole line is longer than the box kernel takes
    """
    # the kernel takes the last of two same arguments: the catalog's win
    emulation = QEMU_ARCHES[arch].emulated_cmdline if emulated else ()
    leading = list(emulation) + list(box_cmdline) + [f'console={console}']
    if not any(word.startswith('panic=') for word in box_cmdline):
        leading.append(f'panic={Defaults.get_box_panic_seconds()}')
    try:
        cmdline = encode_job(job, leading)
    except ProtocolError as issue:
        raise KiwiBoxProtocolError(str(issue))
    limit = QEMU_ARCHES[arch].cmdline_limit
    if len(cmdline) > limit:
        raise KiwiBoxProtocolError(
            f'the job for the box needs a kernel command line of {len(cmdline)} '
            f'characters, the {arch} kernel takes {limit}: pass fewer or shorter '
            'arguments, e.g. set repositories in the description'
        )
    return cmdline
