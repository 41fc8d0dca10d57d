"""
Helpers of the VM integration tests: run real boxbuilds, write quick
jobs, find processes.
"""
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)
))))
STORE = '/var/cache/kiwi-plugins-test/vm'
BOX_BUILDER = os.path.join(REPOSITORY, 'boxes', 'debian', 'build-box')
KIWI_NG = os.path.join(os.path.dirname(sys.executable), 'kiwi-ng')
# An unprivileged account made by the tests, removed afterwards
TEST_USER = 'kiwiboxvm'
# A guard against a hung run, far above any expected duration; never a
# timing assertion
HANG_GUARD_SECONDS = 3600
# What the quick jobs leave in the bundle (written by the box)
PROOF_FILE = 'proof-from-box.txt'


@dataclass(frozen=True)
class VmEnvironment:
    """
    The test catalog and cache the boxbuilds of the tests use
    """
    catalog: str
    cache: str

    def environment(self, **extra: str) -> Dict[str, str]:
        environment = dict(os.environ)
        environment.update(KIWI_BOXED_PLUGIN_CFG=self.catalog, KIWI_BOXED_CACHE_DIR=self.cache)
        environment.update(extra)
        return environment


def boxbuild_argv(
    options: Sequence[str], description: str, target_dir: str,
    global_options: Sequence[str] = (), kiwi_options: Sequence[str] = ()
) -> List[str]:
    return [KIWI_NG] + list(global_options) + [
        'system', 'boxbuild', '--box', 'debian', '--no-accel'
    ] + list(options) + [
        '--', '--description', description, '--target-dir', target_dir
    ] + list(kiwi_options)


def run_boxbuild(
    vm: VmEnvironment, argv: Sequence[str], cwd: str,
    user: Optional[str] = None, environment: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess:
    """
    Run a boxbuild to its end, its output captured for the asserts
    """
    completed = subprocess.run(
        list(argv), cwd=cwd, env=environment or vm.environment(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=HANG_GUARD_SECONDS, user=user,
    )
    completed.stdout = completed.stdout.decode(errors='replace')
    # the whole console in the pytest report helps when a box misbehaves
    print(completed.stdout)
    return completed


def write_quick_description(path: str, box_script: str) -> str:
    """
    A description whose boxprofile runs box_script in the box, and
    whose config.xml kiwi rejects at once: a real job of seconds

    :return: path of the description
    """
    os.makedirs(os.path.join(path, 'boxroot', 'etc'), exist_ok=True)
    with open(os.path.join(path, 'config.xml'), 'w') as config:
        config.write(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<image schemaversion="7.5" name="quick">\n'
            '    <no-such-element-kiwi-rejects/>\n'
            '</image>\n'
        )
    with open(os.path.join(path, 'description-proof.txt'), 'w') as proof:
        proof.write('read from the description\n')
    with open(os.path.join(path, 'boxroot', 'etc', 'boxprofile'), 'w') as profile:
        profile.write(box_script)
    return path


def proof_script(extra: str = '') -> str:
    """
    Box side proof that the shares work: read from the description,
    write into the bundle, report memory and cpus the box got
    """
    return (
        'set -e\n'
        f'{{ cat /description/description-proof.txt; nproc; '
        f'grep MemTotal /proc/meminfo; cat /proc/cmdline; }} > /bundle/{PROOF_FILE}\n'
        + extra
    )


def processes() -> Dict[int, List[str]]:
    """
    Every process of the host with its argument list
    """
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as handle:
                argv = handle.read().split(b'\0')
        except OSError:
            continue
        found[int(entry)] = [word.decode(errors='replace') for word in argv if word]
    return found


def descendants(pid: int) -> Set[int]:
    """
    The children of pid, their children, and so on
    """
    children: Dict[int, List[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as handle:
                parent = int(handle.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found: Set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as handle:
            state = handle.read().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


def wait_for_text(path: str, text: str, process: subprocess.Popen, limit: float) -> None:
    """
    Wait until a file holds text, the process ends, or limit seconds
    pass (a guard, not an assertion on speed)
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.exists(path):
            with open(path, 'rb') as handle:
                if text.encode() in handle.read():
                    return
        time.sleep(0.5)
    raise AssertionError(f'{text!r} did not appear in {path}')


def interrupt(process: subprocess.Popen) -> None:
    """
    Ctrl-C as a terminal sends it: to the whole foreground group
    """
    os.killpg(process.pid, signal.SIGINT)
