#!/usr/bin/python3
"""
kiwi-box-agent: run the build job that the host put on the box's
command line.

The host speaks the published host-to-box protocol: the job is on the
kernel command line (/proc/cmdline) of a box VM, or in /container.cmdline
of a box container. The agent mounts the shared directories, prepares the
box, runs 'kiwi-ng system build' and 'kiwi-ng result bundle', writes the
exit status to /bundle/result.code and powers the box off.

This file runs inside the box with nothing but Python's standard library.
Every external program is called with an argument list, never a shell.
"""
import collections
import os
import shutil
import subprocess
import sys
import time
from typing import TYPE_CHECKING, BinaryIO, Callable, Deque, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from kiwi_boxed_plugin.agent import kiwi_box_protocol as protocol
else:
    try:
        # in the box the protocol module is installed beside this script
        import kiwi_box_protocol as protocol
    except ImportError:
        # on the host, for the tests: a module of the plugin
        from kiwi_boxed_plugin.agent import kiwi_box_protocol as protocol

# The protocol's words as the agent uses them
BoxJob = protocol.BoxJob
Share = protocol.Share
DESCRIPTION_DIR = protocol.DESCRIPTION_DIR
BUNDLE_DIR = protocol.BUNDLE_DIR
RESULT_DIR = protocol.RESULT_DIR
RESULT_CODE = protocol.bundle_path(protocol.RESULT_CODE)
RESULT_LOG = protocol.bundle_path(protocol.RESULT_LOG)
BOXROOT = os.path.join(DESCRIPTION_DIR, 'boxroot')
BOXPROFILE = '/etc/boxprofile'
# kiwi's image root below its target dir, and where the job that asks
# for it finds it in the bundle
IMAGE_ROOT = os.path.join('build', 'image-root')

# kiwi lives in a venv of its own so that pip can replace it on request
# without touching Debian's Python packages
KIWI_VENV = '/opt/kiwi'
KIWI_NG = os.path.join(KIWI_VENV, 'bin', 'kiwi-ng')
KIWI_PIP = os.path.join(KIWI_VENV, 'bin', 'pip')

SSH_IDENTITY_FW_CFG = f'/sys/firmware/qemu_fw_cfg/by_name/{protocol.SSH_IDENTITY_FW_CFG}/raw'
SSH_IDENTITY = '/run/kiwi-box/ssh_identity'
# the port of the host's sshd when the job names none
DEFAULT_SSH_PORT = 22

# Kernel modules per backend. They are in the initrd as well, loading
# them here covers boxes whose initrd did not load them.
BACKEND_MODULES = {
    '9p': ('9pnet_virtio', '9p'),
    'virtiofs': ('virtiofs',),
    'sshfs': ('fuse', 'qemu_fw_cfg'),
}
# A VM job that names no backend is shared through 9p
DEFAULT_BACKEND = '9p'

# 9p moves data in chunks of msize bytes: the default (8 KiB) gives a
# third of the throughput of 512000 (measured in the box: 315 vs 210
# MB/s write, 1050 vs 350-500 MB/s read).
NINEP_OPTIONS = 'trans=virtio,version=9p2000.L,msize=512000'

# How long the agent waits for things outside its control
NETWORK_WAIT_SECONDS = 60
SSHFS_ATTEMPTS = 10
SSHFS_RETRY_SECONDS = 3
# lines of kiwi's output kept for result.log when kiwi logs nothing
KIWI_TAIL_LINES = 40


class AgentError(Exception):
    """
    Raised when the agent cannot do its part of the job; the message is
    one line saying what failed
    """


def ninep_options(share: Share) -> str:
    """
    Mount options of a 9p share

    The description is only read, so it may use the page cache
    (cache=loose); the bundle and the custom path stay uncached so the
    host sees every write, result.code above all, even if the box is
    killed.
    """
    if is_read_only(share):
        return NINEP_OPTIONS + ',cache=loose,ro'
    return NINEP_OPTIONS


