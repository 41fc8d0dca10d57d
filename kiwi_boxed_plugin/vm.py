"""
The VM runner: one build in a box VM, from the cached box to the box's
outcome. The accelerator is chosen, the shares and the box network
opened, the job put on the kernel command line and qemu run on the
console runner; a box that stays silent under KVM is started again under
software emulation.
"""
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ContextManager, Iterator, Optional

from kiwi_boxed_plugin.accel import Accelerator, choose_accelerator, software
from kiwi_boxed_plugin.agent.kiwi_box_protocol import RESULT_CODE, BoxJob
from kiwi_boxed_plugin.box_login import (
    BOX_SSH_PORT,
    LoginKey,
    LoginPlan,
    box_login,
    plan_login,
    read_login_key,
)
from kiwi_boxed_plugin.cache import BoxCache, BoxFiles
from kiwi_boxed_plugin.box_network import (
    HOST_FROM_BOX,
    ISOLATED,
    box_network,
    check_network_tools,
    network_mode,
)
from kiwi_boxed_plugin.catalog import Box, BoxArch, BoxCatalog
from kiwi_boxed_plugin.console import Limits, RunOutcome, run_console
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.host_files import carried_files
from kiwi_boxed_plugin.package_cache import PackageProxy, package_cache_dir, package_proxy
from kiwi_boxed_plugin.qemu import (
    QEMU_ARCHES,
    BoxMachine,
    find_qemu_binary,
    kernel_cmdline,
    qemu_argv,
    snapshot_overlay,
)
from kiwi_boxed_plugin.request import BoxbuildRequest
from kiwi_boxed_plugin.result import BoxRun, clear_stale_result
from kiwi_boxed_plugin.shares import (
    ShareSetup,
    box_shares,
    check_backend_tools,
    open_sharing,
    private_runtime_dir,
)
from kiwi_plugin_support.host import host_arch

log = logging.getLogger('kiwi')


def fast_path_note(accelerator: Accelerator, same_arch: bool) -> str:
    """
    What to say beside software emulation: a build for the host's own
    architecture runs at native speed in the box's container
    """
    if accelerator.is_kvm or not same_arch:
        return ''
    return '; for this host\'s architecture, --container builds at native speed'


