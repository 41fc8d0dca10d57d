"""
The validated wish of one boxbuild call.

Everything the user typed (boxbuild options, the kiwi build arguments
after '--' and kiwi's global options before 'system boxbuild') is
checked here, before any box is fetched or started, and turned into
plain data for the rest of the run.
"""
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from kiwi_boxed_plugin.agent.kiwi_box_protocol import (
    SHARING_BACKENDS,
    custom_mount_problem,
    kiwi_arg_problem,
    kiwi_version_problem,
)
from kiwi_boxed_plugin.catalog import KNOWN_ARCHES, Box, parse_memory_mb
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import KiwiBoxProtocolError, KiwiBoxRequestError
from kiwi_boxed_plugin.host_files import (
    CarriedFile,
    carried_config,
    carry_build_files,
    check_local_repositories,
)
from kiwi_plugin_support.description import description_problem
from kiwi_plugin_support.host import host_arch
from kiwi_plugin_support.kiwi_args import KiwiCommandArgs

log = logging.getLogger('kiwi')

# Global kiwi options that mean the same inside the box: forwarded as
# typed. --config is carried into the box (see host_files).
FORWARDED_GLOBAL_FLAGS = ('--debug', '--color-output')
FORWARDED_GLOBAL_VALUES = ('--type', '--target-arch', '--loglevel', '--kiwi-file')
FORWARDED_GLOBAL_LISTS = ('--profile', '--setenv')

# Global kiwi options that name things of the host process: the box
# has its own log file and no screen. (--temp-dir and
# --shared-cache-dir apply to the host too, but kiwi fills in their
# defaults, so a given value cannot be told from an absent one.)
HOST_ONLY_GLOBALS = ('--logfile', '--logsocket', '--debug-run-scripts-in-screen')

# A box below this cannot run kiwi; qemu would still start it.
MINIMUM_BOX_MEMORY_MB = 512

# The variable that overrides how long a box may take to start its job
START_TIMEOUT_VARIABLE = 'KIWI_BOXED_START_TIMEOUT'


@dataclass(frozen=True)
class BoxbuildRequest:
    """
    One boxbuild call, validated

    :param str box: box name of the catalog
    :param str arch: box architecture
    :param int memory_mb: memory override in MiB, 0 for the box's
    :param int cpus: cpu override, 0 for the box's
    :param list kiwi_args: the job for the box: kiwi global options,
        'system build' and the build options without description and
        target dir, host files named by their carried copies
    :param list carried_files: host files to carry into the box
    :param str ssh_key: --ssh-key: the name (or path) of a key pair of
        the user whose public half the box authorizes for root, ''
        for none
    :param int ssh_port: --ssh-port: the port of 127.0.0.1 forwarded
        to the box's ssh port, 0 for a free one when a login is wanted
    :param bool container: --container: a box container, not a VM
    :param bool keep_image_root: --keep-image-root: the build's
        build/image-root comes back into the target dir
    :param int timeout_minutes: --box-timeout, 0 for no limit
    :param int start_seconds: how long the box may take to start its
        job
    """
    box: str
    arch: str
    memory_mb: int
    console: str
    cpus: int
    debug: bool
    kiwi_version: str
    shared_path: str
    update_check: bool
    snapshot: bool
    accel: bool
    sharing: str
    ssh_key: str
    ssh_port: int
    machine: str
    cpu: str
    description: str
    target_dir: str
    kiwi_args: Tuple[str, ...]
    carried_files: Tuple[CarriedFile, ...]
    container: bool = False
    keep_image_root: bool = False
    timeout_minutes: int = 0
    start_seconds: int = field(default_factory=Defaults.get_job_start_seconds)

    def box_memory_mb(self, box: Box) -> int:
        return self.memory_mb or box.mem_mb

    def box_cpus(self, box: Box) -> int:
        """
        The cpus of the box: the override, else what the box declares
        capped at the host's cpus, else one
        """
        if self.cpus:
            return self.cpus
        return min(box.processors or 1, os.cpu_count() or 1)

    def box_console(self, box: Box) -> str:
        return self.console or box.console

    def run_deadline(self) -> float:
        """
        The time.monotonic() by which a run that starts now must end by
        --box-timeout, 0 without one
        """
        if not self.timeout_minutes:
            return 0
        return time.monotonic() + self.timeout_minutes * 60


