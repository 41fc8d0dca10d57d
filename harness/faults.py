"""
Faults of a running boxbuild as a CI runner deals them: kiwi-ng started
in a session of its own, signalled (SIGTERM, SIGHUP, SIGKILL) at some
point of its run, and a look at what it left on the host: helper
processes, its private runtime dir, its disk overlay, carried files,
mounts.
"""
import glob
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

from harness.descriptions import proof_script, write_quick_description
from harness.processes import descendants, processes, processes_mentioning
from kiwi_plugin_support.lifetime import run_alive, run_identity

# How long the fault suites wait for a state of a run: a guard far
# above what a run under load takes, never a timing assertion
STATE_GUARD_SECONDS = 900
# What a run may take to leave nothing behind after a fault
SETTLE_SECONDS = 10
# the name of the carried files dir in the target dir
CARRIED_FILES = '.boxbuild.files'
# what the job of waiting_job writes into the target dir once it runs
BUSY_FILE = 'box-is-busy'


@dataclass
class FaultRun:
    """
    A boxbuild under test

    :param str output: file that receives its output
    :param str temp_root: the temp dir of the run (its TMPDIR)
    :param dict helpers: identity -> argument list of each process it
        started, as seen by snapshot()
    """
    process: subprocess.Popen
    output: str
    target_dir: str
    temp_root: str
    helpers: Dict[str, List[str]] = field(default_factory=dict)

    def snapshot(self) -> None:
        """
        Remember every process the run started, so far
        """
        found = processes()
        for pid in descendants(self.process.pid):
            if pid in found:
                self.helpers[run_identity(pid)] = found[pid]

    def runtime_dirs(self) -> List[str]:
        """
        The private runtime dirs of the run: they carry its pid
        """
        return glob.glob(os.path.join(self.temp_root, f'kiwi-boxbuild-{self.process.pid}.*'))

    def overlay_dirs(self) -> List[str]:
        """
        The box cache's temp dirs of the run, with its disk overlay, as
        qemu was told them
        """
        found = []
        for argv in self.helpers.values():
            for word in argv:
                if word.startswith('file=') and 'system-overlay.qcow2' in word:
                    found.append(os.path.dirname(word[len('file='):].split(',', 1)[0]))
        return found

    def processes_left(self) -> List[str]:
        """
        The processes the run started that still run, and any that
        names its target dir
        """
        return [
            ' '.join(argv) for identity, argv in self.helpers.items() if run_alive(identity)
        ] + [' '.join(argv) for argv in processes_mentioning(self.target_dir)]

    def busy(self) -> bool:
        """
        Whether the job of waiting_job runs
        """
        return os.path.exists(os.path.join(self.target_dir, BUSY_FILE))

    def carried_files(self) -> str:
        return os.path.join(self.target_dir, CARRIED_FILES)

    def read_output(self) -> str:
        with open(self.output, errors='replace') as handle:
            return handle.read()

    def signal(self, signum: int) -> None:
        """
        The signal to kiwi-ng alone, as a CI runner or kill sends it
        """
        self.snapshot()
        os.kill(self.process.pid, signum)

    def __enter__(self) -> 'FaultRun':
        return self

    def __exit__(self, *issue: object) -> None:
        """
        A run the test left running (after a failed assert) is ended
        """
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def waiting_job(workdir: str) -> Tuple[str, str, str]:
    """
    A quick job that writes BUSY_FILE and then waits to be stopped, and
    a host file for --signing-key, which the run carries into the box
    (.boxbuild.files)

    :return: description, signing key and target dir, below workdir
    """
    description = write_quick_description(
        os.path.join(workdir, 'desc'),
        proof_script(f'echo busy > /bundle/{BUSY_FILE}\nsleep 600\n')
    )
    key = os.path.join(workdir, 'release key.asc')
    with open(key, 'w') as handle:
        handle.write('signing key of the host\n')
    return description, key, os.path.join(workdir, 'target')


def start_boxbuild(
    argv: Sequence[str], environment: Dict[str, str], cwd: str, target_dir: str, name: str
) -> FaultRun:
    """
    Start a boxbuild in a session of its own, its output into
    cwd/<name>.out
    """
    output = os.path.join(cwd, f'{name}.out')
    with open(output, 'wb') as output_file:
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=environment, stdin=subprocess.DEVNULL,
            stdout=output_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    temp_root = environment.get('TMPDIR') or '/tmp'
    return FaultRun(process, output, target_dir, temp_root)


def wait_until(run: FaultRun, ready: Callable[[], bool], what: str) -> None:
    """
    Wait until ready() while the run runs

    :raises AssertionError: if the run ends first, with its output
    """
    deadline = time.monotonic() + STATE_GUARD_SECONDS
    while not ready():
        if run.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f'{what} did not happen:\n{run.read_output()}')
        time.sleep(0.2)


def has_qemu(run: FaultRun) -> bool:
    """
    Whether the run's qemu runs (so its shares and overlay exist)
    """
    found = processes()
    return any(
        # a process between fork and exec has no arguments yet
        os.path.basename((found.get(pid) or ['?'])[0]).startswith('qemu-system')
        for pid in descendants(run.process.pid)
    )


def mounts_mentioning(text: str) -> List[str]:
    """
    The mount points of this host that hold text
    """
    with open('/proc/self/mountinfo') as handle:
        return [line.split()[4] for line in handle if text in line.split()[4]]


def settle(check: Callable[[], List[str]], seconds: float = SETTLE_SECONDS) -> List[str]:
    """
    Poll check until it finds nothing or seconds pass

    :return: what check found last, [] if all is gone in time
    """
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def interrupt_leaving_nothing(
    run: FaultRun, signum: int, left: Callable[[], List[str]]
) -> None:
    """
    Send a stop signal (SIGTERM, SIGHUP) to the run: within
    SETTLE_SECONDS left() finds nothing, and the run has ended with
    128 + signum, saying so

    :raises AssertionError: naming what is left, or the wrong end
    """
    run.signal(signum)
    assert settle(left) == []
    assert run.process.wait(SETTLE_SECONDS) == 128 + signum
    output = run.read_output()
    print(output)
    assert f'boxbuild interrupted ({signal.Signals(signum).name})' in output
