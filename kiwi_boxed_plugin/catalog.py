"""
The box catalog: which boxes exist, with which arches and files.

The packaged kiwi_boxed_plugin.yml lists the published boxes. The first
user catalog found ($KIWI_BOXED_PLUGIN_CFG, ~/.config/kiwi/..., /etc/...)
adds boxes or replaces packaged ones of the same name.
"""
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote, urlsplit
from urllib.request import pathname2url

import yaml

from kiwi_boxed_plugin.agent.kiwi_box_protocol import AGENT_MARK, is_job_word
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxArchNotFoundError,
    KiwiBoxCatalogError,
    KiwiBoxNotFoundError,
)

log = logging.getLogger('kiwi')

KNOWN_ARCHES = ('x86_64', 'aarch64', 's390x', 'ppc64', 'ppc64le')

# box names become directory names in the cache: no separators, and no
# leading dot so they never meet the cache's own hidden entries
BOX_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._+-]{0,63}')

# box files and packages files become names in the box's cache directory
# and the last part of their URLs: no separator, no leading dot (the
# cache's own entries), nothing a URL reads as a query or an escape
FILE_NAME = re.compile(r'[A-Za-z0-9_+][A-Za-z0-9._+-]{0,199}')

# a kernel argument the box protocol carries as it is: printable ASCII,
# no white space and no '"' (the job is read from between the first pair)
KERNEL_ARGUMENT = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*(=[\x21\x23-\x7e]+)?')

# a tty name for console= on the kernel command line
CONSOLE = re.compile(r'[A-Za-z0-9_]{1,32}')

# a fully qualified image reference: the registry host (podman never
# makes a short-name lookup for it), lower-case path components, a tag
# and/or a digest; it starts with a letter or digit, never like an option
_HOST_LABEL = r'[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?'
_REGISTRY = (
    rf'(?:localhost(?::[0-9]+)?|{_HOST_LABEL}(?:\.{_HOST_LABEL})+(?::[0-9]+)?'
    rf'|{_HOST_LABEL}:[0-9]+)'
)
_PATH_COMPONENT = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
IMAGE_REFERENCE = re.compile(
    rf'{_REGISTRY}(?:/{_PATH_COMPONENT})+(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?'
    r'(?:@sha256:[a-f0-9]{64})?'
)

# beyond any host a box runs on; a bare number means GiB, so a catalog
# written 'mem_mb: 8096' asks for 8 TiB and is refused
MAX_MEMORY_MB = 1 << 20
MAX_PROCESSORS = 1024


@dataclass(frozen=True)
class BoxArch:
    """
    One architecture of a box: its files and how to boot it
    """
    name: str
    cmdline: Tuple[str, ...]
    source: str
    packages_file: str
    boxfiles: Tuple[str, ...]
    container: str
    use_initrd: bool
    # the catalog entry allows a plain http source: box files and
    # checksums then come over a channel anyone on the way can change
    allow_http: bool = False

    def url(self, obs_download_url: str) -> str:
        """
        The base URL of the box files, ending in '/'

        :param str obs_download_url: server of obs:// sources
        """
        return source_url(self.source, obs_download_url)

    @property
    def runs_agent(self) -> bool:
        """
        Whether the box runs our agent, which reads more of the job
        than the published protocol (its kernel arguments carry
        AGENT_MARK); the published boxes do not
        """
        return AGENT_MARK in self.cmdline

    @property
    def kernel_tarball(self) -> str:
        return self._boxfile('.tar.xz')

    @property
    def system_disk(self) -> str:
        return self._boxfile('.qcow2')

    @property
    def boot_files(self) -> Tuple[str, str]:
        """
        The names the kernel and initrd are extracted to, beside the box files
        """
        return f'kernel.{self.name}', f'initrd.{self.name}'

    @property
    def cache_names(self) -> Tuple[str, ...]:
        """
        Every name this arch takes in the box's cache directory
        """
        if not self.boxfiles:
            return ()
        return self.boxfiles + ((self.packages_file,) if self.packages_file else ()) + \
            self.boot_files

    def _boxfile(self, suffix: str) -> str:
        for name in self.boxfiles:
            if name.endswith(suffix):
                return name
        return ''


@dataclass(frozen=True)
class Box:
    """
    A box of the catalog

    :param int mem_mb: memory in MiB
    :param int processors: declared cpus, 0 when the box does not say
    """
    name: str
    mem_mb: int
    processors: int
    console: str
    arches: Tuple[BoxArch, ...]
    origin: str

    @property
    def arch_names(self) -> List[str]:
        return [arch.name for arch in self.arches]

    def arch(self, name: str) -> BoxArch:
        """
        :raises KiwiBoxArchNotFoundError: if the box lacks that arch
        """
        for arch in self.arches:
            if arch.name == name:
                return arch
        raise KiwiBoxArchNotFoundError(
            f"box '{self.name}' is not offered for {name}; "
            f"it has: {', '.join(self.arch_names)}"
        )


