"""
Which accelerator a box runs with: KVM when it is usable, software
emulation (TCG) otherwise, and always a one-line reason.

Opening /dev/kvm does not prove KVM usable: some hosts offer a
paravirtual KVM (kvm_pvm) that opens and runs guests, but stock guest
kernels crawl about a thousand times slower there. So on x86_64 a tiny
guest is timed; it takes well under a millisecond on a working KVM.
Other arches rely on the console watchdog of the run (see run.py).
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
KVM_EXIT_HLT = 5
KVM_API_VERSION = 12
KVM_REGS_SIZE = 144
KVM_SREGS_SIZE = 312

# Real mode: mov cx, 50000; loop $; hlt
TINY_GUEST = bytes([0xB9, 0x50, 0xC3, 0xE2, 0xFE, 0xF4])
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
        return software(f'a {box_arch} box on a {host_arch} host')
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
            elapsed_ms = time_tiny_guest(descriptor)
        except (OSError, KvmUnusable) as issue:
            return software(f'{KVM_DEVICE} cannot run a tiny guest ({issue})')
    finally:
        os.close(descriptor)
    limit_ms = Defaults.get_kvm_probe_limit_ms()
    if elapsed_ms > limit_ms:
        return software(
            f'KVM runs guests far too slowly here (a tiny guest took '
            f'{elapsed_ms:.1f} ms, a working KVM needs under {limit_ms:.0f} ms)'
        )
    return Accelerator('kvm', f'{KVM_DEVICE} runs guests at full speed')


def time_tiny_guest(kvm: int) -> float:
    """
    Run a real mode loop of 50,000 turns in a fresh VM

    :param int kvm: open descriptor of /dev/kvm
    :return: milliseconds spent in KVM_RUN
    :raises KvmUnusable: if the guest does not end with its hlt
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
            return _run_vcpu(kvm, vcpu)
        finally:
            os.close(vcpu)
    finally:
        memory.close()
        os.close(vm)


def _run_vcpu(kvm: int, vcpu: int) -> float:
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
        started = time.monotonic()
        fcntl.ioctl(vcpu, KVM_RUN)
        elapsed = time.monotonic() - started
        exit_reason = struct.unpack_from('I', run, 8)[0]
    if exit_reason != KVM_EXIT_HLT:
        raise KvmUnusable(f'guest exit reason {exit_reason}')
    return elapsed * 1000
