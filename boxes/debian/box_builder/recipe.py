"""
The recipe of the box: recipe.toml parsed, the names of the box's
files, and the hash of everything that goes into the box, which keys a
build.
"""
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from kiwi_boxed_plugin.agent import BOX_AGENT_FILES, BOX_AGENT_UNIT, source_path

from box_builder.files import read_file
from box_builder.host_settings import carried_settings, host_ca_certificates

# boxes/debian: the recipe, the files tree, the entry point and this
# package, which all go into the hash
BOX_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
RECIPE = os.path.join(BOX_DIR, 'recipe.toml')
FILES_TREE = os.path.join(BOX_DIR, 'root')
ENTRY_POINT = os.path.join(BOX_DIR, 'build-box')


@dataclass(frozen=True)
class Recipe:
    """
    The parsed recipe.toml
    """
    data: Dict[str, Any]

    @property
    def name(self) -> str:
        return self.data['box']['name']

    @property
    def arch(self) -> str:
        return self.data['box']['arch']

    def file_name(self, kind: str) -> str:
        """
        :param str kind: e.g. 'Kernel.tar.xz', 'System.qcow2'
        """
        return f'{self.name}.{self.arch}-{kind}'

    @property
    def kernel_tarball(self) -> str:
        return self.file_name('Kernel.tar.xz')

    @property
    def system_disk(self) -> str:
        return self.file_name('System.qcow2')

    @property
    def packages_file(self) -> str:
        return self.file_name('System.packages')

    @property
    def rootfs_tarball(self) -> str:
        return self.file_name('rootfs.tar')

    @property
    def published(self) -> List[str]:
        """
        The box files of the catalog entry, each with a .sha256 beside it
        """
        return [self.kernel_tarball, self.system_disk]


def load_recipe(path: str = RECIPE) -> Recipe:
    with open(path, 'rb') as handle:
        return Recipe(tomllib.load(handle))


def hash_inputs(files: Sequence[Tuple[str, bytes]], host: Mapping[str, str]) -> str:
    """
    The recipe hash: every file's name and content, and the settings
    carried over from the host

    :param list files: (name, content) pairs
    :param dict host: host settings that go into the box
    """
    digest = hashlib.sha256()
    for name, content in sorted(files):
        # the lengths keep content moved between name and data from
        # giving the same hash
        digest.update(f'{name}\0{len(content)}\0'.encode())
        digest.update(content)
    digest.update(json.dumps(dict(host), sort_keys=True).encode())
    return digest.hexdigest()


def tree_files(directory: str) -> List[str]:
    """
    :return: the paths of the files below a directory, sorted
    """
    return sorted(
        os.path.join(parent, name)
        for parent, _, names in os.walk(directory) for name in names
    )


def recipe_files() -> List[Tuple[str, bytes]]:
    """
    Every file that decides what the box holds, named as the hash
    knows it: the builder (entry point and package), the recipe, the
    files tree, the box side of the plugin under agent/, and the host's
    CA certificates under host-ca/
    """
    builder = [path for path in tree_files(PACKAGE_DIR) if path.endswith('.py')]
    files = [
        (os.path.relpath(path, BOX_DIR), read_file(path))
        for path in [ENTRY_POINT, RECIPE] + tree_files(FILES_TREE) + builder
    ]
    for name in BOX_AGENT_FILES + (BOX_AGENT_UNIT,):
        files.append((f'agent/{name}', read_file(source_path(name))))
    for path in host_ca_certificates():
        files.append((f'host-ca/{os.path.basename(path)}', read_file(path)))
    return files


def recipe_hash(mirror: str) -> str:
    """
    The hash of the box this host builds from this recipe and mirror
    """
    return hash_inputs(recipe_files(), carried_settings(mirror, os.environ))
