"""
What podman as installed on this host needs per run to start a box
container, worked out from the host and podman's own configuration,
never by editing that configuration.

Two things stop a Debian 12 podman as installed (measured):

- ulimits: a rootful container gets RLIMIT_NOFILE 1048576 unless
  containers.conf says otherwise, and RLIMIT_NPROC from
  default_ulimits, which podman fills with /proc/sys/kernel/pid_max
  (lowering its own hard limit to that). Root without
  CAP_SYS_RESOURCE cannot raise a hard limit, so the OCI runtime fails
  with "error setting rlimit". A --ulimit on podman's command line
  replaces the whole default_ulimits list, so once one is passed all
  must be: the configured ones as they are, the missing nofile and
  nproc fitted to the host.
- the runtime: crun (podman's first choice when installed) refuses
  hybrid cgroups ("cgroups in hybrid mode not supported"); runc runs
  on them.

What the user's containers.conf sets explicitly (CONTAINERS_CONF, or
the system files podman reads) is kept as it is.
"""
import glob
import logging
import os
import re
import resource
import shutil
import tomllib
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

log = logging.getLogger('kiwi')

# podman's rootful default of both limits (RLimitDefaultValue)
PODMAN_DEFAULT_LIMIT = 1048576
# the limits podman would set beyond the host's, by --ulimit name
ULIMIT_RESOURCES = {'nofile': resource.RLIMIT_NOFILE, 'nproc': resource.RLIMIT_NPROC}
PID_MAX = '/proc/sys/kernel/pid_max'

# containers.conf as podman reads it for root: CONTAINERS_CONF alone,
# else these files in order, later ones overriding earlier ones
SYSTEM_CONTAINERS_CONF = (
    '/usr/share/containers/containers.conf', '/etc/containers/containers.conf'
)
SYSTEM_CONTAINERS_CONF_DIR = '/etc/containers/containers.conf.d'

# CAP_SYS_RESOURCE of <linux/capability.h>: raises hard rlimits
CAP_SYS_RESOURCE = 24

# the runtime that runs on every cgroup layout, and the one that does
# not run on hybrid cgroups
RUNC = 'runc'
CRUN = 'crun'
RUNC_PLACES = (
    '/usr/bin/runc', '/usr/sbin/runc', '/usr/local/bin/runc', '/usr/local/sbin/runc',
    '/sbin/runc', '/bin/runc', '/usr/lib/cri-o-runc/sbin/runc'
)
CGROUP_ROOT = '/sys/fs/cgroup'


@dataclass(frozen=True)
class ContainersConf:
    """
    What the containers.conf files podman reads set, of what matters
    here

    :param list default_ulimits: [containers] default_ulimits, None if
        no file sets it
    :param str runtime: [engine] runtime, '' if no file sets it
    """
    default_ulimits: Optional[List[str]] = None
    runtime: str = ''


@dataclass(frozen=True)
class PodmanRunOptions:
    """
    :param list global_options: podman options before the command,
        e.g. ['--runtime', 'runc']
    :param list create_options: options of 'podman create' and 'run'
    """
    global_options: List[str]
    create_options: List[str]


def containers_conf_paths(environ: Mapping[str, str], conf_dir_files: Sequence[str]) -> List[str]:
    """
    The containers.conf files podman reads as root, in order

    :param list conf_dir_files: the *.conf files of containers.conf.d
    """
    explicit = environ.get('CONTAINERS_CONF')
    if explicit:
        return [explicit]
    return list(SYSTEM_CONTAINERS_CONF) + sorted(conf_dir_files)


def merge_containers_conf(documents: Sequence[Dict[str, Any]]) -> ContainersConf:
    """
    The settings of parsed containers.conf files, later ones winning
    """
    ulimits: Optional[List[str]] = None
    runtime = ''
    for document in documents:
        containers = document.get('containers')
        if isinstance(containers, dict) and isinstance(containers.get('default_ulimits'), list):
            ulimits = [str(entry) for entry in containers['default_ulimits']]
        engine = document.get('engine')
        if isinstance(engine, dict) and isinstance(engine.get('runtime'), str):
            runtime = engine['runtime']
    return ContainersConf(ulimits, runtime)


def read_containers_conf(paths: Sequence[str]) -> ContainersConf:
    """
    The settings of the files that exist and parse; podman itself
    reports a broken one
    """
    documents = []
    for path in paths:
        try:
            with open(path, 'rb') as handle:
                documents.append(tomllib.load(handle))
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError) as issue:
            log.debug(f'cannot read {path} for podman\'s settings: {issue}')
    return merge_containers_conf(documents)


def ulimit_name(entry: str) -> str:
    return entry.split('=', 1)[0].strip()


def ulimit_hard(entry: str) -> Optional[int]:
    """
    The hard limit of a default_ulimits entry 'name=soft:hard' or
    'name=value'; -1 for unlimited; None if it is none of these
    """
    match = re.fullmatch(r'\s*\w+\s*=\s*(-?\d+)(?::(-?\d+))?\s*', entry)
    if not match:
        return None
    return int(match.group(2) if match.group(2) is not None else match.group(1))


def podman_limit(resource_name: str, configured: Optional[Sequence[str]], pid_max: int,
                 host_hard: int, can_raise: bool) -> int:
    """
    The hard limit podman gives a container of resource_name without
    --ulimit; -1 for unlimited
    """
    for entry in configured if configured is not None else builtin_ulimits(
        pid_max, host_hard, can_raise
    ):
        if ulimit_name(entry) == resource_name:
            hard = ulimit_hard(entry)
            if hard is not None:
                return hard
    return PODMAN_DEFAULT_LIMIT


