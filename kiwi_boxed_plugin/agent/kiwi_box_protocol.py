"""
kiwi-box-protocol: every word the host and a box exchange.

The host puts a job on the kernel command line of a box VM, or into
/container.cmdline of a box container; the box's agent reads it, mounts
the shared directories by their tags, runs kiwi and leaves result.code
and result.log in the bundle. This module is the one definition of that
protocol: the host's runners encode jobs with it, the agent in the box
parses them with it. It is installed into the box beside the agent, so
it uses nothing but Python's standard library.

The syntax is the published one that existing boxes read: kiwi's
arguments between the first pair of '"' after 'kiwi=', split on white
space; other values as NAME=_value_; flags as bare words.
"""
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

# Where a box mounts the shares and where kiwi builds
DESCRIPTION_DIR = '/description'
BUNDLE_DIR = '/bundle'
RESULT_DIR = '/result'

# Where a box finds its job
KERNEL_CMDLINE = '/proc/cmdline'
CONTAINER_CMDLINE = '/container.cmdline'

# Mount tags of the shares (9p mount_tag, virtiofs tag), mount order:
# the bundle first, because it is the channel that reports every later
# failure
TAG_BUNDLE = 'kiwibundle'
TAG_DESCRIPTION = 'kiwidescription'
TAG_CUSTOM = 'custompath'

# What the box leaves in the bundle, i.e. in the host's target dir
RESULT_CODE = 'result.code'
RESULT_LOG = 'result.log'

# The agent's console line when it starts kiwi: from then on the box is
# known to run well
AGENT_NAME = 'kiwi-box-agent'
JOB_STARTED = 'job started'
JOB_STARTED_LINE = f'{AGENT_NAME}: {JOB_STARTED}'

SHARING_BACKENDS = ('9p', 'virtiofs', 'sshfs')

# A word of a box's own kernel arguments (the catalog's cmdline) that
# says the box runs this agent and so reads the words of this module
# beyond the published protocol (kiwi_ssh_port, the ssh identity by
# fw_cfg). A box without it is served the published protocol alone:
# the boxes of the published catalog cannot change.
AGENT_MARK = 'kiwi_box_agent'

# Words of the command line
KIWI_WORD = 'kiwi'
NO_HALT_FLAG = 'kiwi-no-halt'
# our agent's word: leave kiwi's build/image-root in the bundle (the
# published boxes of container mode build into the bundle anyway)
KEEP_IMAGE_ROOT_FLAG = 'kiwi-keep-image-root'
SHARING_BACKEND = 'sharing_backend'
KIWI_VERSION = 'kiwi_version'
CUSTOM_MOUNT = 'custom_mount'
SSH_PORT = 'kiwi_ssh_port'
SSH_KEY = 'ssh_key'
SSH_KEY_TYPE = 'ssh_key_type'
# our agent's word: the host's package cache, an http proxy the box
# reaches at this http://<address>:<port>
PACKAGE_PROXY = 'kiwi_package_proxy'
PACKAGE_PROXY_PATTERN = r'http://\d{1,3}(\.\d{1,3}){3}:\d{1,5}'
# sshfs: host_<tag>=_user@host:/path_ names the remote of each share
REMOTE_PREFIX = 'host_'

# The run's private ssh key of sshfs sharing, as qemu's fw_cfg entry
SSH_IDENTITY_FW_CFG = 'opt/org.kiwi.boxed/ssh_identity'

# Host files the build needs travel in this directory of the bundle
# (see the host's host_files module); their names must survive the
# command line
CARRIED_FILES_DIR = '.boxbuild.files'
NOT_CARRIABLE = re.compile(r'[\s"]')

# A kiwi version as pip takes it for 'kiwi==<version>'
KIWI_VERSION_PATTERN = r'\d+(\.\d+)*([a-z0-9.+-]*)'

# Options of the kiwi job that the box sets itself
BOX_SET_OPTIONS = ('--description', '--target-dir', '--logfile')

# Directories of a box that the extra share must not hide
RESERVED_PATHS = (
    '/', DESCRIPTION_DIR, BUNDLE_DIR, RESULT_DIR, '/proc', '/sys', '/dev',
    '/run', '/etc', '/usr', '/boot', '/var', '/tmp', '/root', '/opt'
)


