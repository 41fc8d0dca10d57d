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

from box_builder.errors import BoxBuildError
from box_builder.files import read_file
from box_builder.host_settings import carried_settings, host_ca_certificates

# boxes/debian: the recipe, the files tree, the entry point and this
# package, which all go into the hash
BOX_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))
RECIPE = os.path.join(BOX_DIR, 'recipe.toml')
FILES_TREE = os.path.join(BOX_DIR, 'root')
ENTRY_POINT = os.path.join(BOX_DIR, 'build-box')
# the flavours of the box: 'agent' is the box of recipe.toml and root/
# alone, running our agent; every other flavour is recipe.toml with the
# overrides of flavours/<name>/recipe.toml, and root/ with the files of
# flavours/<name>/root/ over it
AGENT = 'agent'
CONFORMANCE = 'conformance'
FLAVOURS = (AGENT, CONFORMANCE)
FLAVOURS_DIR = os.path.join(BOX_DIR, 'flavours')


@dataclass(frozen=True)
class Recipe:
    """
    The parsed recipe.toml
    """
    data: Dict[str, Any]
    flavour: str = AGENT

    @property
    def runs_agent(self) -> bool:
        """
        Whether the box carries our agent and its unit (else the
        flavour's files tree brings the box side)
        """
        return bool(self.data.get('flavour', {}).get('agent', True))

    @property
    def baked_root_key(self) -> bool:
        """
        Whether the box carries an ssh key pair of root's, made at
        build time, the same in every copy of the box
        """
        return bool(self.data.get('flavour', {}).get('baked_root_key', False))

    @property
    def files_trees(self) -> List[str]:
        """
        The files trees copied into the box, in order: later ones win
        """
        return [FILES_TREE] + ([flavour_tree(self.flavour)] if self.flavour != AGENT else [])

    @property
    def name(self) -> str:
        return self.data['box']['name']

    @property
    def arch(self) -> str:
        """
        The box's architecture by kiwi's name (x86_64, aarch64)
        """
        return self.data['box']['arch']

    @property
    def other_arch(self) -> bool:
        """
        Whether the box is of another architecture than the recipe's
        default, whose box files, output and container image are
        named apart
        """
        return self.arch != self.data['box']['default_arch']

    @property
    def debian_arch(self) -> str:
        return self.data['box']['debian_arch']

    @property
    def kernel_package(self) -> str:
        return self.data['box']['kernel']

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
    def root_public_key(self) -> str:
        """
        The public half of the baked root key, published beside the
        box so that a host can authorize it for a run's shares
        """
        return self.file_name('root_id_rsa.pub')

    @property
    def published(self) -> List[str]:
        """
        The box files of the catalog entry, each with a .sha256 beside it
        """
        return [self.kernel_tarball, self.system_disk]

    @property
    def unpublished(self) -> List[str]:
        """
        The other files of a complete box directory
        """
        return [self.packages_file, self.rootfs_tarball] + (
            [self.root_public_key] if self.baked_root_key else []
        )


def flavour_dir(flavour: str) -> str:
    return os.path.join(FLAVOURS_DIR, flavour)


def flavour_tree(flavour: str) -> str:
    return os.path.join(flavour_dir(flavour), 'root')


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """
    A recipe with a flavour's overrides: tables are merged key by key,
    any other value (lists too) is replaced
    """
    result = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def arch_name(data: Mapping[str, Any], arch: str) -> str:
    """
    The kiwi name of an architecture of the recipe

    :param str arch: kiwi's name (aarch64) or Debian's (arm64)
    :raises BoxBuildError: for an architecture without a table
    """
    tables = data['arch']
    for name, table in tables.items():
        if arch in (name, table['debian_arch']):
            return name
    choices = ', '.join(f"{name} ({table['debian_arch']})" for name, table in tables.items())
    raise BoxBuildError(f"the box recipe has no architecture '{arch}': choose one of {choices}")


def for_arch(data: Dict[str, Any], arch: str) -> Dict[str, Any]:
    """
    The recipe of one architecture: its table in [box]; a container
    image tagged with the architecture unless it is the default one,
    whose image keeps its published name
    """
    default = data['box']['arch']
    name = arch_name(data, arch or default)
    result = merged(data, {'box': dict(data['arch'][name], arch=name, default_arch=default)})
    if name != default:
        repository = result['catalog']['container'].rsplit(':', 1)[0]
        result['catalog'] = dict(result['catalog'], container=f'{repository}:{name}')
    return result


def load_recipe(path: str = RECIPE, flavour: str = AGENT, arch: str = '') -> Recipe:
    """
    :param str flavour: one of FLAVOURS
    :param str arch: the box's architecture (kiwi's or Debian's name),
        '' for the recipe's default
    :raises BoxBuildError: for a flavour or architecture the builder
        does not know
    """
    if flavour not in FLAVOURS:
        raise BoxBuildError(
            f"unknown box flavour '{flavour}': choose one of {', '.join(FLAVOURS)}"
        )
    with open(path, 'rb') as handle:
        data = tomllib.load(handle)
    if flavour != AGENT:
        with open(os.path.join(flavour_dir(flavour), 'recipe.toml'), 'rb') as handle:
            data = merged(data, tomllib.load(handle))
    return Recipe(for_arch(data, arch), flavour)


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


def recipe_files(flavour: str = AGENT) -> List[Tuple[str, bytes]]:
    """
    Every file that decides what the box holds, named as the hash
    knows it: the builder (entry point and package), the recipe, the
    files tree, the box side of the plugin under agent/ (the agent
    flavour) or the flavour's directory (any other flavour), and the
    host's CA certificates under host-ca/
    """
    builder = [path for path in tree_files(PACKAGE_DIR) if path.endswith('.py')]
    paths = [ENTRY_POINT, RECIPE] + tree_files(FILES_TREE) + builder
    if flavour != AGENT:
        paths += tree_files(flavour_dir(flavour))
    files = [(os.path.relpath(path, BOX_DIR), read_file(path)) for path in paths]
    if flavour == AGENT:
        for name in BOX_AGENT_FILES + (BOX_AGENT_UNIT,):
            files.append((f'agent/{name}', read_file(source_path(name))))
    for path in host_ca_certificates():
        files.append((f'host-ca/{os.path.basename(path)}', read_file(path)))
    return files


def recipe_hash(mirror: str, flavour: str = AGENT, arch: str = '') -> str:
    """
    The hash of the box this host builds from this recipe, flavour,
    architecture and mirror
    """
    recipe = load_recipe(flavour=flavour, arch=arch)
    return hash_inputs(
        recipe_files(flavour) + [('arch', recipe.arch.encode())],
        carried_settings(mirror, os.environ)
    )
