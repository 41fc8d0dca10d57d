"""
Faults as a CI runner makes them: kiwi-ng system stash and system
stackbuild killed with SIGTERM, SIGHUP and SIGKILL while the stash is
mounted and the work is half done. Within 10 s nothing is left: no
mount, no staging or work directory, no journal, no container, no
process; after SIGKILL, once the next run swept.
"""
import os
import shutil
import signal
import subprocess
import time
from typing import Callable, Dict, Iterator, List

import pytest

from harness import stackbuild_kiwi
from harness.processes import default_stop_signals
from harness.stackbuild_kiwi import kiwi, kiwi_argv, kiwi_error, write_description
from harness.stash_leftovers import leftovers, storage_mounts

pytestmark = pytest.mark.integration

# the limit the issue sets for a stopped run to be gone without a trace
GONE_SECONDS = 10
# how long a run may take to reach the point where it is stopped
# (a guard, not a measure)
REACH_SECONDS = 120
# the stashed file the slowed copy takes a minute for
SLOW_FILE_BYTES = 4 * 2**20
SLOW_COPY_KBPS = 64
# files of the root whose comparison with its stash keeps the stash
# mounted for seconds
MANY_FILES = 20000

SIGNALS = [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL]


def wait_until(condition: Callable[[], object], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f'{what} did not happen within {limit} s')
        time.sleep(0.01)


def nothing_left(found: Dict[str, list]) -> bool:
    return not any(found.values())


@pytest.fixture(scope='module')
def slow_copy(tmp_path_factory) -> str:
    """
    A directory with an rsync that says when it starts, in the file
    that $KIWI_TEST_COPY_STARTED names, and then copies at 64 kB/s:
    the real rsync, slowed, so that the test can stop stackbuild while
    the stash is mounted and the root half stacked
    """
    directory = tmp_path_factory.mktemp('slow-copy')
    wrapper = directory / 'rsync'
    wrapper.write_text(
        '#!/bin/sh\n'
        ': > "$KIWI_TEST_COPY_STARTED"\n'
        f'exec {shutil.which("rsync")} --bwlimit={SLOW_COPY_KBPS} "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(directory)


@pytest.fixture(scope='module')
def slow_stash(tmp_path_factory, containers, mirror) -> str:
    """
    A stash 'signal-slow' holding a file of some megabytes
    """
    root = tmp_path_factory.mktemp('slow-stash') / 'root'
    write_description(str(root / 'image' / 'config.xml'), mirror, name='signal-slow')
    (root / 'big').write_bytes(os.urandom(SLOW_FILE_BYTES))
    kiwi('system', 'stash', '--root', str(root))
    return 'signal-slow'


@pytest.fixture(scope='module')
def many_files_root(tmp_path_factory, containers, mirror) -> str:
    """
    A root of many files, stashed once as 'signal-many'; a test changes
    a file and stashes it again
    """
    root = tmp_path_factory.mktemp('many-files') / 'root'
    write_description(str(root / 'image' / 'config.xml'), mirror, name='signal-many')
    (root / 'many').mkdir()
    for index in range(MANY_FILES):
        (root / 'many' / str(index)).touch()
    kiwi('system', 'stash', '--root', str(root))
    return str(root)


@pytest.fixture
def started(tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """
    Start kiwi-ng in the background, its output in a log file; what is
    still running at the end of the test is killed
    """
    processes: List[subprocess.Popen] = []

    def start(*args: str, **environment: str) -> subprocess.Popen:
        # default_stop_signals: SIGHUP must stop it also in a run under nohup
        with open(tmp_path / f'kiwi-{len(processes)}.log', 'w') as log, default_stop_signals():
            process = subprocess.Popen(
                kiwi_argv(*args), stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ, **environment)
            )
        processes.append(process)
        return process
    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen, signum: int) -> int:
    """
    Send the signal and wait for the process to end

    :return: its exit status, -signum if the signal killed it
    """
    process.send_signal(signum)
    return process.wait(timeout=GONE_SECONDS)


def stopped_as_asked(exit_code: int, signum: int) -> bool:
    """
    Whether the process ended by SIGKILL, or after cleaning up with
    128 + the signal number
    """
    return exit_code == (-signum if signum == signal.SIGKILL else 128 + signum)


@pytest.mark.parametrize('signum', SIGNALS, ids=lambda signum: signal.Signals(signum).name)
def test_a_stopped_stackbuild_leaves_nothing(
    signum, containers, slow_stash, slow_copy, started, tmp_path
):
    target = str(tmp_path / 'target')
    copy_started = tmp_path / 'copy started'
    temp_dir = stackbuild_kiwi.TEMP_DIR or ''

    def found() -> Dict[str, list]:
        return leftovers(containers, target, temp_dir)

    process = started(
        'system', 'stackbuild', '--stash', slow_stash, '--target-dir', target,
        PATH=f'{slow_copy}:{os.environ["PATH"]}', KIWI_TEST_COPY_STARTED=str(copy_started)
    )
    wait_until(copy_started.exists, REACH_SECONDS, 'the copy of the stash')
    midway = found()
    assert midway['mounts'] and midway['staging dirs']
    exit_code = stop(process, signum)
    if signum == signal.SIGKILL:
        # the copy dies with kiwi-ng; the mount and the half root stay
        # for the next run to sweep, whatever that run then does
        wait_until(lambda: not found()['processes'], GONE_SECONDS, 'the end of rsync')
        assert found()['mounts'] and found()['staging dirs']
        kiwi_error('system', 'stackbuild', '--stash', 'signal-not-there',
                   '--target-dir', str(tmp_path / 'next'))
    assert nothing_left(found()), found()
    assert not os.path.exists(os.path.join(target, 'build', 'image-root'))
    assert stopped_as_asked(exit_code, signum)


@pytest.mark.parametrize('signum', SIGNALS, ids=lambda signum: signal.Signals(signum).name)
def test_a_stopped_stash_leaves_nothing(signum, containers, many_files_root, started, tmp_path):
    temp_dir = stackbuild_kiwi.TEMP_DIR or ''

    def found() -> Dict[str, list]:
        return leftovers(containers, many_files_root, temp_dir)

    with open(os.path.join(many_files_root, 'many', '0'), 'w') as changed:
        changed.write(f'{signum}\n')
    process = started('system', 'stash', '--root', many_files_root)
    # the stash is mounted while the root is compared with it
    wait_until(lambda: storage_mounts(containers), REACH_SECONDS, 'the mount of the stash')
    exit_code = stop(process, signum)
    if signum == signal.SIGKILL:
        assert found()['mounts'] and found()['stash work dirs']
        kiwi_error('system', 'stash', '--root', str(tmp_path / 'not-there'))
    assert nothing_left(found()), found()
    assert stopped_as_asked(exit_code, signum)
