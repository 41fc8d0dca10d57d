"""
A boxbuild from the parsed command line to the build's result:
options -> request -> catalog -> cache -> accelerator -> shares ->
qemu -> run -> result.
"""
import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Optional

from kiwi_boxed_plugin.accel import Accelerator, choose_accelerator, software
from kiwi_boxed_plugin.catalog import Box, BoxArch, BoxCatalog
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.host_files import carried_files
from kiwi_boxed_plugin.qemu import (
    QEMU_ARCHES,
    BoxMachine,
    check_protocol_args,
    kernel_cmdline,
    qemu_argv,
)
from kiwi_boxed_plugin.request import BoxbuildRequest, build_request, host_arch
from kiwi_boxed_plugin.result import clear_stale_result, finish, summary_lines
from kiwi_boxed_plugin.run import (
    RunOutcome,
    find_qemu_binary,
    interrupt_once,
    run_box,
    snapshot_overlay,
)
from kiwi_boxed_plugin.shares import (
    LoginKey,
    box_shares,
    find_program,
    find_virtiofsd,
    open_sharing,
    private_runtime_dir,
    read_login_key,
)

log = logging.getLogger('kiwi')

# Exit status of a build ended by Ctrl-C, as a shell reports SIGINT
EXIT_INTERRUPTED = 130


def run_boxbuild(command_args: Dict[str, Any], global_args: Dict[str, Any]) -> None:
    """
    Run 'kiwi-ng system build' in a box VM (or, with --container, in
    the box's container image) and judge its result

    :raises KiwiError: a subclass with one line for every failure
    :raises SystemExit: with 130 after Ctrl-C, once nothing runs anymore
    """
    request = build_request(command_args, global_args)
    build: Callable[[], None]
    if command_args.get('--container'):
        # imported here: container mode builds on this module
        from kiwi_boxed_plugin.container import ContainerBoxBuild
        build = ContainerBoxBuild.prepare(request).run
    else:
        build = BoxBuild.prepare(request).run
    try:
        with interrupt_once():
            build()
    except KeyboardInterrupt:
        log.error(
            'boxbuild interrupted: the box and its helpers are stopped, '
            f'the partial console log is in {request.target_dir}'
        )
        sys.exit(EXIT_INTERRUPTED)


def check_sharing_tools(backend: str) -> None:
    """
    Fail before any download if the backend's host tools are missing
    """
    if backend == 'virtiofs':
        find_virtiofsd()
    elif backend == 'sshfs':
        find_program('sshd', 'openssh-server', 'for --sshfs-sharing')
        find_program('ssh-keygen', 'openssh-client', 'for --sshfs-sharing')


class BoxBuild:
    """
    One build in a box, from the cached box to the judged result

    :param LoginKey login_key: --ssh-key, or None
    """
    def __init__(
        self, request: BoxbuildRequest, box: Box, arch: BoxArch, qemu_binary: str,
        login_key: Optional[LoginKey]
    ) -> None:
        self.request = request
        self.box = box
        self.arch = arch
        self.qemu_binary = qemu_binary
        self.login_key = login_key
        self.console_log = os.path.join(request.target_dir, Defaults.get_console_log_name())

    @classmethod
    def prepare(cls, request: BoxbuildRequest) -> 'BoxBuild':
        """
        Every check that needs no download and no process, so that bad
        input fails at once

        :raises KiwiError: a subclass with one line for every problem
        """
        check_protocol_args(request.kiwi_args)
        login_key = read_login_key(
            request.ssh_key, os.path.expanduser('~/.ssh')
        ) if request.ssh_key else None
        box = BoxCatalog().get(request.box)
        arch = box.arch(request.arch)
        qemu_binary = find_qemu_binary(request.arch)
        check_sharing_tools(request.sharing)
        return cls(request, box, arch, qemu_binary, login_key)

    def run(self) -> None:
        from kiwi_boxed_plugin.cache import BoxCache
        request = self.request
        accelerator = choose_accelerator(request.arch, host_arch(), request.accel)
        log.info(f'box accelerator: {accelerator.describe()}')
        os.makedirs(request.target_dir, exist_ok=True)
        with BoxCache().use(self.box, self.arch, update_check=request.update_check) as files, \
                carried_files(request.target_dir, request.carried_files):
            started_at = time.time()
            outcome = self.boot(files, accelerator)
            if outcome.stalled:
                accelerator = software(
                    'the box stayed silent under KVM for '
                    f'{Defaults.get_kvm_console_silence_seconds()} s'
                )
                log.warning(f'{accelerator.reason}: starting it again under software emulation')
                outcome = self.boot(files, accelerator)
        finish(
            request.target_dir, self.console_log, started_at, outcome.exit_code,
            outcome.job_started
        )
        for line in summary_lines(
            request.target_dir, started_at, time.time() - started_at,
            accelerator.describe()
        ):
            log.info(line)

    def boot(self, files: Any, accelerator: Accelerator) -> RunOutcome:
        """
        Start the box once: fresh overlay, fresh shares, no old verdict
        """
        request = self.request
        clear_stale_result(request.target_dir)
        shares = box_shares(request.description, request.target_dir, request.shared_path)
        with private_runtime_dir() as runtime_dir, self.system_disk(files) as disk, \
                open_sharing(
                    request.sharing, shares, QEMU_ARCHES[request.arch].bus,
                    request.shared_path, runtime_dir, request.ssh_port, self.login_key
                ) as sharing:
            cmdline = kernel_cmdline(
                request.arch, self.arch.cmdline, request.box_console(self.box),
                sharing.kernel_args, request.kiwi_args, request.kiwi_version,
                keep_running=request.debug
            )
            machine = BoxMachine(
                arch=request.arch, accel=accelerator.name, machine=request.machine,
                cpu=request.cpu, memory_mb=request.box_memory_mb(self.box),
                cpus=request.box_cpus(self.box), kernel=files.kernel, initrd=files.initrd,
                disk=disk, interactive=request.debug
            )
            argv = qemu_argv(self.qemu_binary, machine, sharing, cmdline)
            log.debug(f'box qemu call: {argv}')
            if request.debug:
                log.info('box debug: the console is yours; Ctrl-a x ends the box')
            return run_box(
                argv, self.console_log, request.debug,
                Defaults.get_kvm_console_silence_seconds() if accelerator.is_kvm else 0
            )

    @contextmanager
    def system_disk(self, files: Any) -> Iterator[str]:
        if not self.request.snapshot:
            log.warning('--no-snapshot: the build writes into the cached box disk')
            yield files.system_disk
            return
        with snapshot_overlay(files.system_disk, files.temp_dir) as overlay:
            yield overlay