class BoxCatalog:
    """
    The merged catalog of packaged and user boxes

    :param str packaged: path of the packaged catalog
    :param list user_candidates: user catalog paths, first found wins
    """
    def __init__(
        self, packaged: Optional[str] = None,
        user_candidates: Optional[List[str]] = None
    ) -> None:
        self.packaged = packaged or Defaults.get_packaged_catalog()
        candidates = Defaults.get_user_catalog_candidates() \
            if user_candidates is None else user_candidates
        self.user_file = next(
            (path for path in candidates if os.path.isfile(path)), ''
        )
        self.boxes: Dict[str, Box] = {
            box.name: box for box in load_catalog_file(self.packaged)
        }
        if self.user_file:
            for box in load_catalog_file(self.user_file):
                self.boxes[box.name] = box

    def get(self, name: str) -> Box:
        """
        :raises KiwiBoxNotFoundError: naming the known boxes
        """
        if name not in self.boxes:
            raise KiwiBoxNotFoundError(
                f"unknown box '{name}'; known boxes: {', '.join(self.boxes)}"
            )
        return self.boxes[name]


def load_catalog_file(path: str) -> List[Box]:
    """
    Read and validate one catalog file

    :raises KiwiBoxCatalogError: naming the file, box and field
    """
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except OSError as issue:
        raise KiwiBoxCatalogError(
            f'cannot read box catalog {path}: {issue.strerror}'
        )
    except yaml.YAMLError as issue:
        mark = getattr(issue, 'problem_mark', None)
        where = f' at line {mark.line + 1}' if mark else ''
        raise KiwiBoxCatalogError(
            f'box catalog {path} is not valid YAML{where}: fix or remove it'
        )
    if not isinstance(data, dict) or not isinstance(data.get('box'), list):
        raise KiwiBoxCatalogError(
            f"box catalog {path}: expected a top level list 'box:'"
        )
    boxes: List[Box] = []
    for index, entry in enumerate(data['box']):
        box = _parse_box(path, index, entry)
        if box.name in [known.name for known in boxes]:
            raise KiwiBoxCatalogError(
                f"box catalog {path}: box '{box.name}' is listed twice"
            )
        boxes.append(box)
    return boxes


def source_url(source: str, obs_download_url: str) -> str:
    """
    The base URL, ending in '/', of the directory that holds a box's files

    Sources are obs://PROJECT/REPO (on the given download server, with
    the build service's ':' to ':/' project path), http:// and https://
    URLs, file:// URLs and plain absolute paths; the last two become
    file:// URLs so local boxes take the same download and verify path.

    :raises ValueError: naming what is wrong with the source
    """
    if source.startswith('/'):
        if not source.isprintable():
            raise ValueError('must not contain control characters')
        return 'file://' + pathname2url(os.path.normpath(source)).rstrip('/') + '/'
    if source and not re.fullmatch(r'[\x21-\x7e]+', source):
        raise ValueError('must be a URL of printable ASCII, spaces written as %20')
    parts = urlsplit(source)
    if parts.query or parts.fragment:
        raise ValueError('must not carry a query or fragment')
    if parts.scheme == 'obs':
        path = (parts.netloc + parts.path).strip('/').split('/')
        if len(path) < 2 or '' in path or '..' in path:
            raise ValueError('must be obs://PROJECT/REPOSITORY')
        project = '/'.join(path[:-1]).replace(':', ':/')
        return '/'.join(
            [obs_download_url.rstrip('/'), quote(project, safe='/:'), quote(path[-1])]
        ) + '/'
    if parts.scheme in ('http', 'https'):
        if not parts.hostname:
            raise ValueError(f'is a {parts.scheme} URL without a host')
        try:
            parts.port
        except ValueError:
            raise ValueError(f'is a {parts.scheme} URL with an invalid port')
        return source.rstrip('/') + '/'
    if parts.scheme == 'file':
        if parts.netloc not in ('', 'localhost') or not parts.path.startswith('/'):
            raise ValueError('must be file:///ABSOLUTE/PATH')
        return f'file://{parts.path.rstrip("/")}/'
    raise ValueError(
        'must be obs://PROJECT/REPOSITORY, an http(s):// or file:// URL, '
        'or an absolute path'
    )


def parse_memory_mb(value: Any) -> int:
    """
    Turn a memory size into MiB

    Accepts what catalogs and users write: 8096M, 8G, 8GB, 512MiB,
    and a bare number, which means GiB (as --box-memory documents).

    :raises ValueError: if the value is not a positive size
    """
    text = str(value).strip()
    match = re.fullmatch(r'([0-9]+)\s*([MG]?)(?:i?B)?', text, re.IGNORECASE)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f'not a memory size: {value!r}')
    number, unit = int(match.group(1)), match.group(2).upper()
    return number if unit == 'M' else number * 1024