def is_read_only(share: Share) -> bool:
    """
    The description is mounted read-only: the host serves it so anyway,
    the box's side says the same to the build
    """
    return share.tag == protocol.TAG_DESCRIPTION


def mount_argv(job: BoxJob, share: Share) -> List[str]:
    """
    The command that mounts one share for the job's backend
    """
    backend = job_backend(job)
    if backend == '9p':
        return ['mount', '-t', '9p', '-o', ninep_options(share), share.tag, share.target]
    if backend == 'virtiofs':
        read_only = ['-o', 'ro'] if is_read_only(share) else []
        return ['mount', '-t', 'virtiofs'] + read_only + [share.tag, share.target]
    options = ','.join([
        f'IdentityFile={SSH_IDENTITY}',
        f'port={job.ssh_port or DEFAULT_SSH_PORT}',
        'StrictHostKeyChecking=no',
        'UserKnownHostsFile=/dev/null',
        # a dropped connection must not fail a build of many minutes
        'reconnect',
        'ServerAliveInterval=15',
        'ServerAliveCountMax=3',
        # Debian's sshfs refuses to read absolute links and links with
        # '..' unless told; kiwi's result bundle makes absolute links in
        # the bundle and reads them back
        'no_contain_symlinks',
    ])
    return ['sshfs', '-o', options, share.remote, share.target]


def job_backend(job: BoxJob) -> str:
    """
    The backend that shares the job's directories with a box VM
    """
    return job.sharing_backend or DEFAULT_BACKEND


def kiwi_build_argv(job: BoxJob) -> List[str]:
    """
    The kiwi build of the job, logging into the bundle
    """
    return [KIWI_NG, '--logfile', RESULT_LOG] + list(job.kiwi_args) + [
        '--description', DESCRIPTION_DIR, '--target-dir', RESULT_DIR
    ]


def kiwi_bundle_argv() -> List[str]:
    """
    Bundle the build results into the shared bundle directory
    """
    return [
        KIWI_NG, '--logfile', RESULT_LOG, 'result', 'bundle',
        '--target-dir', RESULT_DIR, '--bundle-dir', BUNDLE_DIR, '--id', '0'
    ]


def keep_image_root_argv(result_dir: str, bundle_dir: str) -> List[str]:
    """
    Copy kiwi's image root into the bundle as it is: /result is the
    box's own disk, the bundle another file system, so a rename cannot
    do; cp -a keeps owners, modes, times, links, hard links and
    extended attributes (ACLs and file capabilities among them)
    """
    return [
        'cp', '-a', '--no-target-directory', '--',
        os.path.join(result_dir, IMAGE_ROOT), os.path.join(bundle_dir, IMAGE_ROOT)
    ]


def kiwi_install_argv(version: str) -> List[str]:
    """
    Install the requested kiwi version into kiwi's venv
    """
    return [KIWI_PIP, 'install', '--upgrade', f'kiwi=={version}']


def has_default_route(route_table: str) -> bool:
    """
    Whether /proc/net/route lists a default route on an interface
    """
    for line in route_table.splitlines()[1:]:
        columns = line.split()
        if len(columns) > 2 and columns[1] == '00000000':
            return True
    return False


def parse_environment(blob: bytes) -> Dict[str, str]:
    """
    Turn the output of 'env -0' into a mapping
    """
    environment = {}
    for entry in blob.decode('utf-8', 'replace').split('\0'):
        if '=' in entry:
            key, value = entry.split('=', 1)
            environment[key] = value
    return environment


class Console:
    """
    Where the agent reports: the box console always, and result.log in
    the bundle once the bundle is mounted

    :param stream: the console, binary; standard output if not given
    """
    def __init__(self, stream: Optional[BinaryIO] = None) -> None:
        self.stream = stream or sys.stdout.buffer
        self.log_path = ''

    def echo(self, data: bytes) -> None:
        """
        Show on the console only
        """
        try:
            self.stream.write(data)
            self.stream.flush()
        except OSError:
            # a console that went away must not end the job
            pass

    def say(self, message: str) -> None:
        """
        Report on the console and in result.log
        """
        line = f'{protocol.AGENT_NAME}: {message}'
        self.echo(line.encode() + b'\n')
        self.write_log(line + '\n')

    def show(self, message: str) -> None:
        """
        Report on the console only
        """
        self.echo(f'{protocol.AGENT_NAME}: {message}\n'.encode())

    def write_log(self, text: str) -> None:
        """
        Append to result.log only; nothing happens before the bundle
        is mounted
        """
        if not self.log_path:
            return
        try:
            with open(self.log_path, 'a') as log:
                log.write(text)
        except OSError as issue:
            self.show(f'cannot write {self.log_path}: {issue}')


