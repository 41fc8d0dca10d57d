"""
Real container boxbuilds: the Debian box's image under podman, real
kiwi in it, driven through kiwi-ng as a user types it, without a
terminal as in CI.
"""
import os
import pty
import re
import select
import subprocess
import time

import pytest

from harness.boxbuild import CONSOLE_LOG, HANG_GUARD_SECONDS, run_boxbuild
from harness.container_boxbuild import boxbuild_argv, containers
from harness.descriptions import description_copy
from harness.processes import interrupt, processes_mentioning, wait_for_text
from harness.unprivileged import kiwi_ng_for

pytestmark = pytest.mark.integration

# spaces, quotes, a comma and a colon (podman's --mount and --volume
# separators) and a command substitution that must never run
ODD_NAME = "a b, 'q' :$(touch X)"


def read(path):
    with open(path) as handle:
        return handle.read()


def prepared_target(workdir):
    """
    A target dir holding a file of the user and a stale verdict
    """
    target = os.path.join(workdir, f'target {ODD_NAME}')
    os.makedirs(target)
    with open(os.path.join(target, 'keep.txt'), 'w') as keep:
        keep.write('mine\n')
    with open(os.path.join(target, 'result.code'), 'w') as stale:
        stale.write('0\n')
    return target


def assert_nothing_left(box, target):
    # the box built into a staging dir of the run, moved over and gone
    assert [name for name in os.listdir(target) if name.startswith('kiwi-boxbuild-')] == []
    assert containers(box) == []
    assert processes_mentioning(target) == []
    assert processes_mentioning('kiwi_box_agent.py') == []


@pytest.mark.slow
def test_build(box, mirror, workdir):
    """
    The tiny description built in the container: bundle, result.code
    0, the user's file kept, the kiwi cache shared, nothing left
    """
    description = description_copy(os.path.join(workdir, f'desc {ODD_NAME}'), mirror)
    target = prepared_target(workdir)
    kiwi_cache = os.path.join(workdir, f'kiwi cache {ODD_NAME}')
    completed = run_boxbuild(box, boxbuild_argv(
        [], description, target, global_options=[f'--shared-cache-dir={kiwi_cache}']
    ), cwd=workdir)

    assert completed.returncode == 0, completed.stdout
    assert read(os.path.join(target, 'result.code')).strip() == '0'
    bundle = [name for name in os.listdir(target) if re.search(r'\.tar\.xz$', name)]
    assert len(bundle) == 1, os.listdir(target)
    assert 'build in the box done in' in completed.stdout
    assert 'with podman' in completed.stdout
    assert f'  {bundle[0]}' in completed.stdout
    assert read(os.path.join(target, 'keep.txt')) == 'mine\n'
    assert 'kiwi-box-agent: job started' in read(os.path.join(target, CONSOLE_LOG))
    # kiwi in the box kept its packages in the host's cache
    assert os.listdir(kiwi_cache)
    for place in (workdir, description, target, kiwi_cache, '/'):
        assert not os.path.exists(os.path.join(place, 'X'))
    assert_nothing_left(box, target)


def test_failing_build(box, mirror, workdir):
    """
    kiwi in the container rejects the description: exit 1, the reason,
    the log, the user's file kept, nothing left
    """
    description = description_copy(os.path.join(workdir, 'desc'), mirror, broken=True)
    target = prepared_target(workdir)
    completed = run_boxbuild(
        box, boxbuild_argv(['--box-debug'], description, target), cwd=workdir
    )

    assert completed.returncode == 1, completed.stdout
    assert '--box-debug needs a terminal for its shell: building without it' \
        in completed.stdout
    assert 'the build in the box failed with exit code' in completed.stdout
    assert f'see {target}/result.log' in completed.stdout
    assert read(os.path.join(target, 'result.code')).strip() not in ('', '0')
    assert 'no-such-element' in read(os.path.join(target, 'result.log'))
    assert read(os.path.join(target, 'keep.txt')) == 'mine\n'
    assert 'Traceback' not in completed.stdout
    assert_nothing_left(box, target)


