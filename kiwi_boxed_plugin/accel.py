"""
Which accelerator a box runs with: KVM when it is usable, software
emulation (TCG) otherwise, and always a one-line reason.

Opening /dev/kvm does not prove KVM usable: some hosts offer a
paravirtual KVM (kvm_pvm) that opens and runs guests, but stock guest
kernels crawl about a thousand times slower there. So on x86_64 a tiny
guest is timed: about a millisecond on a working KVM, one to a few
seconds on the paravirtual one (which the probe stops at its limit,
far below that). Other arches rely on the console watchdog of the run
(see vm.py).
"""
import ctypes
import errno
import fcntl
import logging
import mmap
import os
import struct
import time
from dataclasses import dataclass
from typing import Callable

from kiwi_boxed_plugin.defaults import Defaults

log = logging.getLogger('kiwi')

KVM_DEVICE = '/dev/kvm'

# ioctl numbers of <linux/kvm.h>: _IO/_IOR/_IOW(0xAE, nr, size)
KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_GET_VCPU_MMAP_SIZE = 0xAE04
KVM_CREATE_VCPU = 0xAE41
KVM_SET_USER_MEMORY_REGION = 0x4020AE46
KVM_RUN = 0xAE80
KVM_GET_REGS = 0x8090AE81
KVM_SET_REGS = 0x4090AE82
KVM_GET_SREGS = 0x8138AE83
KVM_SET_SREGS = 0x4138AE84
KVM_EXIT_IO = 2
KVM_EXIT_HLT = 5
KVM_API_VERSION = 12
KVM_REGS_SIZE = 144
KVM_SREGS_SIZE = 312

# The tiny guest, in real mode: chunks of 65,536 turns of 'dec cx; jnz'
# (a cycle a turn on a working KVM, two emulated instructions on a
# paravirtual one: a thousand times apart), an exit to the host after
# each chunk so that the host can stop a slow guest at its limit, hlt
# at the end
PROBE_CHUNKS = 32
CHUNK_TURNS = 65536
PROBE_TURNS = PROBE_CHUNKS * CHUNK_TURNS
TINY_GUEST = bytes([
    0xBA, PROBE_CHUNKS, 0x00,  # mov dx, PROBE_CHUNKS
    0xB9, 0x00, 0x00,          # chunk: mov cx, 0 (the first dec wraps: 65,536 turns)
    0x49,                      # turn: dec cx
    0x75, 0xFD,                # jnz turn
    0xE6, 0x80,                # out 0x80, al: an exit to the host
    0x4A,                      # dec dx
    0x75, 0xF5,                # jnz chunk
    0xF4,                      # hlt
])
TINY_GUEST_ADDRESS = 0x1000


@dataclass(frozen=True)
class Accelerator:
    """
    The accelerator chosen for a run

    :param str name: 'kvm' or 'tcg'
    :param str reason: why, in words for the user
    """
    name: str
    reason: str

    @property
    def is_kvm(self) -> bool:
        return self.name == 'kvm'

    def describe(self) -> str:
        label = 'KVM' if self.is_kvm else 'software emulation (TCG)'
        return f'{label}: {self.reason}'


@dataclass(frozen=True)
class ProbeRun:
    """
    How far the tiny guest got

    :param int turns: loop turns done, PROBE_TURNS if it ran to its end
    :param float elapsed_ms: milliseconds from the first entry into the
        guest to its last exit
    """
    turns: int
    elapsed_ms: float


class KvmUnusable(Exception):
    """
    Internal to the probe: KVM exists but cannot run the tiny guest
    """


def software(reason: str) -> Accelerator:
    return Accelerator('tcg', reason)


