"""
Faults of a container boxbuild as a CI runner deals them, with real
processes: kiwi-ng gets SIGTERM, SIGHUP (a closed terminal) or SIGKILL
while the job runs in the box container. Within 10 s no process of the
run, no container, no container mount, no private runtime dir (the job
file) and no carried file may be left after SIGTERM and SIGHUP; after
SIGKILL no process of the run, and a later run removes the container
and the rest.

The box builds into a staging dir of the run inside the target dir
(the carried files in it): the job's busy file is there while it runs,
and a killed run's staging dir is a leftover a later run removes.
"""
import glob
import os
import signal

import pytest

from harness.container_boxbuild import boxbuild_argv, containers
from harness.faults import (
    BUSY_FILE,
    FaultRun,
    interrupt_leaving_nothing,
    mounts_mentioning,
    settle,
    start_boxbuild,
    wait_until,
    waiting_job,
)
from harness.podman import podman

pytestmark = pytest.mark.integration


@pytest.fixture
def job(workdir):
    """
    The waiting job of the fault suites: the boxbuild call and its
    target dir
    """
    description, key, target = waiting_job(workdir)
    return boxbuild_argv([], description, target) + ['--signing-key', key], target


def staging_dirs(target: str):
    return glob.glob(os.path.join(target, 'kiwi-boxbuild-*'))


def busy_file(target: str) -> str:
    """
    The job's busy file in the run's staging dir, '' before it is there
    """
    found = glob.glob(os.path.join(target, 'kiwi-boxbuild-*', BUSY_FILE))
    return found[0] if found else ''


def merged_dir(box, name: str) -> str:
    """
    Where podman mounted the container's root on the host
    """
    return podman(
        box.podman, 'inspect', '--format', '{{.GraphDriver.Data.MergedDir}}', name
    ).stdout.strip()


def everything_left(box, run: FaultRun, container_root: str):
    found = run.processes_left() + containers(box) + run.runtime_dirs()
    found += staging_dirs(run.target_dir)
    if os.path.exists(run.carried_files()):
        found.append(run.carried_files())
    return found + mounts_mentioning(container_root) + mounts_mentioning(run.target_dir)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGHUP], ids=['SIGTERM', 'SIGHUP'])
def test_stop_signal_during_the_job_leaves_nothing(box, workdir, job, signum):
    argv, target = job
    with start_boxbuild(argv, box.environment(), workdir, target, 'boxbuild') as run:
        wait_until(run, lambda: bool(busy_file(target)), 'the job')
        [name] = containers(box)
        container_root = merged_dir(box, name)
        assert mounts_mentioning(container_root) and run.runtime_dirs()
        interrupt_leaving_nothing(
            run, signum, lambda: everything_left(box, run, container_root)
        )


def test_sigkill_during_the_job_then_a_later_run_sweeps(box, workdir, job):
    argv, target = job
    with start_boxbuild(argv, box.environment(), workdir, target, 'killed') as run:
        wait_until(run, lambda: bool(busy_file(target)), 'the job')
        [name] = containers(box)
        container_root = merged_dir(box, name)
        run.signal(signal.SIGKILL)
        assert settle(run.processes_left) == []
    # what no process of the run is left to remove
    runtime_dirs = run.runtime_dirs()
    assert len(runtime_dirs) == 1 and containers(box) == [name]
    [killed_staging] = staging_dirs(target)
    # the carried signing key is in the killed run's staging dir
    assert os.listdir(os.path.join(killed_staging, '.boxbuild.files'))
    with open(os.path.join(killed_staging, 'left-by-the-killed-run'), 'w'):
        pass
    killed_busy = busy_file(target)

    with start_boxbuild(argv, box.environment(), workdir, target, 'later') as later:
        wait_until(later, lambda: name not in containers(box), 'the sweep of the container')
        assert mounts_mentioning(container_root) == []
        wait_until(
            later, lambda: busy_file(target) not in ('', killed_busy), 'the later job'
        )
        assert not any(os.path.exists(path) for path in runtime_dirs)
        assert not os.path.exists(killed_staging)
        assert f'removing box container {name}, left by a boxbuild that was killed' \
            in later.read_output()
        [later_name] = containers(box)
        later_root = merged_dir(box, later_name)
        interrupt_leaving_nothing(
            later, signal.SIGTERM, lambda: everything_left(box, later, later_root)
        )
