"""
Boxbuilds in the Debian box's container image under podman, with the
podman storage and catalog of the container tests.
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence

from harness import boxbuild
from harness.paths import KIWI_NG
from harness.podman import podman


@dataclass(frozen=True)
class ContainerEnvironment:
    """
    The podman environment and box catalog the boxbuilds of the tests
    use
    """
    podman: Dict[str, str]
    catalog: str

    def environment(self, **extra: str) -> Dict[str, str]:
        return {**self.podman, 'KIWI_BOXED_PLUGIN_CFG': self.catalog, **extra}


def containers(box: ContainerEnvironment) -> List[str]:
    """
    Names of every container in the tests' storage, running or not
    """
    return podman(box.podman, 'ps', '--all', '--format', '{{.Names}}').stdout.split()


def boxbuild_argv(
    options: Sequence[str], description: str, target_dir: str,
    global_options: Sequence[str] = (), box_name: str = 'debian', kiwi_ng: str = KIWI_NG
) -> List[str]:
    """
    A boxbuild in the container of box_name
    """
    return boxbuild.boxbuild_argv(
        ['--container'], options, description, target_dir,
        global_options=global_options, box_name=box_name, kiwi_ng=kiwi_ng
    )