class ProtocolError(Exception):
    """
    Raised when a job cannot be written or read in the protocol; the
    message is one line saying what is wrong
    """


@dataclass(frozen=True)
class Share:
    """
    A host directory as the box mounts it

    :param str tag: mount tag, e.g. 'kiwibundle'
    :param str target: where it is mounted in the box
    :param str remote: for sshfs, 'user@host:/path' on the host
    """
    tag: str
    target: str
    remote: str = ''


@dataclass(frozen=True)
class BoxJob:
    """
    The job of one box run

    :param tuple kiwi_args: kiwi's global options, 'system build' and
        the build options, without description and target dir
    :param str sharing_backend: one of SHARING_BACKENDS; '' where the
        box mounts nothing itself (a container)
    :param bool no_halt: the box stays up after the job
    :param str kiwi_version: pip-install this kiwi first, '' for none
    :param str custom_mount: the extra share's path, '' for none
    :param int ssh_port: sshfs: the port of the host's sshd, 0 for 22
    :param str ssh_key: a public key to authorize for root's login
    :param dict remotes: sshfs: mount tag -> 'user@host:/path'
    :param bool keep_image_root: leave build/image-root of the build
        in the bundle, as it is (owners, modes, links, xattrs)
    :param str package_proxy: the URL of the host's package cache,
        '' for none
    """
    kiwi_args: Tuple[str, ...]
    sharing_backend: str = ''
    no_halt: bool = False
    kiwi_version: str = ''
    custom_mount: str = ''
    ssh_port: int = 0
    ssh_key: str = ''
    ssh_key_type: str = ''
    remotes: Dict[str, str] = field(default_factory=dict)
    keep_image_root: bool = False
    package_proxy: str = ''

    @property
    def shares(self) -> List[Share]:
        """
        The shares in mount order
        """
        wanted = [(TAG_BUNDLE, BUNDLE_DIR), (TAG_DESCRIPTION, DESCRIPTION_DIR)]
        if self.custom_mount:
            wanted.append((TAG_CUSTOM, self.custom_mount))
        return [Share(tag, target, self.remotes.get(tag, '')) for tag, target in wanted]


def bundle_path(name: str) -> str:
    """
    The box path of a file of the bundle
    """
    return f'{BUNDLE_DIR}/{name}'


def carried_file_path(name: str) -> str:
    """
    The box path of a carried host file, e.g. '1/key.asc'
    """
    return bundle_path(f'{CARRIED_FILES_DIR}/{name}')


def carriable_name(name: str) -> str:
    """
    A file name that the command line can carry: white space and '"'
    replaced
    """
    return NOT_CARRIABLE.sub('_', name)


def kiwi_arg_problem(argument: str) -> str:
    """
    Why an argument for kiwi cannot travel in the job, '' if it can

    The box takes kiwi's arguments from between the first pair of '"'
    and splits them on white space.
    """
    if '"' in argument:
        return (
            f'the argument {argument} contains a \'"\', which the box protocol '
            'cannot carry: leave it out or set it in the description'
        )
    if not argument or any(character.isspace() for character in argument):
        return (
            f"the argument '{argument}' is empty or contains white space, which the "
            'box protocol cannot carry: set it in the description instead'
        )
    return ''


def custom_mount_problem(path: str) -> str:
    """
    Why a path cannot be the extra share of a box, '' if it can: it must
    be absolute, a single word, and hide no directory of the box
    """
    if not path.startswith('/'):
        return f"'{path}' is not an absolute path"
    if NOT_CARRIABLE.search(path):
        return f"'{path}' contains white space or '\"', which the box protocol cannot carry"
    normalized = normalize_path(path)
    for reserved in RESERVED_PATHS:
        if normalized == reserved or (
            reserved in (DESCRIPTION_DIR, BUNDLE_DIR, RESULT_DIR)
            and normalized.startswith(reserved + '/')
        ):
            return f"'{path}' would hide the box's {reserved}"
    return ''


def normalize_path(path: str) -> str:
    normalized = os.path.normpath(path)
    # POSIX keeps a leading '//' as it is
    return normalized[1:] if normalized.startswith('//') else normalized


