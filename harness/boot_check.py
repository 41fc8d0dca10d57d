"""
Does a built disk image boot? qemu starts it (KVM when it is usable,
software emulation otherwise), its serial console goes to a file, and
the check waits, with a bound, for the login prompt there; a failure
carries the tail of the console.

The workflow tests and the benchmarks share it.
"""
import os
import re
import subprocess
import time
from dataclasses import dataclass
from typing import List

from kiwi_boxed_plugin.accel import choose_accelerator
from kiwi_plugin_support.host import host_arch

# a generous bound for one boot under software emulation on a loaded
# host (a small Debian reaches its login prompt in 1-3 minutes here);
# it only keeps a hung guest from hanging the suite
BOOT_TIMEOUT = 900

# what getty prints on the serial console: '<hostname> login: '
LOGIN_PROMPT = re.compile(rb'[^\s]+ login: ')

# lines of the console a failure quotes
TAIL_LINES = 40

POLL_SECONDS = 1


class BootCheckError(AssertionError):
    """
    The disk did not boot to a login prompt; the message ends with the
    tail of its console
    """


@dataclass(frozen=True)
class BootOutcome:
    """
    :param float seconds: from qemu's start to the login prompt
    :param str accelerator: 'kvm' or 'tcg'
    :param str console: path of the console log
    """
    seconds: float
    accelerator: str
    console: str


def console_tail(path: str, lines: int = TAIL_LINES) -> str:
    """
    The last lines of a console log, control characters dropped
    """
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError as issue:
        return f'(no console log: {issue.strerror})'
    text = data.decode('utf-8', errors='replace').replace('\r', '')
    text = re.sub(r'\x1b\[[0-9;?]*[A-Za-z]', '', text)
    return '\n'.join(text.splitlines()[-lines:]) or '(the console stayed empty)'


def qemu_argv(disk: str, console: str, accelerator: str) -> List[str]:
    """
    qemu for a BIOS boot of disk as a throw-away snapshot (the image
    stays as built), its first serial port into the console file

    :param str accelerator: 'kvm' or 'tcg'
    """
    disk_format = 'qcow2' if disk.endswith('.qcow2') else 'raw'
    return [
        'qemu-system-x86_64', '-nodefaults', '-no-user-config', '-display', 'none',
        '-no-reboot', '-machine', 'pc', '-accel', accelerator,
        '-cpu', 'host' if accelerator == 'kvm' else 'max',
        '-m', '1024', '-smp', '1',
        '-drive', f'file={disk},if=virtio,format={disk_format},snapshot=on',
        '-chardev', f'file,id=serial0,path={console}', '-serial', 'chardev:serial0',
    ]


def boot_to_login(disk: str, console: str, timeout: float = BOOT_TIMEOUT) -> BootOutcome:
    """
    Boot disk and wait for the login prompt on its serial console

    :param str disk: the disk image, raw or .qcow2
    :param str console: file the serial console is written to; qemu's
        own messages go to console + '.qemu'
    :param float timeout: seconds to wait for the prompt
    :raises BootCheckError: if qemu ends or the prompt does not show in
        time, with the console's tail
    """
    if not os.path.isfile(disk):
        raise BootCheckError(f'no disk image {disk} to boot')
    accelerator = choose_accelerator('x86_64', host_arch(), allow_kvm=True)
    if os.path.exists(console):
        os.unlink(console)
    started = time.monotonic()
    with open(console + '.qemu', 'wb') as qemu_log:
        vm = subprocess.Popen(
            qemu_argv(disk, console, accelerator.name),
            stdin=subprocess.DEVNULL, stdout=qemu_log, stderr=subprocess.STDOUT
        )
    try:
        while True:
            elapsed = time.monotonic() - started
            if os.path.exists(console):
                with open(console, 'rb') as handle:
                    if LOGIN_PROMPT.search(handle.read()):
                        return BootOutcome(elapsed, accelerator.name, console)
            if vm.poll() is not None:
                with open(console + '.qemu', errors='replace') as handle:
                    qemu_said = handle.read().strip()[-2000:]
                raise BootCheckError(
                    f'{disk}: qemu ended with exit code {vm.returncode} before a login '
                    f'prompt ({accelerator.describe()}); qemu said: {qemu_said or "nothing"}'
                    f'\nconsole tail:\n{console_tail(console)}'
                )
            if elapsed > timeout:
                raise BootCheckError(
                    f'{disk}: no login prompt on the serial console after {timeout:.0f} s '
                    f'({accelerator.describe()})\nconsole tail:\n{console_tail(console)}'
                )
            time.sleep(POLL_SECONDS)
    finally:
        if vm.poll() is None:
            vm.kill()
            vm.wait()