@dataclass
class VmBoxBuild:
    """
    One build in a box VM

    :param str qemu_binary: the qemu of the box's arch
    :param LoginKey login_key: --ssh-key, or None
    :param str network: the box network, see box_network
    """
    request: BoxbuildRequest
    box: Box
    arch: BoxArch
    qemu_binary: str
    login_key: Optional[LoginKey]
    network: str = ISOLATED

    @classmethod
    def prepare(cls, request: BoxbuildRequest) -> 'VmBoxBuild':
        """
        Every check of the host that needs no download and no process,
        so that a missing tool or box fails at once

        :raises KiwiError: a subclass with one line for every problem
        """
        login_key = read_login_key(
            request.ssh_key, os.path.expanduser('~/.ssh')
        ) if request.ssh_key else None
        box = BoxCatalog().get(request.box)
        arch = box.arch(request.arch)
        qemu_binary = find_qemu_binary(request.arch)
        check_backend_tools(request.sharing)
        network = network_mode(os.environ)
        check_network_tools(network)
        return cls(request, box, arch, qemu_binary, login_key, network)

    def run(self) -> BoxRun:
        """
        Fetch the box if needed and run the build in it
        """
        request = self.request
        accelerator = choose_accelerator(request.arch, host_arch(), request.accel)
        note = fast_path_note(accelerator, request.arch == host_arch())
        log.info(f'box accelerator: {accelerator.describe()}{note}')
        os.makedirs(request.target_dir, exist_ok=True)
        with BoxCache().use(self.box, self.arch, update_check=request.update_check) as files, \
                carried_files(request.target_dir, request.carried_files):
            started_at = time.time()
            deadline = request.run_deadline()
            outcome = self.boot(files, accelerator, deadline)
            if outcome.stalled:
                accelerator = software(
                    'the box stayed silent under KVM for '
                    f'{Defaults.get_kvm_console_silence_seconds()} s'
                )
                log.warning(f'{accelerator.reason}: starting it again under software emulation')
                outcome = self.boot(files, accelerator, deadline)
        return BoxRun(outcome, started_at, accelerator.describe())

    def boot(self, files: BoxFiles, accelerator: Accelerator, deadline: float) -> RunOutcome:
        """
        Start the box once: fresh overlay, fresh shares, no old verdict

        :param float deadline: the run's end by --box-timeout, see
            BoxbuildRequest.run_deadline
        """
        request = self.request
        clear_stale_result(request.target_dir)
        shares = box_shares(request.description, request.target_dir, request.shared_path)
        login = self.login_plan()
        with private_runtime_dir() as runtime_dir, self.system_disk(files) as disk, \
                open_sharing(
                    request.sharing, shares, QEMU_ARCHES[request.arch].bus, runtime_dir,
                    self.arch.runs_agent
                ) as sharing, \
                self.package_proxy() as proxy, \
                box_network(
                    self.network,
                    sharing.forwards.with_login(login.port, BOX_SSH_PORT).with_host_port(
                        proxy.port if proxy else 0
                    ),
                    runtime_dir
                ) as netdev, \
                box_login(login, runtime_dir, sharing.tunnel) as authorized_key:
            cmdline = kernel_cmdline(
                request.arch, self.arch.cmdline, request.box_console(self.box),
                self.job(sharing, authorized_key, proxy), emulated=not accelerator.is_kvm
            )
            machine = BoxMachine(
                arch=request.arch, accel=accelerator.name, machine=request.machine,
                cpu=request.cpu, memory_mb=request.box_memory_mb(self.box),
                cpus=request.box_cpus(self.box), kernel=files.kernel, initrd=files.initrd,
                disk=disk, interactive=request.debug, netdev=netdev,
                share_args=sharing.qemu_args, shared_memory=sharing.shared_memory,
                throwaway_disk=request.snapshot
            )
            argv = qemu_argv(self.qemu_binary, machine, cmdline)
            log.debug(f'box qemu call: {argv}')
            if request.debug:
                log.info('box debug: the console is yours; Ctrl-a x ends the box')
            limits = Limits(
                silence=Defaults.get_kvm_console_silence_seconds() if accelerator.is_kvm else 0,
                start=request.start_seconds, deadline=deadline,
                started_file=os.path.join(request.target_dir, RESULT_CODE)
            )
            return run_console(
                argv, Defaults.get_console_log(request.target_dir), request.debug, limits
            )

    def login_plan(self) -> LoginPlan:
        """
        Who logs into the box: the user with --ssh-key, and the run
        itself for sshfs sharing with a box without our agent (it needs
        the reverse tunnel of a login, see box_login)
        """
        return plan_login(
            self.request.ssh_port, self.login_key,
            self.request.sharing == 'sshfs' and not self.arch.runs_agent
        )

    def package_proxy(self) -> ContextManager[Optional[PackageProxy]]:
        """
        The package cache of the box and arch, for a box with our agent
        (the published boxes have no word for it)
        """
        cache_dir = package_cache_dir(self.box.name, self.request.arch)
        return package_proxy(
            cache_dir if self.arch.runs_agent else '', allow_loopback=self.network != ISOLATED
        )

    def job(
        self, sharing: ShareSetup, authorized_key: Optional[LoginKey],
        proxy: Optional[PackageProxy] = None
    ) -> BoxJob:
        """
        The job of the box: the request's build, shared as opened

        :param LoginKey authorized_key: the key the box authorizes for
            root's login, see box_login
        :param PackageProxy proxy: the package cache, None for none
        """
        request = self.request
        return BoxJob(
            kiwi_args=request.kiwi_args,
            sharing_backend=request.sharing,
            no_halt=request.debug,
            kiwi_version=request.kiwi_version,
            custom_mount=request.shared_path,
            ssh_port=sharing.ssh_port,
            ssh_key=authorized_key.key if authorized_key else '',
            ssh_key_type=authorized_key.key_type if authorized_key else '',
            remotes=sharing.remotes,
            package_proxy=f'http://{HOST_FROM_BOX}:{proxy.port}' if proxy else '',
        )

    @contextmanager
    def system_disk(self, files: BoxFiles) -> Iterator[str]:
        if not self.request.snapshot:
            log.warning('--no-snapshot: the build writes into the cached box disk')
            yield files.system_disk
            return
        with snapshot_overlay(files.system_disk, files.temp_dir) as overlay:
            yield overlay