def builtin_ulimits(pid_max: int, nproc_hard: int, can_raise: bool) -> List[str]:
    """
    podman's default_ulimits when no containers.conf sets them: nproc
    at pid_max, else at podman's default, if podman can set that on
    itself, else none
    """
    for value in (pid_max, PODMAN_DEFAULT_LIMIT):
        if value and (can_raise or fits(value, nproc_hard)):
            return [f'nproc={value}:{value}']
    return []


def fits(value: int, ceiling: int) -> bool:
    """
    Whether a hard limit value (-1: unlimited) is within ceiling (-1:
    unlimited)
    """
    if ceiling < 0:
        return True
    return 0 <= value <= ceiling


def ulimit_ceilings(host_hard: Mapping[str, int], pid_max: int) -> Dict[str, int]:
    """
    The highest hard limit a container can get per resource, -1 for no
    bound: the host's hard limit; for nproc no more than pid_max, to
    which podman lowers its own
    """
    ceilings = dict(host_hard)
    nproc = ceilings.get('nproc', -1)
    if pid_max and (nproc < 0 or pid_max < nproc):
        ceilings['nproc'] = pid_max
    return ceilings


def ulimit_options(
    configured: Optional[Sequence[str]], host_hard: Mapping[str, int], pid_max: int,
    can_raise: bool
) -> List[str]:
    """
    The --ulimit options a box container needs, [] when podman's own
    limits fit this host

    :param list configured: containers.conf default_ulimits, None if
        no file sets them
    :param dict host_hard: the host's hard limit per ULIMIT_RESOURCES
        name, -1 for unlimited
    :param bool can_raise: podman may raise limits (CAP_SYS_RESOURCE)
    """
    if can_raise:
        return []
    ceilings = ulimit_ceilings(host_hard, pid_max)
    too_high = [
        name for name in ULIMIT_RESOURCES if not fits(
            podman_limit(name, configured, pid_max, host_hard.get('nproc', -1), can_raise),
            ceilings.get(name, -1)
        )
    ]
    if not too_high:
        return []
    kept = list(configured or [])
    named = {ulimit_name(entry) for entry in kept}
    for name in too_high:
        if name in named:
            log.warning(
                f'containers.conf sets the ulimit {name} beyond what root may raise on '
                f'this host ({ceilings[name]}): podman may fail to start the box container'
            )
    options = []
    for entry in kept:
        options += ['--ulimit', entry]
    for name in ULIMIT_RESOURCES:
        if name not in named:
            value = ceilings.get(name, -1)
            options += ['--ulimit', f'{name}={value}:{value}']
    return options


def runtime_options(
    configured_runtime: str, podman_runtime: str, cgroup_unified: bool, runc_installed: bool
) -> List[str]:
    """
    The podman global options that pick the OCI runtime, [] to keep
    podman's choice

    :param str podman_runtime: the runtime podman picked (podman info)
    """
    if configured_runtime or cgroup_unified or not runc_installed:
        return []
    if os.path.basename(podman_runtime) != CRUN:
        return []
    return ['--runtime', RUNC]


def has_capability(status: str, number: int, euid: int) -> bool:
    """
    Whether podman started by this process holds a capability: root's
    effective set, else (podman through sudo) what sudo can give at
    most, the bounding set

    :param str status: /proc/self/status
    """
    field = 'CapEff' if euid == 0 else 'CapBnd'
    for line in status.splitlines():
        if line.startswith(f'{field}:'):
            return bool(int(line.split(':', 1)[1].strip(), 16) >> number & 1)
    return False


def cgroup_is_unified(mountinfo: str) -> bool:
    """
    Whether /sys/fs/cgroup is cgroup v2 alone (not v1, not hybrid)

    :param str mountinfo: /proc/self/mountinfo
    """
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == CGROUP_ROOT and ' - ' in line:
            return line.split(' - ', 1)[1].split()[0] == 'cgroup2'
    return False


def host_hard_limits() -> Dict[str, int]:
    limits = {}
    for name, number in ULIMIT_RESOURCES.items():
        hard = resource.getrlimit(number)[1]
        limits[name] = -1 if hard == resource.RLIM_INFINITY else hard
    return limits


def read_text(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ''


def runc_installed() -> bool:
    return bool(shutil.which(RUNC)) or any(os.access(path, os.X_OK) for path in RUNC_PLACES)


def detect_run_options(podman_runtime: str, environ: Mapping[str, str]) -> PodmanRunOptions:
    """
    The options this host's podman needs to start a box container

    :param str podman_runtime: the runtime podman picked, '' if unknown
    """
    conf = read_containers_conf(containers_conf_paths(
        environ, glob.glob(os.path.join(SYSTEM_CONTAINERS_CONF_DIR, '*.conf'))
    ))
    pid_max_text = read_text(PID_MAX).strip()
    create = ulimit_options(
        conf.default_ulimits, host_hard_limits(),
        int(pid_max_text) if pid_max_text.isdigit() else 0,
        has_capability(read_text('/proc/self/status'), CAP_SYS_RESOURCE, os.geteuid())
    )
    global_options = runtime_options(
        conf.runtime, podman_runtime, cgroup_is_unified(read_text('/proc/self/mountinfo')),
        runc_installed()
    )
    if create or global_options:
        log.info(f'podman options this host needs: {" ".join(global_options + create)}')
    return PodmanRunOptions(global_options, create)
