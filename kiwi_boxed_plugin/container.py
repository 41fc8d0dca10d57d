"""
The container runner: one build in the box's container image under
podman, a sibling of the VM runner that speaks the same protocol and
hands back the same outcome for judging.

In our agent's images the agent is the container's command (PID 1),
not systemd: systemd in a container wants a TTY for the agent's console
and more privileges, while the agent run directly needs neither, its
stdout is the console stream and its exit status the container's. Being
PID 1 also keeps the agent out of reach of the Ctrl-C that is passed to
kiwi inside (see stop_container), so the agent still writes the verdict.

A published box's image runs its own entry point, systemd, whose unit
reads /container.cmdline; its console is the container's terminal
(--tty), and it ends the container with 'reboot -f'.

Both build into an empty staging dir inside the target dir, mounted as
/bundle (a published box empties its /bundle), whose results are moved
over afterwards (see staging).
"""
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Iterator, List, Mapping, Sequence

from kiwi_boxed_plugin.agent import BOX_AGENT_DIR
from kiwi_boxed_plugin.agent.kiwi_box_protocol import (
    BUNDLE_DIR,
    CARRIED_FILES_DIR,
    CONTAINER_CMDLINE,
    DESCRIPTION_DIR,
    RESULT_CODE,
    BoxJob,
    encode_job,
)
from kiwi_boxed_plugin.binfmt import emulation_problem
from kiwi_boxed_plugin.box_network import ISOLATED, network_mode, podman_network
from kiwi_boxed_plugin.catalog import Box, BoxArch, BoxCatalog
from kiwi_boxed_plugin import staging
from kiwi_boxed_plugin.console import Limits, RunOutcome, run_console
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxContainerError,
    KiwiBoxContainerImageError,
    KiwiBoxContainerRootError,
    KiwiBoxRequestError,
    KiwiBoxStagingError,
)
from kiwi_boxed_plugin.host_files import carried_files
from kiwi_boxed_plugin.leftovers import made_by_gone_run, run_dir, run_name_prefix
from kiwi_boxed_plugin.podman_host import PodmanRunOptions, detect_run_options
from kiwi_boxed_plugin.request import BoxbuildRequest
from kiwi_boxed_plugin.result import BoxRun, WrittenCode, clear_stale_result, read_result_code
from kiwi_boxed_plugin.target_files import create_file, remove_entry
from kiwi_plugin_support.host import find_program, host_arch
from kiwi_plugin_support.lifetime import parent_death_signal, run_alive, run_identity
from kiwi_plugin_support.text import last_line

log = logging.getLogger('kiwi')

# The agent as boxes/debian installs it, run by the box's python3
AGENT_COMMAND = ('/usr/bin/python3', f'{BOX_AGENT_DIR}/kiwi_box_agent.py')
# What the agent's systemd unit would set; HOME for pip and kiwi
AGENT_ENVIRONMENT = ('PYTHONUNBUFFERED=1', 'LANG=C.UTF-8', 'HOME=/root')
# With --box-debug the container outlives the agent for the shell
KEEPER_COMMAND = ('sleep', 'infinity')
DEBUG_SHELL = ('/bin/bash', '--login')

# How a published box's container ends itself: 'reboot -f' of systemd
# as PID 1 ends it as by SIGHUP (measured: 129), a poweroff as by
# SIGINT; the verdict is in result.code then
SELF_ENDED_EXIT_CODES = (128 + signal.SIGHUP, 128 + signal.SIGINT)

# The moves of the staging dir as root in a helper container of the box
# image (see staging), for a user whose podman runs through sudo
STAGING_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'staging.py')
HELPER_PYTHON = '/usr/bin/python3'
HELPER_SCRIPT = '/kiwi-boxbuild-staging.py'
HELPER_TARGET = '/kiwi-boxbuild-target'

# kiwi's default shared cache location, used by kiwi in the box
BOX_KIWI_CACHE = '/var/cache/kiwi'

