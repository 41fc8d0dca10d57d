"""
Boxbuilds in the Debian box under qemu, with the catalog and box cache
of the VM tests, which bench.boot shares: one cached box for both.
"""
import os
import subprocess
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

from harness import boxbuild
from harness.debian_box import builder_argv
from harness.paths import TEST_STORE

STORE = os.path.join(TEST_STORE, 'vm')
# the flavours of the box builder: our agent's box, and the box that
# behaves as the published boxes do (catalog name debian-conformance)
AGENT_FLAVOUR = 'agent'
CONFORMANCE_FLAVOUR = 'conformance'


@dataclass(frozen=True)
class VmEnvironment:
    """
    The test catalog and cache the boxbuilds of the tests use
    """
    catalog: str
    cache: str

    def environment(self, **extra: str) -> Dict[str, str]:
        environment = dict(os.environ)
        environment.update(KIWI_BOXED_PLUGIN_CFG=self.catalog, KIWI_BOXED_CACHE_DIR=self.cache)
        environment.update(extra)
        return environment


def vm_box(flavour: str = AGENT_FLAVOUR, arch: str = '', **run: Any) -> VmEnvironment:
    """
    The Debian box in a catalog of the VM tests' own, built or reused
    (seconds when its recipe is unchanged)

    :param str flavour: AGENT_FLAVOUR, the box 'debian' with our agent,
        or CONFORMANCE_FLAVOUR, the box 'debian-conformance' that
        behaves as the published boxes do; each in a catalog of its own,
        so that tests of both never write one catalog at once
    :param str arch: the box's architecture, '' for the recipe's
        default (x86_64); a box of another architecture is merged into
        the same catalog entry, beside the default one
    :param dict run: more arguments of subprocess.run for the builder,
        such as stdout
    """
    os.makedirs(STORE, exist_ok=True)
    catalog = os.path.join(
        STORE, 'catalog.yml' if flavour == AGENT_FLAVOUR else f'catalog-{flavour}.yml'
    )
    subprocess.run(
        builder_argv(
            '--flavour', flavour, '--no-container', '--catalog', catalog,
            *(['--arch', arch] if arch else [])
        ),
        check=True, stdin=subprocess.DEVNULL, **run
    )
    return VmEnvironment(catalog=catalog, cache=os.path.join(STORE, 'cache'))


def boxbuild_argv(
    options: Sequence[str], description: str, target_dir: str,
    global_options: Sequence[str] = (), kiwi_options: Sequence[str] = (),
    box_name: str = 'debian'
) -> List[str]:
    """
    A boxbuild of the Debian box under software emulation

    :param str box_name: 'debian-conformance' for the box of
        CONFORMANCE_FLAVOUR
    """
    return boxbuild.boxbuild_argv(
        ['--no-accel'], options, description, target_dir,
        global_options=global_options, kiwi_options=kiwi_options, box_name=box_name
    )