def test_interrupt(box, mirror, workdir):
    """
    Ctrl-C while kiwi installs packages: kiwi in the container is
    interrupted and cleans up, the agent records the failure, boxbuild
    exits 130, no container and no process of it is left
    """
    description = description_copy(os.path.join(workdir, 'desc'), mirror)
    target = prepared_target(workdir)
    output = os.path.join(workdir, 'boxbuild.out')
    with open(output, 'wb') as output_file:
        process = subprocess.Popen(
            boxbuild_argv([], description, target), cwd=workdir, env=box.environment(),
            stdin=subprocess.DEVNULL, stdout=output_file, stderr=subprocess.STDOUT,
            # a terminal's foreground group of its own, to send Ctrl-C to
            start_new_session=True
        )
    try:
        wait_for_text(
            os.path.join(target, CONSOLE_LOG), 'Installing bootstrap packages', process,
            HANG_GUARD_SECONDS
        )
        assert len(containers(box)) == 1
        interrupt(process)
        process.wait(timeout=HANG_GUARD_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
    print(read(output))
    assert process.returncode == 130
    assert 'boxbuild interrupted' in read(output)
    assert 'kiwi aborted by keyboard interrupt' in read(os.path.join(target, 'result.log'))
    assert read(os.path.join(target, 'result.code')).strip() not in ('', '0')
    assert read(os.path.join(target, 'keep.txt')) == 'mine\n'
    assert_nothing_left(box, target)


def test_missing_local_image(box, workdir):
    """
    A box whose localhost/ image is not in podman's storage: one line
    saying what to do, no container
    """
    catalog = os.path.join(workdir, 'catalog.yml')
    with open(catalog, 'w') as handle:
        handle.write(read(box.catalog).replace(
            'localhost/kiwi-boxes/debian:latest', 'localhost/kiwi-boxes/missing:latest'
        ))
    description = description_copy(os.path.join(workdir, 'desc'), 'http://unused.invalid/')
    target = os.path.join(workdir, 'target')
    completed = subprocess.run(
        boxbuild_argv(['--no-update-check'], description, target), cwd=workdir,
        env=box.environment(KIWI_BOXED_PLUGIN_CFG=catalog), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    print(completed.stdout)
    assert completed.returncode == 1
    assert "container image localhost/kiwi-boxes/missing:latest is not in podman's " \
        'storage' in completed.stdout
    assert 'Traceback' not in completed.stdout
    assert containers(box) == []


def test_not_root(box, workdir):
    """
    An unprivileged user is told that container mode needs root
    """
    description = description_copy(os.path.join(workdir, 'desc'), 'http://unused.invalid/')
    target = os.path.join(workdir, 'target')
    os.makedirs(target)
    os.chmod(target, 0o777)
    completed = subprocess.run(
        ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'] +
        boxbuild_argv([], description, target, kiwi_ng=kiwi_ng_for('nobody')), cwd=workdir,
        env=box.environment(HOME='/nonexistent'), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    print(completed.stdout)
    assert completed.returncode == 1
    assert 'container mode runs a privileged podman container, which needs root' \
        in completed.stdout
    assert 'Traceback' not in completed.stdout
    assert os.listdir(target) == []


def test_debug_shell(box, mirror, workdir):
    """
    --box-debug on a terminal: after the build a shell in the box
    container, with the build's /result and the shared /bundle; the
    verdict and the cleanup once it is left
    """
    description = description_copy(os.path.join(workdir, 'desc'), mirror, broken=True)
    target = prepared_target(workdir)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        boxbuild_argv(['--box-debug'], description, target), cwd=workdir,
        env=box.environment(), stdin=terminal, stdout=terminal, stderr=terminal,
        start_new_session=True
    )
    os.close(terminal)
    screen = b''
    typed = False
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if select.select([controller], [], [], 1)[0]:
                try:
                    screen += os.read(controller, 65536)
                except OSError:
                    break
            if not typed and b'box debug: a shell in the box container' in screen:
                os.write(controller, b'echo $((6*7)) > /bundle/from-shell; exit\r')
                typed = True
        process.wait(timeout=HANG_GUARD_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    print(screen.decode(errors='replace'))
    assert typed
    assert read(os.path.join(target, 'from-shell')) == '42\n'
    assert process.returncode == 1
    assert b'the build in the box failed with exit code' in screen
    assert_nothing_left(box, target)
