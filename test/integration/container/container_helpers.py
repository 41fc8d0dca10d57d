"""
Helpers of the container integration tests: the tests' podman and
catalog, container boxbuild calls. Process and console helpers are
those of the VM tests.
"""
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Dict, List, Sequence

# the VM and box tests' modules and the suites' shared helpers, shared
# rather than copied
for sibling in ('vm', 'box', ''):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', sibling))

from box_harness import description_copy  # noqa: E402
from vm_helpers import (  # noqa: E402
    BOX_BUILDER,
    HANG_GUARD_SECONDS,
    KIWI_NG,
    REPOSITORY,
    interrupt,
    processes,
    run_boxbuild,
    wait_for_text,
)

__all__ = [
    'BOX_BUILDER', 'HANG_GUARD_SECONDS', 'REPOSITORY', 'description_copy', 'interrupt',
    'processes', 'run_boxbuild', 'wait_for_text',
]

STORE = '/var/cache/kiwi-plugins-test/container'
CONSOLE_LOG = 'boxbuild.console.log'


@dataclass(frozen=True)
class ContainerEnvironment:
    """
    The podman environment and box catalog the boxbuilds of the tests
    use (run_boxbuild of the VM tests takes it for their VmEnvironment)
    """
    podman: Dict[str, str]
    catalog: str

    def environment(self, **extra: str) -> Dict[str, str]:
        return {**self.podman, 'KIWI_BOXED_PLUGIN_CFG': self.catalog, **extra}


def podman(environment: Dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ['podman'] + list(args), env=environment, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, text=True
    )


def containers(box: ContainerEnvironment) -> List[str]:
    """
    Names of every container in the tests' storage, running or not
    """
    return podman(box.podman, 'ps', '--all', '--format', '{{.Names}}').stdout.split()


def boxbuild_argv(
    options: Sequence[str], description: str, target_dir: str,
    global_options: Sequence[str] = (), box_name: str = 'debian', kiwi_ng: str = KIWI_NG
) -> List[str]:
    return [kiwi_ng] + list(global_options) + [
        'system', 'boxbuild', '--box', box_name, '--container'
    ] + list(options) + ['--', '--description', description, '--target-dir', target_dir]


def leftovers(text: str) -> List[List[str]]:
    """
    Host processes whose arguments mention text (a container name, a
    target dir)
    """
    return [
        argv for pid, argv in processes().items()
        if pid != os.getpid() and any(text in word for word in argv)
    ]