def kiwi_version_problem(version: str) -> str:
    """
    Why a text is no kiwi version the box can install, '' if it is
    """
    if re.fullmatch(KIWI_VERSION_PATTERN, version):
        return ''
    return f"'{version}' is not a kiwi version"


def mark(value: object) -> str:
    """
    A value in the protocol's '_..._' marks
    """
    return f'_{value}_'


def unmark(value: str) -> str:
    """
    A value without the protocol's '_..._' marks
    """
    if len(value) >= 2 and value.startswith('_') and value.endswith('_'):
        return value[1:-1]
    return value


def job_words(job: BoxJob) -> List[str]:
    """
    The job as command line words, kiwi's arguments last

    :raises ProtocolError: if a value cannot be carried
    """
    for argument in job.kiwi_args:
        problem = kiwi_arg_problem(argument)
        if problem:
            raise ProtocolError(problem)
    parameters: List[Tuple[str, object]] = []
    if job.sharing_backend:
        parameters.append((SHARING_BACKEND, job.sharing_backend))
    if job.custom_mount:
        parameters.append((CUSTOM_MOUNT, job.custom_mount))
    for share in job.shares:
        if share.remote:
            parameters.append((REMOTE_PREFIX + share.tag, share.remote))
    if job.ssh_port:
        parameters.append((SSH_PORT, job.ssh_port))
    if job.ssh_key:
        parameters += [(SSH_KEY, job.ssh_key), (SSH_KEY_TYPE, job.ssh_key_type)]
    if job.kiwi_version:
        parameters.append((KIWI_VERSION, job.kiwi_version))
    if job.package_proxy:
        parameters.append((PACKAGE_PROXY, job.package_proxy))
    words = []
    for name, value in parameters:
        if NOT_CARRIABLE.search(str(value)) or not str(value):
            raise ProtocolError(
                f"the value '{value}' of {name} is empty or contains white space or "
                "'\"', which the box protocol cannot carry"
            )
        words.append(f'{name}={mark(value)}')
    if job.no_halt:
        words.append(NO_HALT_FLAG)
    if job.keep_image_root:
        words.append(KEEP_IMAGE_ROOT_FLAG)
    words.append('{0}="{1}"'.format(KIWI_WORD, ' '.join(job.kiwi_args)))
    return words


def encode_job(job: BoxJob, leading_words: Sequence[str] = ()) -> str:
    """
    The command line of a job

    :param list leading_words: words the box's kernel needs before the
        job, e.g. root= and console=
    :raises ProtocolError: if a value cannot be carried
    """
    return ' '.join(list(leading_words) + job_words(job))


def split_cmdline(text: str) -> Tuple[List[str], Dict[str, str], List[str]]:
    """
    Split a command line into kiwi's arguments and the other words

    :return: kiwi arguments, NAME=value parameters (marks removed) and
        flags (words without '=')
    :raises ProtocolError: if there is no kiwi="..." or it is not closed
    """
    opening = text.find('"')
    closing = text.find('"', opening + 1) if opening >= 0 else -1
    if opening < 0 or not text[:opening].endswith(f'{KIWI_WORD}='):
        raise ProtocolError('the command line carries no kiwi="..." job')
    if closing < 0:
        raise ProtocolError('the kiwi="..." job on the command line is not closed')
    kiwi_args = text[opening + 1:closing].split()
    rest = text[:opening - len(f'{KIWI_WORD}=')] + ' ' + text[closing + 1:]
    parameters: Dict[str, str] = {}
    flags: List[str] = []
    for word in rest.split():
        if '=' in word:
            key, value = word.split('=', 1)
            parameters[key] = unmark(value)
        else:
            flags.append(word)
    return kiwi_args, parameters, flags


def has_job(text: str) -> bool:
    """
    Whether a command line carries a job at all (a box booted by hand
    has none)
    """
    return f'{KIWI_WORD}=' in text


def no_halt_requested(text: str) -> bool:
    """
    Whether the job asks the box to stay up: the flag as a word of its
    own outside kiwi's arguments, so that a package named kiwi-no-halt
    in the build does not count
    """
    try:
        return NO_HALT_FLAG in split_cmdline(text)[2]
    except ProtocolError:
        return False