def build_request(
    command_args: Dict[str, Any], global_args: Dict[str, Any]
) -> BoxbuildRequest:
    """
    Validate the docopt results of 'system boxbuild' and of kiwi's
    global options

    :raises KiwiBoxRequestError: one line saying what to change
    :raises KiwiPluginArgumentError: if the kiwi build arguments are
        not valid for 'kiwi-ng system build'
    """
    build_args = KiwiCommandArgs('system build')
    tokens = list(command_args['<kiwi_build_command_args>'])
    parsed = build_args.parse(tokens)
    description = os.path.abspath(str(parsed['--description']))
    target_dir = os.path.abspath(str(parsed['--target-dir']))
    kiwi_file = global_args.get('--kiwi-file') or ''
    check_description(description, kiwi_file)
    check_target_dir(description, target_dir)
    sharing = sharing_backend(command_args)
    ssh_key = command_args.get('--ssh-key') or ''
    ssh_port = parse_port(command_args.get('--ssh-port'))
    container = bool(command_args.get('--container'))
    keep_image_root = bool(command_args.get('--keep-image-root'))
    if keep_image_root and not container:
        raise KiwiBoxRequestError(
            '--keep-image-root needs --container: a box VM cannot hand the root '
            'tree back with its owners (9p keeps them in xattrs, sshfs not at all)'
        )
    shared_path = shared_path_for_box(command_args.get('--shared-path'))
    check_local_repositories(build_args, tokens, shared_path)
    build_tokens, carried = carry_build_files(
        build_args, build_args.without(tokens, ['--description', '--target-dir'])
    )
    global_tokens = forwarded_global_args(global_args)
    config = global_args.get('--config') or ''
    if config:
        if not os.path.isfile(config):
            raise KiwiBoxRequestError(
                f'kiwi runtime config {config} not found: fix --config'
            )
        config_file = carried_config(config)
        carried = (config_file,) + carried
        global_tokens.insert(0, f'--config={config_file.box_path}')
    kiwi_args = tuple(global_tokens + ['system', 'build'] + build_tokens)
    check_carriable(kiwi_args)
    return BoxbuildRequest(
        box=command_args['--box'],
        arch=requested_arch(command_args),
        memory_mb=parse_box_memory(command_args.get('--box-memory')),
        console=parse_console(command_args.get('--box-console')),
        cpus=parse_cpus(command_args.get('--box-smp-cpus')),
        debug=bool(command_args.get('--box-debug')),
        kiwi_version=parse_kiwi_version(command_args.get('--kiwi-version')),
        shared_path=shared_path,
        update_check=not command_args.get('--no-update-check'),
        snapshot=not command_args.get('--no-snapshot'),
        accel=not command_args.get('--no-accel'),
        sharing=sharing,
        ssh_key=ssh_key,
        ssh_port=ssh_port,
        machine=command_args.get('--machine') or '',
        cpu=command_args.get('--cpu') or '',
        description=description,
        target_dir=target_dir,
        kiwi_args=kiwi_args,
        carried_files=carried,
        container=container,
        keep_image_root=keep_image_root,
        timeout_minutes=parse_timeout(command_args.get('--box-timeout')),
        start_seconds=parse_start_timeout(os.environ.get(START_TIMEOUT_VARIABLE)),
    )


def check_carriable(kiwi_args: Sequence[str]) -> None:
    """
    :raises KiwiBoxProtocolError: for an argument that the job cannot
        carry to the box
    """
    for argument in kiwi_args:
        problem = kiwi_arg_problem(argument)
        if problem:
            raise KiwiBoxProtocolError(problem)


def requested_arch(command_args: Dict[str, Any]) -> str:
    """
    --x86_64, --aarch64, --box-arch=<arch>, else the host's arch

    :raises KiwiBoxRequestError: for an arch no box can have
    """
    if command_args.get('--x86_64'):
        return 'x86_64'
    if command_args.get('--aarch64'):
        return 'aarch64'
    arch = command_args.get('--box-arch') or host_arch()
    if arch not in KNOWN_ARCHES:
        raise KiwiBoxRequestError(
            f"unknown box architecture '{arch}': use one of {', '.join(KNOWN_ARCHES)}"
        )
    return arch


