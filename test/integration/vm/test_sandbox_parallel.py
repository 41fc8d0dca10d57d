"""
Four boxbuilds at once on one host: a box VM through each sharing
backend (9p, virtiofs, sshfs) and a box container, each a quick real
job. No port, socket, runtime dir, overlay, container or result of one
reaches another, and each run leaves nothing behind.
"""
import os
import threading

import pytest

from harness import container_boxbuild, container_store, vm_boxbuild
from harness.boxbuild import run_boxbuild
from harness.descriptions import PROOF_FILE, proof_script, write_quick_description
from harness.processes import processes_mentioning

pytestmark = [pytest.mark.integration, pytest.mark.vm]

# the options of each run; the VMs get little memory, four boxes share
# the host
RUNS = {
    '9p': ('vm', ['--9p-sharing', '--box-memory', '2G']),
    'virtiofs': ('vm', ['--virtiofs-sharing', '--box-memory', '2G']),
    'sshfs': ('vm', ['--sshfs-sharing', '--box-memory', '2G']),
    'container': ('container', []),
}


@pytest.fixture(scope='module')
def container_box():
    """
    The Debian box's container image in the container tests' storage
    """
    return container_store.container_box(container_store.podman_environment())


def read(path):
    with open(path) as handle:
        return handle.read()


def test_four_at_once(vm, container_box, workdir):
    boxes = {'vm': vm, 'container': container_box}
    argv_of = {
        'vm': vm_boxbuild.boxbuild_argv, 'container': container_boxbuild.boxbuild_argv
    }
    runs = {}

    def build(name):
        kind, options = RUNS[name]
        description = write_quick_description(
            os.path.join(workdir, f'desc-{name}'),
            proof_script(f'echo {name} > /bundle/who.txt\n')
        )
        target = os.path.join(workdir, f'target-{name}')
        runs[name] = (target, run_boxbuild(
            boxes[kind], argv_of[kind](options, description, target), cwd=workdir
        ))
    threads = [threading.Thread(target=build, args=(name,)) for name in RUNS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(runs) == sorted(RUNS)
    for name, (target, completed) in runs.items():
        # kiwi in each box ran the job and rejected its description
        assert completed.returncode == 1, completed.stdout
        assert 'the build in the box failed with exit code' in completed.stdout, name
        assert 'no-such-element-kiwi-rejects' in read(os.path.join(target, 'result.log'))
        assert read(os.path.join(target, 'who.txt')) == f'{name}\n'
        assert read(os.path.join(target, PROOF_FILE)).startswith('read from the description')
        assert processes_mentioning(target) == []
    assert container_boxbuild.containers(container_box) == []