# sudo resets the environment; these select podman's configuration
# and storage, which the user chose on purpose
PODMAN_ENVIRONMENT = ('CONTAINERS_CONF', 'CONTAINERS_STORAGE_CONF', 'CONTAINERS_REGISTRIES_CONF')

# A reference podman can only find in its own storage, never pull
LOCAL_REFERENCE_PREFIX = 'localhost/'

# After Ctrl-C kiwi gets this long to unmount and detach its loop
# devices before the container is killed: kiwi needs a second or two,
# and a CI runner that sends SIGTERM kills for good some seconds later
INTERRUPT_GRACE_SECONDS = 5
# How long 'podman rm' waits for a stop before it kills: not at all, a
# container still running then had its grace (the agent as PID 1
# ignores podman's SIGTERM anyway)
REMOVE_STOP_SECONDS = 0

# The label of every box container: the identity of the run that made
# it, so that a later run removes it once that run is gone
RUN_LABEL = 'org.kiwi.boxbuild.run'

# What ensure_image does with the box's image
PULL = 'pull'
USE_LOCAL = 'use-local'
MISSING_LOCAL = 'missing-local'


@dataclass(frozen=True)
class ContainerMount:
    """
    A host directory or file bind-mounted into the box container
    """
    source: str
    destination: str
    read_only: bool

    def option(self) -> str:
        """
        The value of podman's --mount: fields of a CSV line, so a
        path with ',', '"', ':' or spaces is quoted, never split
        """
        fields = ['type=bind', f'source={self.source}', f'destination={self.destination}']
        if self.read_only:
            fields.append('ro')
        return ','.join(csv_field(field) for field in fields)


def csv_field(field: str) -> str:
    if any(character in field for character in ',"\r\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def podman_prefix(
    podman: str, euid: int, sudo: str, interactive: bool, environ: Mapping[str, str]
) -> List[str]:
    """
    How podman is called: directly as root, else through sudo

    A privileged container with loop devices and device nodes needs
    root; rootless podman cannot give that.

    :param str sudo: path of sudo, '' if it is not installed
    :param bool interactive: a terminal can answer a sudo password
        prompt; without one sudo must fail instead of waiting
    :raises KiwiBoxContainerRootError: not root and no sudo
    """
    if euid == 0:
        return [podman]
    if not sudo:
        raise KiwiBoxContainerRootError(
            'container mode runs a privileged podman container, which needs root: '
            'run boxbuild as root (sudo is not installed)'
        )
    prefix = [sudo]
    if not interactive:
        prefix.append('--non-interactive')
    preserved = [name for name in PODMAN_ENVIRONMENT if environ.get(name)]
    if preserved:
        prefix.append('--preserve-env=' + ','.join(preserved))
    return prefix + ['--', podman]


def image_action(present: bool, update_check: bool, reference: str) -> str:
    """
    Pull the box's image, use the local one, or report it missing

    A localhost/ reference exists only in local storage: no registry
    can serve or update it.
    """
    local_only = reference.startswith(LOCAL_REFERENCE_PREFIX)
    if present:
        return PULL if update_check and not local_only else USE_LOCAL
    return MISSING_LOCAL if local_only else PULL


def ignored_vm_options(request: BoxbuildRequest) -> List[str]:
    """
    The options given that only a box VM uses
    """
    given = [
        ('--box-memory', bool(request.memory_mb)),
        ('--box-console', bool(request.console)),
        ('--box-smp-cpus', bool(request.cpus)),
        ('--no-snapshot', not request.snapshot),
        ('--no-accel', not request.accel),
        (f'--{request.sharing}-sharing', request.sharing != '9p'),
        ('--ssh-key', bool(request.ssh_key)),
        ('--ssh-port', bool(request.ssh_port)),
        ('--machine', bool(request.machine)),
        ('--cpu', bool(request.cpu)),
    ]
    return [name for name, is_given in given if is_given]