def parse_job(text: str) -> BoxJob:
    """
    The job a command line describes

    :raises ProtocolError: naming the first problem found
    """
    kiwi_args, parameters, flags = split_cmdline(text)
    check_kiwi_job(kiwi_args)
    backend = parameters.get(SHARING_BACKEND, '')
    if backend and backend not in SHARING_BACKENDS:
        raise ProtocolError(
            f"unknown {SHARING_BACKEND} '{backend}': expected one of "
            f"{', '.join(SHARING_BACKENDS)}"
        )
    kiwi_version = parameters.get(KIWI_VERSION, '')
    if kiwi_version and kiwi_version_problem(kiwi_version):
        raise ProtocolError(f'{KIWI_VERSION} {kiwi_version_problem(kiwi_version)}')
    package_proxy = parameters.get(PACKAGE_PROXY, '')
    if package_proxy and not re.fullmatch(PACKAGE_PROXY_PATTERN, package_proxy):
        raise ProtocolError(f"{PACKAGE_PROXY} '{package_proxy}' is not http://<address>:<port>")
    custom_mount = parameters.get(CUSTOM_MOUNT, '')
    if custom_mount:
        problem = custom_mount_problem(custom_mount)
        if problem:
            raise ProtocolError(f'{CUSTOM_MOUNT} {problem}: share another path')
        custom_mount = normalize_path(custom_mount)
    job = BoxJob(
        kiwi_args=tuple(kiwi_args),
        sharing_backend=backend,
        no_halt=no_halt_requested(text),
        kiwi_version=kiwi_version,
        custom_mount=custom_mount,
        ssh_port=parse_port(parameters.get(SSH_PORT)),
        ssh_key=parameters.get(SSH_KEY, ''),
        ssh_key_type=parameters.get(SSH_KEY_TYPE, ''),
        remotes={
            tag: parameters[REMOTE_PREFIX + tag]
            for tag in (TAG_BUNDLE, TAG_DESCRIPTION, TAG_CUSTOM)
            if parameters.get(REMOTE_PREFIX + tag)
        },
        keep_image_root=KEEP_IMAGE_ROOT_FLAG in flags,
        package_proxy=package_proxy,
    )
    if backend == 'sshfs':
        for share in job.shares:
            if not re.fullmatch(r'[^@\s]+@[^:\s]+:/\S*', share.remote):
                raise ProtocolError(
                    f'sshfs needs {REMOTE_PREFIX}{share.tag}=_user@host:/path_ '
                    'on the command line'
                )
    return job


def parse_port(text: Optional[str]) -> int:
    """
    :raises ProtocolError: for a port that is no port
    """
    if text is None:
        return 0
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ProtocolError(f"{SSH_PORT} '{text}' is not a port number")
    return int(text)


def check_kiwi_job(kiwi_args: Sequence[str]) -> None:
    """
    :raises ProtocolError: if the arguments are not a 'system build' or
        set a directory that the box sets itself
    """
    if not kiwi_args:
        raise ProtocolError('the kiwi="..." job on the command line is empty')
    # global options before the command may take values ('--type tbz'),
    # so the command is found as adjacent words, not by position
    if ('system', 'build') not in zip(kiwi_args, kiwi_args[1:]):
        raise ProtocolError(
            f"the kiwi job must be 'system build', got: {' '.join(kiwi_args)}"
        )
    for argument in kiwi_args:
        name = argument.split('=', 1)[0]
        if name in BOX_SET_OPTIONS:
            raise ProtocolError(f'the kiwi job must not set {name}: the box sets it')


def is_job_word(word: str) -> bool:
    """
    Whether a word of the command line is one the job is read from: a
    box's own kernel arguments must not be, or they would become part of
    every job (a key to authorize, a share, the no-halt flag)
    """
    name = word.split('=', 1)[0]
    return name.startswith(REMOTE_PREFIX) or name in (
        KIWI_WORD, NO_HALT_FLAG, SHARING_BACKEND, KIWI_VERSION, CUSTOM_MOUNT, SSH_PORT,
        SSH_KEY, SSH_KEY_TYPE, KEEP_IMAGE_ROOT_FLAG, PACKAGE_PROXY
    )