def sharing_backend(command_args: Dict[str, Any]) -> str:
    for backend in SHARING_BACKENDS:
        if command_args.get(f'--{backend}-sharing'):
            return backend
    return '9p'


def whole_number(text: str, lowest: int, highest: Optional[int] = None) -> Optional[int]:
    """
    text as a whole number from lowest to highest (no upper bound when
    highest is None), None if it is none: digits only, no sign, no space
    """
    if not re.fullmatch(r'\d+', text):
        return None
    number = int(text)
    if number < lowest or (highest is not None and number > highest):
        return None
    return number


def parse_box_memory(value: Optional[str]) -> int:
    """
    --box-memory in MiB, 0 when not given

    :raises KiwiBoxRequestError: for sizes that are not sizes, too
        small for kiwi, or more than the host has
    """
    if value is None:
        return 0
    try:
        memory_mb = parse_memory_mb(value)
    except ValueError:
        raise KiwiBoxRequestError(
            f"--box-memory '{value}' is not a size: use e.g. 8G, 8096M or 8 (GiB)"
        )
    if memory_mb < MINIMUM_BOX_MEMORY_MB:
        raise KiwiBoxRequestError(
            f'--box-memory {value} is too small for a kiwi build: '
            f'give at least {MINIMUM_BOX_MEMORY_MB}M'
        )
    host_mb = host_memory_mb()
    if host_mb and memory_mb > host_mb:
        raise KiwiBoxRequestError(
            f'--box-memory {value} is more than this host has ({host_mb}M): '
            'give less'
        )
    return memory_mb


def host_memory_mb() -> int:
    try:
        pages = os.sysconf('SC_PHYS_PAGES')
        page_size = os.sysconf('SC_PAGE_SIZE')
    except (ValueError, OSError):
        return 0
    return pages * page_size // (1024 * 1024)


def parse_cpus(value: Optional[str]) -> int:
    """
    --box-smp-cpus, 0 when not given

    :raises KiwiBoxRequestError: unless a whole number from 1 to 255
    """
    if value is None:
        return 0
    cpus = whole_number(value, 1, 255)
    if cpus is None:
        raise KiwiBoxRequestError(
            f"--box-smp-cpus '{value}' is not a cpu count: give a number from 1 to 255"
        )
    if cpus > (os.cpu_count() or 1):
        log.warning(
            f'--box-smp-cpus {cpus} is more than the {os.cpu_count()} cpus of '
            'this host: the box will be slower, not faster'
        )
    return cpus


def parse_timeout(value: Optional[str]) -> int:
    """
    --box-timeout in minutes, 0 when not given

    :raises KiwiBoxRequestError: unless a whole number of minutes
    """
    if value is None:
        return 0
    number = whole_number(value, 1)
    if number is None:
        raise KiwiBoxRequestError(
            f"--box-timeout '{value}' is not a number of minutes: give a whole "
            'number from 1, e.g. 90'
        )
    return number


def parse_start_timeout(value: Optional[str]) -> int:
    """
    $KIWI_BOXED_START_TIMEOUT in seconds, the default when not set

    :raises KiwiBoxRequestError: unless a whole number of seconds
    """
    if not value:
        return Defaults.get_job_start_seconds()
    number = whole_number(value, 1)
    if number is None:
        raise KiwiBoxRequestError(
            f"{START_TIMEOUT_VARIABLE} '{value}' is not a number of seconds: set a "
            f'whole number from 1 or unset it for {Defaults.get_job_start_seconds()}'
        )
    return number


def parse_console(value: Optional[str]) -> str:
    return checked_text('--box-console', value, r'\w+', 'a tty name', 'hvc0 or ttyS0')


def parse_kiwi_version(value: Optional[str]) -> str:
    """
    --kiwi-version, '' when not given

    :raises KiwiBoxRequestError: for a version the box cannot install
    """
    if value is None:
        return ''
    if kiwi_version_problem(value):
        raise KiwiBoxRequestError(
            f"--kiwi-version '{value}' is not a kiwi version: use e.g. 10.2.3"
        )
    return value