def check_container_arch(arch: str, host: str) -> None:
    """
    A box of the host's arch runs natively; one of another arch only
    through qemu-user, which binfmt_misc must offer for it

    :raises KiwiBoxContainerError: naming what the host lacks
    """
    if arch == host:
        return
    problem = emulation_problem(arch)
    if problem:
        raise KiwiBoxContainerError(
            f'the box is {arch}, the host {host}: its container runs through qemu-user, but '
            f'{problem}: install qemu-user-static (with binfmt_misc mounted), or leave out '
            f'--container to run the {arch} box as a VM'
        )
    log.info(
        f'the {arch} box container runs through qemu-user (binfmt_misc): every program in '
        'it is emulated'
    )


def container_cmdline(
    kiwi_args: Sequence[str], kiwi_version: str, runs_agent: bool = True,
    debug: bool = False, keep_image_root: bool = False
) -> str:
    """
    The job for /container.cmdline: no sharing backend, podman mounts
    the directories

    Our agent gets no halt, its container ends with it and has no
    system to power off, and the image root word when asked. A
    published box gets the published words only: kiwi-no-halt with
    --box-debug (its systemd stays up for the shell), and never the
    image root word (it builds into the bundle anyway).
    """
    if runs_agent:
        job = BoxJob(
            kiwi_args=tuple(kiwi_args), no_halt=True, kiwi_version=kiwi_version,
            keep_image_root=keep_image_root
        )
    else:
        job = BoxJob(kiwi_args=tuple(kiwi_args), no_halt=debug, kiwi_version=kiwi_version)
    return encode_job(job) + '\n'


def container_mounts(
    description: str, bundle_dir: str, cmdline_file: str, shared_path: str,
    kiwi_cache: str, carried_dir: str = ''
) -> List[ContainerMount]:
    """
    :param str bundle_dir: the staging dir the box builds into
    :param str kiwi_cache: host's kiwi shared cache, '' to not share it
    :param str carried_dir: the carried files in the bundle dir, ''
        for none: mounted read-only over themselves, so that a box
        that empties its /bundle cannot remove them
    """
    mounts = [
        ContainerMount(description, DESCRIPTION_DIR, read_only=True),
        ContainerMount(bundle_dir, BUNDLE_DIR, read_only=False),
        ContainerMount(cmdline_file, CONTAINER_CMDLINE, read_only=True),
    ]
    if carried_dir:
        mounts.append(
            ContainerMount(carried_dir, f'{BUNDLE_DIR}/{CARRIED_FILES_DIR}', read_only=True)
        )
    if kiwi_cache:
        mounts.append(ContainerMount(kiwi_cache, BOX_KIWI_CACHE, read_only=False))
    if shared_path:
        mounts.append(ContainerMount(shared_path, shared_path, read_only=False))
    return mounts


def create_argv(
    podman: Sequence[str], name: str, image: str, mounts: Sequence[ContainerMount],
    keep_running: bool, network: str = ISOLATED, runs_agent: bool = True,
    options: PodmanRunOptions = PodmanRunOptions([], [])
) -> List[str]:
    """
    :param bool keep_running: --box-debug: a keeper is the command and
        the agent is started in it, so a shell can follow the build
    :param str network: the box network, see box_network
    :param bool runs_agent: the image runs our agent; else its own
        entry point (systemd), with a terminal for its console
    :param PodmanRunOptions options: what this host's podman needs
    """
    argv = list(podman) + list(options.global_options) + [
        'create', '--name', name,
        # loop devices, device nodes, mounts: an image build needs all
        '--privileged',
        # the build reaches repositories and PyPI, but not the host's
        # loopback, unless the user asks for the host's network
        '--network', podman_network(network),
        '--hostname', 'kiwi-box',
        '--label', f'{RUN_LABEL}={run_identity()}',
        # the full host image reference: never a short-name lookup
        '--pull', 'never',
    ] + list(options.create_options)
    for mount in mounts:
        argv += ['--mount', mount.option()]
    if not runs_agent:
        # systemd writes the console, the job's output among it, to the
        # container's terminal; without one it goes nowhere
        return argv + ['--tty', '--', image]
    argv += environment_options()
    # '--': the image reference comes from a catalog, never an option
    if keep_running:
        # the keeper, PID 1, ignores SIGTERM and holds nothing worth
        # a graceful stop: removal need not wait for it
        return argv + ['--stop-signal', 'SIGKILL', '--', image] + list(KEEPER_COMMAND)
    return argv + ['--', image] + list(AGENT_COMMAND)


