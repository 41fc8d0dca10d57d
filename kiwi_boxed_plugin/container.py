"""
The container runner: one build in the box's container image under
podman, a sibling of the VM runner that speaks the same protocol to the
same box agent and hands back the same outcome for judging.

The agent is the container's command (PID 1), not systemd: systemd in
a container wants a TTY for the agent's console and more privileges,
while the agent run directly needs neither, its stdout is the console
stream and its exit status the container's. Being PID 1 also keeps
the agent out of reach of the Ctrl-C that is passed to kiwi inside
(see stop_container), so the agent still writes the verdict.
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
from dataclasses import dataclass
from typing import Iterator, List, Mapping, Sequence

from kiwi_boxed_plugin.agent import BOX_AGENT_DIR
from kiwi_boxed_plugin.agent.kiwi_box_protocol import (
    BUNDLE_DIR,
    CONTAINER_CMDLINE,
    DESCRIPTION_DIR,
    RESULT_CODE,
    BoxJob,
    encode_job,
)
from kiwi_boxed_plugin.box_network import ISOLATED, network_mode, podman_network
from kiwi_boxed_plugin.catalog import Box, BoxArch, BoxCatalog
from kiwi_boxed_plugin.console import Limits, RunOutcome, run_console
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxContainerError,
    KiwiBoxContainerImageError,
    KiwiBoxContainerRootError,
)
from kiwi_boxed_plugin.host_files import carried_files
from kiwi_boxed_plugin.leftovers import run_dir, run_name_prefix
from kiwi_boxed_plugin.request import BoxbuildRequest
from kiwi_boxed_plugin.result import BoxRun, clear_stale_result
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
    :raises KiwiBoxContainerError: for a box of a foreign arch, which
        a container cannot run without an emulator set up for it
    """
    if arch != host:
        raise KiwiBoxContainerError(
            f'a box container runs natively: a {arch} box needs a {arch} host, this is '
            f'{host}; leave out --container to run the {arch} box as a VM'
        )


def container_cmdline(kiwi_args: Sequence[str], kiwi_version: str) -> str:
    """
    The job for /container.cmdline: no sharing backend, podman mounts
    the directories; no halt, the container ends with its agent and
    has no system to power off
    """
    job = BoxJob(kiwi_args=tuple(kiwi_args), no_halt=True, kiwi_version=kiwi_version)
    return encode_job(job) + '\n'


def container_mounts(
    description: str, target_dir: str, cmdline_file: str, shared_path: str,
    kiwi_cache: str
) -> List[ContainerMount]:
    """
    :param str kiwi_cache: host's kiwi shared cache, '' to not share it
    """
    mounts = [
        ContainerMount(description, DESCRIPTION_DIR, read_only=True),
        ContainerMount(target_dir, BUNDLE_DIR, read_only=False),
        ContainerMount(cmdline_file, CONTAINER_CMDLINE, read_only=True),
    ]
    if kiwi_cache:
        mounts.append(ContainerMount(kiwi_cache, BOX_KIWI_CACHE, read_only=False))
    if shared_path:
        mounts.append(ContainerMount(shared_path, shared_path, read_only=False))
    return mounts


def create_argv(
    podman: Sequence[str], name: str, image: str, mounts: Sequence[ContainerMount],
    keep_running: bool, network: str = ISOLATED
) -> List[str]:
    """
    :param bool keep_running: --box-debug: a keeper is the command and
        the agent is started in it, so a shell can follow the build
    :param str network: the box network, see box_network
    """
    argv = list(podman) + [
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
    ]
    argv += environment_options()
    for mount in mounts:
        argv += ['--mount', mount.option()]
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
        Have the box's image and run the build in a container of it
        """
        request = self.request
        self.podman.ensure_image(self.arch.container, request.update_check)
        self.podman.sweep_containers()
        os.makedirs(request.target_dir, exist_ok=True)
        cmdline = container_cmdline(request.kiwi_args, request.kiwi_version)
        with carried_files(request.target_dir, request.carried_files), \
                job_file(cmdline) as cmdline_file:
            clear_stale_result(request.target_dir)
            started_at = time.time()
            outcome = self.run_container(cmdline_file)
        return BoxRun(outcome, started_at, 'podman')

    def run_container(self, cmdline_file: str) -> RunOutcome:
        request = self.request
        name = container_name()
        mounts = container_mounts(
            request.description, request.target_dir, cmdline_file, request.shared_path,
            shared_kiwi_cache()
        )
        prefix = self.podman.prefix
        create = create_argv(
            prefix, name, self.arch.container, mounts, self.debug_shell, self.network
        )
        log.debug(f'box container call: {create}')
        log.info(f'starting box container {name}')
        limits = Limits(
            start=request.start_seconds, deadline=request.run_deadline(),
            started_file=os.path.join(request.target_dir, RESULT_CODE)
        )
        with self.podman.container(create, name):
            if self.debug_shell:
                self.start(name)
            outcome = run_console(
                job_argv(prefix, name, self.debug_shell),
                Defaults.get_console_log(request.target_dir), False, limits
            )
            if outcome.limit:
                # what ran the console is stopped, the container is not:
                # kiwi gets its grace as after Ctrl-C
                self.podman.stop_container(name)
            elif self.debug_shell:
                self.shell(name)
        return outcome

    def start(self, name: str) -> None:
        started = self.podman.run(['start', name])
        if started.returncode != 0:
            raise KiwiBoxContainerError(
                f'podman cannot start the box container: '
                f'{last_line(started.stderr.decode(errors="replace"))}'
            )

    def shell(self, name: str) -> None:
        log.info(
            'box debug: a shell in the box container, the build root is in /result; '
            'leave it to remove the container'
        )
        subprocess.run(
            self.podman.prefix + ['exec', '--interactive', '--tty'] + environment_options() +
            [name] + list(DEBUG_SHELL)
        )
