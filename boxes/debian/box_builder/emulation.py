"""
Running another architecture's programs in the chroot of the build:
qemu-user through binfmt_misc, set up for the build and taken down
after it, so that the host is left as it was found.

The handler must carry binfmt_misc's F flag: the kernel opens the
interpreter when the handler is registered, so that it runs in a chroot
that has no qemu of its own.
"""
import logging
import os
import platform
import re
from contextlib import contextmanager
from typing import Iterator, Optional

from kiwi_boxed_plugin.binfmt import BINFMT_DIR, Handler, parse_handler

from box_builder.errors import BoxBuildError
from box_builder.files import read_file
from box_builder.mounts import unmount
from box_builder.programs import run

log = logging.getLogger('build-box')

# the handlers of Debian's qemu-user-static, in systemd's binfmt.d
# format: :name:type:offset:magic:mask:interpreter:flags
QEMU_RULES_DIR = '/usr/lib/binfmt.d'
# the name of a handler of ours: kiwi-box-<arch>-<pid of the build>
OUR_HANDLER = re.compile(r'kiwi-box-(?P<arch>[\w]+)-(?P<pid>\d+)')


def usable_in_chroot(handler: Optional[Handler]) -> bool:
    return bool(handler and handler.enabled and 'F' in handler.flags)


def renamed_rule(rule: str, name: str) -> str:
    """
    A binfmt.d rule under another name: its first field, between the
    first two colons (the rule's own delimiter)

    :raises BoxBuildError: for a line that is no rule
    """
    rule = rule.strip()
    delimiter = rule[:1]
    fields = rule.split(delimiter) if delimiter else []
    if len(fields) < 8 or 'F' not in fields[7]:
        raise BoxBuildError(
            f'the qemu-user handler rule is not what qemu-user-static ships ({rule.strip()!r}): '
            'reinstall qemu-user-static'
        )
    fields[1] = name
    return delimiter.join(fields)


@contextmanager
def binfmt_mounted(directory: str = BINFMT_DIR) -> Iterator[None]:
    """
    binfmt_misc mounted for the block; unmounted after only if it was
    not mounted before
    """
    if os.path.exists(os.path.join(directory, 'register')):
        yield
        return
    run(['mount', '-t', 'binfmt_misc', 'binfmt_misc', directory])
    try:
        yield
    finally:
        unmount(directory)


def remove_handler(name: str, directory: str = BINFMT_DIR) -> None:
    # writing -1 to a handler's file removes it
    with open(os.path.join(directory, name), 'w') as handler:
        handler.write('-1')


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def sweep_stale_handlers(directory: str = BINFMT_DIR) -> None:
    """
    Remove the handlers of builds that were killed before they could
    remove theirs (SIGKILL): named OUR_HANDLER, their process gone
    """
    for name in os.listdir(directory):
        match = OUR_HANDLER.fullmatch(name)
        if match and not process_alive(int(match.group('pid'))):
            log.info('removing the binfmt handler %s of a killed build', name)
            remove_handler(name, directory)


@contextmanager
def registered_handler(rule: str, name: str, directory: str = BINFMT_DIR) -> Iterator[None]:
    """
    A handler of ours registered for the block and removed after it
    """
    with open(os.path.join(directory, 'register'), 'w') as register:
        register.write(renamed_rule(rule, name))
    try:
        yield
    finally:
        remove_handler(name, directory)


@contextmanager
def user_emulation(
    arch: str, host: str = '', rules_dir: str = QEMU_RULES_DIR, directory: str = BINFMT_DIR
) -> Iterator[None]:
    """
    Programs of arch runnable in a chroot for the block: nothing to do
    on a host of that arch; else the host's own qemu handler if it is
    usable in a chroot, or one of ours for the time of the block (named
    after this process, so that builds of two users never meet)

    :param str arch: the box's architecture, kiwi's name
    :param str host: the host's architecture, this machine's if ''
    :raises BoxBuildError: if qemu-user-static is missing
    """
    host = host or platform.machine()
    if arch == host:
        yield
        return
    rule_file = os.path.join(rules_dir, f'qemu-{arch}.conf')
    if not os.path.isfile(rule_file):
        raise BoxBuildError(
            f'building a {arch} box on this {host} host runs its programs through qemu-user: '
            f'install qemu-user-static (no {rule_file})'
        )
    with binfmt_mounted(directory):
        sweep_stale_handlers(directory)
        host_handler = os.path.join(directory, f'qemu-{arch}')
        if os.path.exists(host_handler) and usable_in_chroot(
            parse_handler(f'qemu-{arch}', read_file(host_handler).decode())
        ):
            log.info("%s programs run through the host's binfmt handler qemu-%s", arch, arch)
            yield
            return
        name = f'kiwi-box-{arch}-{os.getpid()}'
        log.info('%s programs run through qemu-user, binfmt handler %s for this build', arch, name)
        with registered_handler(read_file(rule_file).decode(), name, directory):
            yield