def checked_text(option: str, value: Optional[str], pattern: str, kind: str, example: str) -> str:
    """
    A text option that must match pattern, '' when not given

    :raises KiwiBoxRequestError: naming the option and an example
    """
    if value is None:
        return ''
    if not re.fullmatch(pattern, value):
        raise KiwiBoxRequestError(f"{option} '{value}' is not {kind}: use e.g. {example}")
    return value


def parse_port(value: Optional[str]) -> int:
    """
    --ssh-port, 0 when not given (a free port is chosen then, when a
    login into the box is wanted)

    :raises KiwiBoxRequestError: unless a port a normal user can bind
    """
    if value is None:
        return 0
    number = whole_number(value, 1024, 65535)
    if number is None:
        raise KiwiBoxRequestError(
            f"--ssh-port '{value}' is not a usable port: give a number "
            'from 1024 to 65535, or leave it out for a free one'
        )
    return number


def shared_path_for_box(value: Optional[str]) -> str:
    """
    --shared-path as the absolute path the box mounts, '' when not given

    :raises KiwiBoxRequestError: if it is not an existing directory
        the box can mount at the same path
    """
    if value is None:
        return ''
    path = os.path.realpath(value)
    if not os.path.isdir(path):
        raise KiwiBoxRequestError(
            f'--shared-path {value} is not an existing directory: create it or fix the path'
        )
    if path == '/':
        raise KiwiBoxRequestError(
            '--shared-path / would hide the whole box system: share a directory below it'
        )
    if any(character.isspace() for character in path):
        raise KiwiBoxRequestError(
            f"--shared-path '{path}' contains white space, which the box "
            'protocol cannot carry: use a path without it (a symlink works)'
        )
    problem = custom_mount_problem(path)
    if problem:
        raise KiwiBoxRequestError(
            f'--shared-path {problem}: share a directory below it or elsewhere'
        )
    return path


def check_description(description: str, kiwi_file: str) -> None:
    """
    :raises KiwiBoxRequestError: if the description dir is missing,
        unreadable or has no kiwi file
    """
    problem = description_problem(description, kiwi_file)
    if problem:
        raise KiwiBoxRequestError(f'{problem}: point --description at an image description')


def check_target_dir(description: str, target_dir: str) -> None:
    """
    :raises KiwiBoxRequestError: if the target dir is the description
        dir or inside it (the build would write into its own input),
        or if this user cannot write it (or create it)
    """
    real_description = os.path.realpath(description)
    real_target = os.path.realpath(target_dir)
    if os.path.commonpath([real_description, real_target]) == real_description:
        raise KiwiBoxRequestError(
            f'target directory {target_dir} is inside the description '
            f'{description}: choose a target dir outside of it'
        )
    if os.path.exists(target_dir) and not os.path.isdir(target_dir):
        raise KiwiBoxRequestError(
            f'target {target_dir} exists and is not a directory: choose another --target-dir'
        )
    existing = target_dir
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == target_dir:
            problem = f'target directory {target_dir} is not writable for this user'
        else:
            problem = (
                f'cannot create target directory {target_dir}: '
                f'{existing} is not writable for this user'
            )
        raise KiwiBoxRequestError(
            f'{problem}: choose another --target-dir or fix the permissions'
        )


def forwarded_global_args(global_args: Dict[str, Any]) -> List[str]:
    """
    The kiwi global options that reach the build in the box, in the
    form kiwi's own usage takes them

    --config is not among them: its file is on the host, the run
    carries it into the box (see host_files).
    """
    forwarded: List[str] = []
    for name in FORWARDED_GLOBAL_FLAGS:
        if global_args.get(name):
            forwarded.append(name)
    for name in FORWARDED_GLOBAL_VALUES:
        if global_args.get(name):
            forwarded.append(f'{name}={global_args[name]}')
    for name in FORWARDED_GLOBAL_LISTS:
        for value in unique(global_args.get(name) or []):
            forwarded.append(f'{name}={value}')
    for name in HOST_ONLY_GLOBALS:
        if global_args.get(name):
            log.warning(f'{name} applies to this host only, not to the build in the box')
    return forwarded


def unique(values: Sequence[str]) -> List[str]:
    """
    The values in first-seen order without repeats: docopt-ng repeats
    values of '...' options
    """
    return list(dict.fromkeys(values))
