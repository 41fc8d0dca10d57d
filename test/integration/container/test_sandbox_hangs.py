"""
A container box that hangs: a job that never ends is stopped by
--box-timeout (the shortest, one minute) with one line and the log's
tail, and its container removed; without the limit container mode
waited for good.
"""
import os
import time

import pytest

from harness.boxbuild import run_boxbuild
from harness.container_boxbuild import boxbuild_argv, containers
from harness.descriptions import proof_script, write_quick_description

pytestmark = pytest.mark.integration

# what --box-timeout=1 allows, and what the stop may add under load
LIMIT_SECONDS = 60
STOP_SECONDS = 30


def test_box_timeout_stops_a_job_that_never_ends(box, workdir):
    description = write_quick_description(
        os.path.join(workdir, 'desc'),
        proof_script('echo still working > /dev/stderr\nsleep 3600\n')
    )
    target = os.path.join(workdir, 'target')
    started = time.monotonic()
    completed = run_boxbuild(
        box, boxbuild_argv(['--box-timeout', '1'], description, target), cwd=workdir
    )
    seconds = time.monotonic() - started
    assert completed.returncode == 1
    assert 'the build did not end within --box-timeout=1 minutes and the box was ' \
        'stopped: see' in completed.stdout
    assert 'Traceback' not in completed.stdout
    assert LIMIT_SECONDS <= seconds < LIMIT_SECONDS + STOP_SECONDS
    assert containers(box) == []