class Agent:
    """
    The effects of one job: mounts, preparation, kiwi, result, halt

    :param BoxJob job: the parsed job
    :param bool in_container: the job runs in a box container, whose
        directories podman has mounted already
    """
    def __init__(
        self, job: BoxJob, in_container: bool, console: Console,
        run: Callable[..., subprocess.CompletedProcess] = subprocess.run
    ) -> None:
        self.job = job
        self.in_container = in_container
        self.console = console
        self.run = run
        self.backend = job_backend(job)
        self.mounted: List[str] = []

    def execute(self) -> int:
        """
        Run the whole job

        :return: the job's exit status, 0 for success
        """
        if not self.in_container:
            self.load_modules()
            if self.backend == 'sshfs':
                self.wait_for_network(required=True)
                self.fetch_ssh_identity()
            self.mount(self.job.shares[0])
        self.start_result()
        try:
            if not self.in_container:
                for share in self.job.shares[1:]:
                    self.mount(share)
                if self.backend != 'sshfs':
                    self.wait_for_network(required=bool(self.job.kiwi_version))
            self.authorize_ssh_key()
            environment = self.prepare()
            self.console.say(protocol.JOB_STARTED)
            if self.job.kiwi_version:
                self.install_kiwi(environment)
            return self.build(environment)
        except AgentError as issue:
            self.console.say(f'error: {issue}')
            return 1

    def load_modules(self) -> None:
        for module in BACKEND_MODULES[self.backend]:
            self.run(['modprobe', '-q', module], check=False)

    def wait_for_network(self, required: bool) -> None:
        deadline = time.monotonic() + NETWORK_WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                with open('/proc/net/route') as routes:
                    if has_default_route(routes.read()):
                        return
            except OSError:
                pass
            time.sleep(0.5)
        message = f'no network (no default route) after {NETWORK_WAIT_SECONDS} s'
        if required:
            raise AgentError(message)
        self.console.say(f'warning: {message}; continuing without it')

    def fetch_ssh_identity(self) -> None:
        """
        Copy the run's private key from qemu's fw_cfg to a 0600 file,
        which ssh demands
        """
        try:
            with open(SSH_IDENTITY_FW_CFG, 'rb') as source:
                key = source.read()
        except OSError as issue:
            raise AgentError(
                f'sshfs: cannot read the ssh identity from fw_cfg '
                f'({SSH_IDENTITY_FW_CFG}): {issue.strerror}'
            )
        os.makedirs(os.path.dirname(SSH_IDENTITY), mode=0o700, exist_ok=True)
        descriptor = os.open(SSH_IDENTITY, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, 'wb') as target:
            target.write(key)

    def mount(self, share: Share) -> None:
        os.makedirs(share.target, exist_ok=True)
        argv = mount_argv(self.job, share)
        attempts = SSHFS_ATTEMPTS if self.backend == 'sshfs' else 1
        for attempt in range(1, attempts + 1):
            done = self.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if done.returncode == 0:
                self.mounted.append(share.target)
                return
            if attempt < attempts:
                time.sleep(SSHFS_RETRY_SECONDS)
        reason = done.stdout.decode('utf-8', 'replace').strip().replace('\n', ' ')
        raise AgentError(
            f'cannot mount share {share.tag} ({self.backend}) '
            f'at {share.target}: {reason or "exit code " + str(done.returncode)}'
        )

    def start_result(self) -> None:
        """
        Mark the job failed until it succeeds, so that a box that dies
        midway never leaves a result that reads as success; start a
        fresh result.log
        """
        try:
            write_text(RESULT_CODE, '1\n')
            write_text(RESULT_LOG, '')
        except OSError as issue:
            raise AgentError(f'cannot write to {BUNDLE_DIR}: {issue}')
        self.console.log_path = RESULT_LOG

    def authorize_ssh_key(self) -> None:
        """
        Let the holder of the host's key log in to the box (debugging
        with kiwi-no-halt)
        """
        if not (self.job.ssh_key and self.job.ssh_key_type):
            return
        os.makedirs('/root/.ssh', mode=0o700, exist_ok=True)
        with open('/root/.ssh/authorized_keys', 'a') as keys:
            keys.write(f'{self.job.ssh_key_type} {self.job.ssh_key} kiwi-boxed-host\n')
        os.chmod('/root/.ssh/authorized_keys', 0o600)

    def prepare(self) -> Dict[str, str]:
        """
        Copy the description's boxroot into the box and read the
        environment of /etc/boxprofile

        :return: the environment for kiwi
        """
        if os.path.isdir(BOXROOT):
            copy = self.run(
                ['cp', '-a', '--', BOXROOT + '/.', '/'],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            if copy.returncode != 0:
                raise AgentError(
                    'cannot copy boxroot into the box: '
                    + copy.stdout.decode('utf-8', 'replace').strip().replace('\n', ' ')
                )
            self.console.say('copied the description\'s boxroot into the box')
        environment = dict(os.environ)
        if os.path.isfile(BOXPROFILE):
            # sourcing is the documented contract of boxprofile: it is
            # shell code of the description's author, run as such
            profile = self.run(
                ['bash', '-c', 'set -a && . "$1" >&2 && env -0', 'boxprofile', BOXPROFILE],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            if profile.returncode != 0:
                raise AgentError(
                    f'{BOXPROFILE} failed: '
                    + profile.stderr.decode('utf-8', 'replace').strip().replace('\n', ' ')
                )
            environment = parse_environment(profile.stdout)
            self.console.say(f'sourced {BOXPROFILE}')
        self.use_package_proxy(environment)
        return environment

    def use_package_proxy(self, environment: Dict[str, str]) -> None:
        """
        Let the package managers of the build fetch through the host's
        package cache, unless the boxprofile chose a proxy of its own
        """
        if not self.job.package_proxy:
            return
        if environment.get('http_proxy'):
            self.console.say(
                f'{BOXPROFILE} sets http_proxy: the host\'s package cache is not used'
            )
            return
        environment['http_proxy'] = self.job.package_proxy
        self.console.say('packages come through the host\'s package cache')

    def install_kiwi(self, environment: Dict[str, str]) -> None:
        self.console.say(f'installing kiwi {self.job.kiwi_version}')
        install = self.run(
            kiwi_install_argv(self.job.kiwi_version), env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        if install.returncode != 0:
            output = install.stdout.decode('utf-8', 'replace').strip().splitlines()
            raise AgentError(
                f'cannot install kiwi {self.job.kiwi_version}: '
                + (output[-1] if output else f'pip exit code {install.returncode}')
            )

    def build(self, environment: Dict[str, str]) -> int:
        # /result is the box's own: a box disk kept with --no-snapshot
        # must not make kiwi refuse an existing image root
        shutil.rmtree(RESULT_DIR, ignore_errors=True)
        code = self.run_kiwi(kiwi_build_argv(self.job), environment)
        if code != 0:
            self.console.say(f'kiwi system build failed with exit code {code}')
        else:
            code = self.run_kiwi(kiwi_bundle_argv(), environment)
            if code != 0:
                self.console.say(f'kiwi result bundle failed with exit code {code}')
        if self.job.keep_image_root:
            # also after a failure: kiwi leaves the root for a look
            code = self.keep_image_root() or code
        return code

    def keep_image_root(self) -> int:
        """
        Leave kiwi's image root in the bundle at build/image-root

        :return: 0, or 1 if it is there and cannot be copied
        """
        if not os.path.isdir(os.path.join(RESULT_DIR, IMAGE_ROOT)):
            self.console.say('no image root to keep: kiwi made none')
            return 0
        os.makedirs(os.path.join(BUNDLE_DIR, os.path.dirname(IMAGE_ROOT)), exist_ok=True)
        copy = self.run(
            keep_image_root_argv(RESULT_DIR, BUNDLE_DIR),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        if copy.returncode != 0:
            self.console.say(
                'cannot copy the image root into the bundle: '
                + copy.stdout.decode('utf-8', 'replace').strip().replace('\n', ' ')
            )
            return 1
        self.console.say(f'kept the image root in the bundle at {IMAGE_ROOT}')
        return 0

    def run_kiwi(self, argv: List[str], environment: Dict[str, str]) -> int:
        """
        Run kiwi, echoing its output to the console as it comes

        kiwi refuses bad arguments before it opens its log file; then
        the last lines of its output go to result.log, so the reason is
        on the host either way.
        """
        logged_before = file_size(RESULT_LOG)
        tail: Deque[bytes] = collections.deque(maxlen=KIWI_TAIL_LINES)
        try:
            kiwi = subprocess.Popen(
                argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except OSError as issue:
            raise AgentError(f'cannot run {argv[0]}: {issue.strerror}')
        assert kiwi.stdout
        for line in kiwi.stdout:
            self.console.echo(line)
            tail.append(line)
        code = kiwi.wait()
        if code != 0 and file_size(RESULT_LOG) == logged_before:
            self.console.say('kiwi-ng stopped before logging; its last output:')
            self.console.write_log(b''.join(tail).decode('utf-8', 'replace'))
        return code

    def finish(self, code: int) -> None:
        """
        Publish the exit status and release the shares
        """
        if self.console.log_path:
            try:
                write_text(RESULT_CODE, f'{code}\n')
            except OSError as issue:
                self.console.show(f'cannot write {RESULT_CODE}: {issue}')
        self.console.show(f'job finished with exit code {code}')
        if self.job.no_halt:
            return
        os.sync()
        for target in reversed(self.mounted):
            self.run(['umount', target], check=False)


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def write_text(path: str, text: str) -> None:
    with open(path, 'w') as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def read_cmdline() -> Tuple[str, bool]:
    """
    :return: the job's command line and whether the box is a container
    """
    if os.path.exists(protocol.CONTAINER_CMDLINE):
        with open(protocol.CONTAINER_CMDLINE) as handle:
            return handle.read(), True
    with open(protocol.KERNEL_CMDLINE) as handle:
        return handle.read(), False


def power_off() -> None:
    subprocess.run(['systemctl', '--no-block', 'poweroff'], check=False)


def open_console(in_container: bool) -> Optional[BinaryIO]:
    """
    The host's view of the box: a VM's console; None for a container,
    whose host reads the agent's own output

    :return: the console, None to use standard output
    """
    if in_container:
        return None
    try:
        return open('/dev/console', 'wb', buffering=0)
    except OSError:
        return None


def main() -> int:
    text, in_container = read_cmdline()
    console = Console(open_console(in_container))
    if not protocol.has_job(text):
        # a box booted by hand, for a look inside: stay out of the way
        console.say('no kiwi job on the command line, nothing to do')
        return 0
    # a container ends with its command; only a VM powers off
    halt = not protocol.no_halt_requested(text) and not in_container
    try:
        job = protocol.parse_job(text)
    except protocol.ProtocolError as issue:
        console.say(f'error: {issue}')
        console.show('job finished with exit code 2')
        if halt:
            power_off()
        return 2
    agent = Agent(job, in_container, console)
    try:
        code = agent.execute()
    except AgentError as issue:
        # before /bundle is mounted the console is the only channel
        console.say(f'error: {issue}')
        code = 1
    except Exception as issue:
        # a defect of the agent must still end the job visibly
        console.say(f'error: the agent failed: {issue!r}')
        code = 1
    agent.finish(code)
    if halt:
        power_off()
    return code


if __name__ == '__main__':
    sys.exit(main())