def _parse_box(path: str, index: int, entry: Any) -> Box:
    if not isinstance(entry, dict):
        raise KiwiBoxCatalogError(
            f'box catalog {path}: box entry {index + 1} is not a mapping'
        )
    name = entry.get('name')
    if not isinstance(name, str) or not BOX_NAME.fullmatch(name):
        raise KiwiBoxCatalogError(
            f"box catalog {path}: box entry {index + 1} needs a 'name' of up to 64 "
            "letters, digits, '.', '_', '+' or '-'"
        )

    def fail(field: str, problem: str) -> KiwiBoxCatalogError:
        return KiwiBoxCatalogError(
            f"box catalog {path}: box '{name}', field '{field}' {problem}"
        )
    try:
        mem_mb = parse_memory_mb(entry.get('mem_mb'))
    except ValueError:
        mem_mb = 0
    if not 0 < mem_mb <= MAX_MEMORY_MB:
        raise fail('mem_mb', 'must be a memory size such as 8096M or 8G, at most 1024G')
    processors = entry.get('processors', 0)
    # bool is an int to Python: 'processors: true' must not pass as 1
    if type(processors) is not int or not 0 <= processors <= MAX_PROCESSORS:
        raise fail(
            'processors', f'must be a positive whole number of at most {MAX_PROCESSORS}'
        )
    console = entry.get('console', 'hvc0')
    if not isinstance(console, str) or not CONSOLE.fullmatch(console):
        raise fail('console', 'must be a tty name such as hvc0')
    arches = entry.get('arch')
    if not isinstance(arches, list) or not arches:
        raise fail('arch', 'must be a non-empty list')
    parsed = tuple(_parse_arch(fail, arch) for arch in arches)
    names = [arch.name for arch in parsed]
    for arch_name in names:
        if names.count(arch_name) > 1:
            raise fail('arch', f'lists {arch_name} twice')
    _check_cache_names(fail, parsed)
    return Box(
        name=name, mem_mb=mem_mb, processors=processors, console=console,
        arches=parsed, origin=path
    )


def _parse_arch(fail: Any, entry: Any) -> BoxArch:
    if not isinstance(entry, dict) or entry.get('name') not in KNOWN_ARCHES:
        raise fail('arch', f"needs entries named one of {', '.join(KNOWN_ARCHES)}")
    arch = entry['name']

    def field(key: str, kind: type, default: Any = None) -> Any:
        value = entry.get(key, default)
        if not isinstance(value, kind):
            raise fail(f'arch[{arch}].{key}', f'must be a {kind.__name__}')
        return value
    cmdline = field('cmdline', list, [])
    boxfiles = field('boxfiles', list, [])
    for item in cmdline + boxfiles:
        if not isinstance(item, str) or not item or any(c.isspace() for c in item):
            raise fail(f'arch[{arch}]', f'has an empty or spaced list item {item!r}')
    for item in cmdline:
        if not KERNEL_ARGUMENT.fullmatch(item):
            raise fail(
                f'arch[{arch}].cmdline',
                'must hold kernel arguments NAME or NAME=VALUE of printable ASCII '
                f'without \'"\': {item!r}'
            )
        if is_job_word(item):
            raise fail(
                f'arch[{arch}].cmdline', f'must not set {item!r}: the job sets that word'
            )
    packages_file = field('packages_file', str, '')
    for boxfile in boxfiles + ([packages_file] if packages_file else []):
        if not FILE_NAME.fullmatch(boxfile):
            raise fail(
                f'arch[{arch}].boxfiles', f'must be plain file names of letters, digits, '
                f"'.', '_', '+' and '-', not starting with '.': {boxfile!r}"
            )
    container = field('container', str, '')
    if container and not IMAGE_REFERENCE.fullmatch(container):
        raise fail(
            f'arch[{arch}].container',
            'must be a full image reference such as registry.example/path/name:tag, '
            f'not {container!r}'
        )
    source = field('source', str, '')
    if boxfiles:
        for suffix, what in (('.qcow2', 'system disk'), ('.tar.xz', 'kernel tarball')):
            if len([name for name in boxfiles if name.endswith(suffix)]) != 1:
                raise fail(
                    f'arch[{arch}].boxfiles', f'needs exactly one {what} (*{suffix})'
                )
        try:
            # only the form counts here: the obs server is asked for
            # (from kiwi's runtime config) when a box is fetched
            source_url(source, 'https://obs.invalid')
        except ValueError as issue:
            raise fail(f'arch[{arch}].source', str(issue))
    elif not container:
        raise fail(f'arch[{arch}]', "needs 'boxfiles' with a 'source', or a 'container'")
    return BoxArch(
        name=arch,
        cmdline=tuple(cmdline),
        source=source,
        packages_file=packages_file,
        boxfiles=tuple(boxfiles),
        container=container,
        use_initrd=field('use_initrd', bool, False),
        allow_http=field('allow_http', bool, False),
    )


def _check_cache_names(fail: Any, arches: Tuple[BoxArch, ...]) -> None:
    """
    The arches of a box share its cache directory: every file there needs
    a name of its own, or one would be written over another (a packages
    file, fetched unverified, over the verified system disk)
    """
    taken: List[str] = []
    for arch in arches:
        for name in arch.cache_names:
            if name in taken:
                raise fail(f'arch[{arch.name}]', f'names the file {name} twice in the box')
            taken.append(name)