def environment_options() -> List[str]:
    return [option for variable in AGENT_ENVIRONMENT for option in ('--env', variable)]


def job_argv(podman: Sequence[str], name: str, keep_running: bool) -> List[str]:
    """
    The call whose output is the box console: the container's command,
    or with a keeper the agent started in the container
    """
    if keep_running:
        return list(podman) + ['exec'] + environment_options() + [name] + list(AGENT_COMMAND)
    # the signal goes to boxbuild, which stops the container itself
    return list(podman) + ['start', '--attach', '--sig-proxy=false', name]


def interrupt_argv(podman: Sequence[str], name: str) -> List[str]:
    """
    A Ctrl-C for every process in the container but PID 1: kiwi and
    its tools clean up as on a terminal, the agent (PID 1 unless
    --box-debug) records the outcome
    """
    return list(podman) + ['exec', name, 'kill', '-INT', '-1']


def wait_args(name: str) -> List[str]:
    """
    Wait until the container does not run: ended, or never started
    (a Ctrl-C between create and start)
    """
    return ['wait'] + [
        option for state in ('created', 'exited', 'stopped') for option in ('--condition', state)
    ] + [name]


def remove_argv(podman: Sequence[str], name: str) -> List[str]:
    return list(podman) + [
        'rm', '--force', '--ignore', '--time', str(REMOVE_STOP_SECONDS), name
    ]


def staging_helper_argv(
    podman: Sequence[str], name: str, image: str, target_dir: str, script_args: Sequence[str],
    options: PodmanRunOptions = PodmanRunOptions([], [])
) -> List[str]:
    """
    A helper container of the box image that runs the staging script
    as root on the target dir, for a user whose podman runs through
    sudo: the box's files are root's, and root-owned directories can
    be neither moved nor removed by the user

    :param list script_args: the script's arguments after the target
        dir, see staging.script_argv
    """
    mounts = [
        ContainerMount(target_dir, HELPER_TARGET, read_only=False),
        ContainerMount(STAGING_SCRIPT, HELPER_SCRIPT, read_only=True),
    ]
    argv = list(podman) + list(options.global_options) + [
        'run', '--rm', '--name', name, '--network', 'none', '--pull', 'never',
        '--label', f'{RUN_LABEL}={run_identity()}', '--entrypoint', HELPER_PYTHON,
    ] + list(options.create_options)
    for mount in mounts:
        argv += ['--mount', mount.option()]
    return argv + ['--', image, HELPER_SCRIPT, HELPER_TARGET] + list(script_args)


def gone_staging_dirs(names: Sequence[str]) -> List[str]:
    """
    The staging dirs among the names of a target dir whose run is gone
    """
    return sorted(
        name for name in names
        if staging.STAGING_NAME.fullmatch(name) and made_by_gone_run(name)
    )


def published_exit_code(exit_code: int) -> int:
    """
    A published box's container ends itself by rebooting its systemd:
    that end is a normal one, judged by result.code
    """
    return 0 if exit_code in SELF_ENDED_EXIT_CODES else exit_code


def check_image_root_free(target_dir: str, keep_image_root: bool) -> None:
    """
    :raises KiwiBoxRequestError: when the image root is to come back
        and the target dir has one, as kiwi refuses an existing root
    """
    image_root = os.path.join(target_dir, staging.BUILD_DIR, staging.IMAGE_ROOT)
    if keep_image_root and os.path.lexists(image_root):
        raise KiwiBoxRequestError(
            f'--keep-image-root: {image_root} exists: remove it or choose another --target-dir'
        )


