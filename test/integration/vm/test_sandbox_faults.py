"""
Faults of a VM boxbuild as a CI runner deals them, with real processes:
kiwi-ng gets SIGTERM or SIGHUP (a closed terminal) while its box boots,
or SIGKILL while the job runs in the box, through each sharing backend.
Within 10 s no helper (qemu, virtiofsd, sshd and its sessions) may be
left; after SIGTERM and SIGHUP neither the private runtime dir (sockets,
the sshfs key pair), the disk overlay nor the carried files; what only
a sweep can remove after SIGKILL, a later run removes.

SIGTERM and SIGHUP take the same way out as Ctrl-C, which
test_boxbuild_vm tests while the job runs; here they come while the box
boots, which costs seconds instead of a boot. SIGKILL leaves no way out
to take: its helpers end by the kernel's parent death signal, so it
comes while the job runs, with every share in use.
"""
import os
import signal

import pytest

from harness import faults
from harness.faults import FaultRun, interrupt_leaving_nothing, start_boxbuild, wait_until
from harness.vm_boxbuild import boxbuild_argv
from kiwi_boxed_plugin.agent.kiwi_box_protocol import SHARING_BACKENDS

pytestmark = [pytest.mark.integration, pytest.mark.vm]

BACKEND_OPTIONS = {backend: [f'--{backend}-sharing'] for backend in SHARING_BACKENDS}


@pytest.fixture
def job(workdir):
    """
    The waiting job of the fault suites: the boxbuild call through a
    backend, and its target dir
    """
    description, key, target = faults.waiting_job(workdir)

    def argv(backend):
        return boxbuild_argv(
            BACKEND_OPTIONS[backend], description, target, kiwi_options=['--signing-key', key]
        )
    return argv, target


def everything_left(run: FaultRun):
    found = run.processes_left() + run.runtime_dirs() + [
        path for path in run.overlay_dirs() + [run.carried_files()] if os.path.exists(path)
    ]
    return found + faults.mounts_mentioning(run.target_dir)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGHUP], ids=['SIGTERM', 'SIGHUP'])
@pytest.mark.parametrize('backend', list(BACKEND_OPTIONS))
def test_stop_signal_while_booting_leaves_nothing(vm, workdir, job, backend, signum):
    argv, target = job
    with start_boxbuild(argv(backend), vm.environment(), workdir, target, 'boxbuild') as run:
        wait_until(run, lambda: faults.has_qemu(run), 'qemu')
        run.snapshot()
        assert run.overlay_dirs() and run.runtime_dirs()
        interrupt_leaving_nothing(run, signum, lambda: everything_left(run))


@pytest.mark.parametrize('backend', list(BACKEND_OPTIONS))
def test_sigkill_during_the_job_then_a_later_run_sweeps(vm, workdir, job, backend):
    argv, target = job
    with start_boxbuild(argv(backend), vm.environment(), workdir, target, 'killed') as run:
        wait_until(run, run.busy, 'the job')
        run.signal(signal.SIGKILL)
        assert faults.settle(run.processes_left) == []
    # what no process of the run is left to remove
    runtime_dirs, overlay_dirs = run.runtime_dirs(), run.overlay_dirs()
    assert len(runtime_dirs) == 1 and len(overlay_dirs) == 1
    assert os.path.isdir(run.carried_files())
    with open(os.path.join(run.carried_files(), 'left-by-the-killed-run'), 'w'):
        pass

    with start_boxbuild(argv(backend), vm.environment(), workdir, target, 'later') as later:
        wait_until(later, lambda: faults.has_qemu(later), 'the later run\'s qemu')
        assert not any(os.path.exists(path) for path in runtime_dirs + overlay_dirs)
        assert not os.path.exists(
            os.path.join(run.carried_files(), 'left-by-the-killed-run')
        )
        assert 'left by a boxbuild that was killed' in later.read_output()
        interrupt_leaving_nothing(later, signal.SIGTERM, lambda: everything_left(later))