def choose_accelerator(box_arch: str, host_arch: str, allow_kvm: bool) -> Accelerator:
    """
    Decide between KVM and TCG for a box of box_arch on this host

    :param str box_arch: architecture of the box
    :param str host_arch: architecture of this host
    :param bool allow_kvm: False for --no-accel
    """
    if not allow_kvm:
        return software('--no-accel given')
    if box_arch != host_arch:
        return software(
            f'the box is {box_arch}, the host {host_arch}: KVM runs only the host\'s architecture'
        )
    limit_ms = Defaults.get_kvm_probe_limit_ms()
    try:
        descriptor = os.open(KVM_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except OSError as issue:
        if issue.errno == errno.ENOENT:
            return software(f'{KVM_DEVICE} does not exist (no KVM module loaded?)')
        if issue.errno in (errno.EACCES, errno.EPERM):
            return software(
                f'no permission to open {KVM_DEVICE} (join the kvm group for speed)'
            )
        return software(f'{KVM_DEVICE} cannot be opened: {issue.strerror}')
    try:
        if host_arch != 'x86_64':
            return Accelerator('kvm', f'{KVM_DEVICE} is usable')
        try:
            probe = time_tiny_guest(descriptor, limit_ms)
        except (OSError, KvmUnusable) as issue:
            return software(f'{KVM_DEVICE} cannot run a tiny guest ({issue})')
    finally:
        os.close(descriptor)
    if probe.elapsed_ms > limit_ms:
        return software(
            f'KVM runs guests far too slowly here (a tiny guest ran {probe.turns:,} '
            f'loop turns in {probe.elapsed_ms:.1f} ms, a working KVM runs '
            f'{PROBE_TURNS:,} in about 1 ms)'
        )
    return Accelerator('kvm', f'{KVM_DEVICE} runs guests at full speed')


def time_tiny_guest(kvm: int, limit_ms: float) -> ProbeRun:
    """
    Run the tiny guest in a fresh VM, to its end or to the limit

    :param int kvm: open descriptor of /dev/kvm
    :param float limit_ms: stop the guest once it has run this long
    :raises KvmUnusable: if the guest exits other than with its out or hlt
    """
    if fcntl.ioctl(kvm, KVM_GET_API_VERSION) != KVM_API_VERSION:
        raise KvmUnusable('unexpected KVM API version')
    vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
    memory = mmap.mmap(-1, mmap.PAGESIZE)
    try:
        memory.write(TINY_GUEST)
        address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION, struct.pack(
            'IIQQQ', 0, 0, TINY_GUEST_ADDRESS, mmap.PAGESIZE, address
        ))
        vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
        try:
            return _run_vcpu(kvm, vcpu, limit_ms)
        finally:
            os.close(vcpu)
    finally:
        memory.close()
        os.close(vm)


def _run_vcpu(kvm: int, vcpu: int, limit_ms: float) -> ProbeRun:
    sregs = bytearray(KVM_SREGS_SIZE)
    fcntl.ioctl(vcpu, KVM_GET_SREGS, sregs)
    # code segment: base (u64) at 0, selector (u16) at 12
    struct.pack_into('Q', sregs, 0, 0)
    struct.pack_into('H', sregs, 12, 0)
    fcntl.ioctl(vcpu, KVM_SET_SREGS, bytes(sregs))
    regs = bytearray(KVM_REGS_SIZE)
    fcntl.ioctl(vcpu, KVM_GET_REGS, regs)
    # rip and rflags are the last two of the 18 registers; bit 1 of
    # rflags is reserved and must be set
    struct.pack_into('QQ', regs, 16 * 8, TINY_GUEST_ADDRESS, 2)
    fcntl.ioctl(vcpu, KVM_SET_REGS, bytes(regs))
    run_size = fcntl.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE)
    with mmap.mmap(vcpu, run_size, mmap.MAP_SHARED) as run:

        def enter_guest() -> int:
            fcntl.ioctl(vcpu, KVM_RUN)
            return struct.unpack_from('I', run, 8)[0]

        return run_chunks(enter_guest, limit_ms)


def run_chunks(enter_guest: Callable[[], int], limit_ms: float) -> ProbeRun:
    """
    Enter the tiny guest until it halts, or until the limit has passed
    at one of its exits between chunks: a slow guest costs the limit
    and a chunk, not the whole loop

    :param callable enter_guest: runs the vcpu, returns the exit reason
    :param float limit_ms: how long the guest may run
    :raises KvmUnusable: if the guest exits other than with its out or hlt
    """
    chunks = 0
    started = time.monotonic()
    while True:
        exit_reason = enter_guest()
        elapsed_ms = (time.monotonic() - started) * 1000
        if exit_reason == KVM_EXIT_HLT:
            return ProbeRun(chunks * CHUNK_TURNS, elapsed_ms)
        if exit_reason != KVM_EXIT_IO:
            raise KvmUnusable(f'guest exit reason {exit_reason}')
        chunks += 1
        if elapsed_ms > limit_ms:
            return ProbeRun(chunks * CHUNK_TURNS, elapsed_ms)