def container_name() -> str:
    """
    A name of its own per run, so that parallel builds never meet;
    with the run's identity, as the run's other leftovers
    """
    return f'{run_name_prefix()}{uuid.uuid4().hex[:12]}'


def gone_runs_containers(listing: str) -> List[str]:
    """
    The names of the box containers whose run is gone

    :param str listing: podman ps --format json of the labelled ones
    """
    return [
        container['Names'][0] for container in json.loads(listing or '[]')
        if container.get('Names')
        and not run_alive((container.get('Labels') or {}).get(RUN_LABEL, ''))
    ]


class Podman:
    """
    podman as this user can run it

    :param list prefix: the podman call, possibly through sudo
    """
    def __init__(self, prefix: Sequence[str]) -> None:
        self.prefix = list(prefix)

    @property
    def as_root(self) -> bool:
        """
        Whether podman runs as this process's user, root, not through
        sudo
        """
        return len(self.prefix) == 1

    def runtime_name(self) -> str:
        """
        The OCI runtime podman picks, '' if it does not say
        """
        info = self.run(['info', '--format', '{{.Host.OCIRuntime.Name}}'])
        return info.stdout.decode(errors='replace').strip() if info.returncode == 0 else ''

    @classmethod
    def for_this_user(cls, interactive: bool) -> 'Podman':
        """
        :raises KiwiPluginToolMissingError: podman is not installed
        :raises KiwiBoxContainerRootError: not root, and sudo cannot
            run podman
        """
        podman = find_program('podman', 'podman', 'for --container')
        prefix = podman_prefix(
            podman, os.geteuid(), shutil.which('sudo') or '', interactive, os.environ
        )
        if len(prefix) > 1:
            # asks for the password once, here, before any work
            probe = subprocess.run(
                prefix + ['--version'], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                stdin=None if interactive else subprocess.DEVNULL
            )
            if probe.returncode != 0:
                raise KiwiBoxContainerRootError(
                    'container mode runs a privileged podman container, which needs root, '
                    f'and sudo refused to run podman ({last_line(probe.stderr.decode())}): '
                    'run boxbuild as root or allow this user to run podman with sudo'
                )
        return cls(prefix)

    def run(self, args: Sequence[str]) -> subprocess.CompletedProcess:
        """
        A short podman call; its output is returned, not shown
        """
        return subprocess.run(
            self.prefix + list(args), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def ensure_image(self, reference: str, update_check: bool) -> None:
        """
        Have the box's image in podman's storage: pulled (which
        checks for an update) or found locally

        :raises KiwiBoxContainerImageError: if it cannot be had
        """
        present = self.run(['image', 'exists', '--', reference]).returncode == 0
        action = image_action(present, update_check, reference)
        if action == MISSING_LOCAL:
            raise KiwiBoxContainerImageError(
                f'container image {reference} is not in podman\'s storage and cannot be '
                'pulled: build it (for the Debian box: make box) or fix the box catalog'
            )
        if action == USE_LOCAL:
            log.info(f'box container image {reference}: using the local image')
            return
        log.info(f'box container image {reference}: pulling')
        # podman's progress goes to the terminal; stdout is the image id
        pull = subprocess.run(
            self.prefix + ['pull', '--', reference], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if pull.returncode == 0:
            log.info(f'box container image {reference}: up to date')
            return
        reason = last_line(pull.stderr.decode(errors='replace'))
        if not present:
            raise KiwiBoxContainerImageError(
                f'cannot pull container image {reference}: {reason}; check the network '
                'and the reference in the box catalog'
            )
        log.warning(
            f'cannot check container image {reference} for updates ({reason}): '
            'using the local image'
        )

    @contextmanager
    def container(self, argv: Sequence[str], name: str) -> Iterator[None]:
        """
        The created box container; stopped and removed on every way
        out, Ctrl-C included

        :param list argv: the create call, see create_argv
        :raises KiwiBoxContainerError: if podman cannot create it
        """
        try:
            created = subprocess.run(
                list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True
            )
        except BaseException:
            # a create cut short by Ctrl-C may have registered the name
            self.remove_container(name)
            raise
        if created.returncode != 0:
            self.remove_container(name)
            raise KiwiBoxContainerError(
                'podman cannot create the box container: '
                f'{last_line(created.stderr.decode(errors="replace"))}'
            )
        try:
            yield
        except BaseException:
            self.stop_container(name)
            raise
        finally:
            self.remove_container(name)

    def stop_container(self, name: str) -> None:
        """
        Pass a Ctrl-C to the processes in the container and give them
        INTERRUPT_GRACE_SECONDS to end
        """
        # kill's status says nothing useful here: it fails when some
        # process could not be signalled, and podman when the container
        # does not run; the wait below ends at once then
        self.run(interrupt_argv([], name))
        log.info(f'stopping the box container: kiwi has {INTERRUPT_GRACE_SECONDS} s to clean up')
        try:
            subprocess.run(
                self.prefix + wait_args(name), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=INTERRUPT_GRACE_SECONDS, start_new_session=True,
                # a boxbuild killed meanwhile leaves no wait behind
                preexec_fn=parent_death_signal(signal.SIGKILL)
            )
        except subprocess.TimeoutExpired:
            log.warning(f'the box container did not stop within {INTERRUPT_GRACE_SECONDS} s')

    def sweep_containers(self) -> None:
        """
        Remove the box containers of runs that were killed and so could
        not; a listing podman refuses leaves them for a later run
        """
        listed = self.run(
            ['ps', '--all', '--filter', f'label={RUN_LABEL}', '--format', 'json']
        )
        if listed.returncode != 0:
            return
        for name in gone_runs_containers(listed.stdout.decode(errors='replace')):
            log.info(f'removing box container {name}, left by a boxbuild that was killed')
            self.remove_container(name)

    def remove_container(self, name: str) -> None:
        removed = self.run(remove_argv([], name))
        if removed.returncode != 0:
            log.error(
                f'cannot remove box container {name}: '
                f'{last_line(removed.stderr.decode(errors="replace"))}; '
                f'remove it with: podman rm --force {name}'
            )


@contextmanager
def job_file(cmdline: str) -> Iterator[str]:
    """
    The job in a private file for /container.cmdline, removed after
    """
    with run_dir() as directory:
        path = os.path.join(directory, os.path.basename(CONTAINER_CMDLINE))
        with open(path, 'w') as handle:
            handle.write(cmdline)
        # root in the container reads it even through sudo; world
        # readable is fine, the directory stays private
        os.chmod(path, 0o644)
        yield path


def shared_kiwi_cache() -> str:
    """
    The host's kiwi shared cache (kiwi's --shared-cache-dir, default
    /var/cache/kiwi), created if missing; '' if it cannot be

    kiwi in the box finds it at its own default place, so the path
    never travels through the protocol.
    """
    from kiwi.defaults import Defaults as KiwiDefaults
    location = os.path.join(os.sep, KiwiDefaults.get_shared_cache_location())
    try:
        os.makedirs(location, exist_ok=True)
    except OSError as issue:
        log.warning(
            f'kiwi shared cache {location} cannot be created ({issue.strerror}): '
            'the box builds without it'
        )
        return ''
    return location


def has_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


@dataclass
class ContainerBoxBuild:
    """
    One build in the box's container image, from the image to the
    box's outcome

    :param Podman podman: podman as this user can run it
    :param bool debug_shell: --box-debug with a terminal for the shell
    :param str network: the box network, see box_network
    """
    request: BoxbuildRequest
    box: Box
    arch: BoxArch
    podman: Podman
    debug_shell: bool
    network: str = ISOLATED
    options: PodmanRunOptions = field(default_factory=lambda: PodmanRunOptions([], []))

    @classmethod
    def prepare(cls, request: BoxbuildRequest) -> 'ContainerBoxBuild':
        """
        Every check that needs no container, before anything starts

        :raises KiwiError: a subclass with one line for every problem
        """
        box = BoxCatalog().get(request.box)
        arch = box.arch(request.arch)
        if not arch.container:
            raise KiwiBoxContainerImageError(
                f"box '{box.name}' has no container image for {arch.name}: leave out "
                "--container or add 'container:' to its catalog entry"
            )
        check_container_arch(request.arch, host_arch())
        check_image_root_free(request.target_dir, request.keep_image_root)
        for option in ignored_vm_options(request):
            log.warning(f'{option} applies to box VMs only: it has no effect with --container')
        debug_shell = request.debug and has_terminal()
        if request.debug and not debug_shell:
            log.warning('--box-debug needs a terminal for its shell: building without it')
        network = network_mode(os.environ)
        return cls(
            request, box, arch, Podman.for_this_user(has_terminal()), debug_shell, network
        )

    def run(self) -> BoxRun:
        """
        Have the box's image and run the build in a container of it,
        building into a staging dir whose results then move into the
        target dir
        """
        request = self.request
        self.podman.ensure_image(self.arch.container, request.update_check)
        self.podman.sweep_containers()
        self.options = detect_run_options(self.podman.runtime_name(), os.environ)
        os.makedirs(request.target_dir, exist_ok=True)
        cmdline = container_cmdline(
            request.kiwi_args, request.kiwi_version, self.arch.runs_agent,
            self.debug_shell, request.keep_image_root
        )
        with self.staging_dir() as bundle_dir:
            with carried_files(bundle_dir, request.carried_files), \
                    job_file(cmdline) as cmdline_file:
                clear_stale_result(request.target_dir)
                started_at = time.time()
                carried_dir = os.path.join(bundle_dir, CARRIED_FILES_DIR) \
                    if request.carried_files else ''
                outcome = self.run_container(cmdline_file, bundle_dir, carried_dir)
            # the verdict of this run, before the results move on
            written = WrittenCode(read_result_code(bundle_dir))
        return BoxRun(outcome, started_at, 'podman', written)

    @contextmanager
    def staging_dir(self) -> Iterator[str]:
        """
        An empty staging dir in the target dir, named by the run so that
        a later run removes it when this one is killed; on every way out
        its results are moved into the target dir and it is removed, as
        are the staging dirs of runs that are gone

        :raises KiwiBoxStagingError: if that fails
        """
        target_dir = self.request.target_dir
        # carried files of a run before staging dirs: the name is ours
        remove_entry(os.path.join(target_dir, CARRIED_FILES_DIR))
        gone = gone_staging_dirs(os.listdir(target_dir))
        for gone_name in gone:
            log.info(f'removing {os.path.join(target_dir, gone_name)}, left by a boxbuild '
                     'that was killed')
        if gone and self.podman.as_root:
            # at once: a killed run's carried credentials are in it;
            # through sudo the helper container at the end removes them
            self.finish_staging('', gone, raising=True)
            gone = []
        name = container_name()
        path = os.path.join(target_dir, name)
        try:
            os.mkdir(path, 0o700)
        except OSError as issue:
            raise KiwiBoxStagingError(f'cannot create the staging dir {path}: {issue.strerror}')
        try:
            yield path
        except BaseException:
            self.finish_staging(name, gone, raising=False)
            raise
        self.finish_staging(name, gone, raising=True)

    def finish_staging(self, name: str, gone: Sequence[str], raising: bool) -> None:
        """
        Move the results of the staging dir name into the target dir and
        remove it and the gone runs' ones: here as root, else as root in
        a helper container (podman through sudo)

        :param bool raising: raise on failure; else only log it (an
            error is on its way already)
        :raises KiwiBoxStagingError: if something is left
        """
        target_dir = self.request.target_dir
        keep = self.request.keep_image_root
        problem = ''
        if self.podman.as_root:
            try:
                staging.finish(target_dir, name, keep, gone)
            except staging.StagingError as issue:
                problem = str(issue)
        else:
            helper = staging_helper_argv(
                self.podman.prefix, f'{name}-finish', self.arch.container, target_dir,
                staging.script_argv('', name, keep, gone)[1:], self.options
            )
            log.debug(f'staging helper call: {helper}')
            done = subprocess.run(
                helper, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True
            )
            if done.returncode != 0:
                problem = last_line(done.stderr.decode(errors='replace'))
        if not problem:
            return
        if name:
            message = (
                f'cannot move the results of {os.path.join(target_dir, name)} into '
                f'{target_dir}: {problem}; move them yourself and remove it'
            )
        else:
            message = f'cannot remove the staging dirs of killed runs: {problem}'
        if raising:
            raise KiwiBoxStagingError(message)
        log.error(message)

    def run_container(self, cmdline_file: str, bundle_dir: str, carried_dir: str) -> RunOutcome:
        request = self.request
        name = container_name()
        mounts = container_mounts(
            request.description, bundle_dir, cmdline_file, request.shared_path,
            shared_kiwi_cache(), carried_dir
        )
        prefix = self.podman.prefix
        runs_agent = self.arch.runs_agent
        create = create_argv(
            prefix, name, self.arch.container, mounts, self.debug_shell and runs_agent,
            self.network, runs_agent, self.options
        )
        log.debug(f'box container call: {create}')
        log.info(f'starting box container {name}')
        limits = Limits(
            start=request.start_seconds, deadline=request.run_deadline(),
            started_file=os.path.join(bundle_dir, RESULT_CODE)
        )
        console_log = Defaults.get_console_log(request.target_dir)
        with self.podman.container(create, name):
            if self.debug_shell and not runs_agent:
                return self.published_debug(name, limits.started_file, console_log)
            if self.debug_shell:
                self.start(name)
            outcome = run_console(
                job_argv(prefix, name, self.debug_shell), console_log, False, limits
            )
            if outcome.limit:
                # what ran the console is stopped, the container is not:
                # kiwi gets its grace as after Ctrl-C
                self.podman.stop_container(name)
            elif self.debug_shell:
                self.shell(name)
        if not runs_agent:
            outcome = replace(outcome, exit_code=published_exit_code(outcome.exit_code))
        return outcome

    def published_debug(self, name: str, started_file: str, console_log: str) -> RunOutcome:
        """
        --box-debug with a published box: its systemd stays up
        (kiwi-no-halt), and the shell comes at once, while the build
        runs: such a box tells the end of its job only by the second
        write of result.code

        :return: the outcome when the shell is left: the container ran
            to the user's end, the verdict is result.code's
        """
        self.start(name)
        log.info(
            'box debug: a shell in the box container while the build runs in it; '
            f'follow it with tail -f {BUNDLE_DIR}/result.log, its exit status comes '
            f'into {BUNDLE_DIR}/result.code; leave the shell to remove the container'
        )
        self.shell(name, intro=False)
        logs = self.podman.run(['logs', name])
        with create_file(console_log) as handle:
            handle.write(logs.stdout + logs.stderr)
        return RunOutcome(0, os.path.lexists(started_file))

    def start(self, name: str) -> None:
        started = self.podman.run(['start', name])
        if started.returncode != 0:
            raise KiwiBoxContainerError(
                f'podman cannot start the box container: '
                f'{last_line(started.stderr.decode(errors="replace"))}'
            )

    def shell(self, name: str, intro: bool = True) -> None:
        if intro:
            log.info(
                'box debug: a shell in the box container, the build root is in /result; '
                'leave it to remove the container'
            )
        subprocess.run(
            self.podman.prefix + ['exec', '--interactive', '--tty'] + environment_options() +
            [name] + list(DEBUG_SHELL)
        )
