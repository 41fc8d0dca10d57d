"""
The box package cache across whole builds (make e2e): the tiny Debian
description built twice in the box with an empty cache of the test's
own; the second build fetches no package, and its image holds the same
packages and files as the first.
"""
import os
import re
import shutil
import subprocess

import pytest

from harness.boxbuild import run_boxbuild
from harness.vm_boxbuild import boxbuild_argv

# two whole box builds: make e2e, not CI
pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.slow, pytest.mark.e2e]

CACHE_LINE = re.compile(r'package cache: (\d+) served from the cache, (\d+) fetched')


def image(target):
    """
    The package list and the file list of the tarball in target
    """
    names = os.listdir(target)
    (packages,) = [name for name in names if name.endswith('.packages')]
    (tarball,) = [name for name in names if name.endswith('.tar.xz')]
    with open(os.path.join(target, packages)) as handle:
        package_lines = sorted(handle.read().splitlines())
    listing = subprocess.run(
        ['tar', '-tJf', os.path.join(target, tarball)], check=True, capture_output=True, text=True
    )
    return package_lines, sorted(listing.stdout.splitlines())


def test_second_build_fetches_nothing(vm, workdir, tiny_description):
    description = os.path.join(workdir, 'description')
    shutil.copytree(tiny_description, description)
    environment = vm.environment(KIWI_BOXED_PACKAGE_CACHE=os.path.join(workdir, 'packages'))
    counts = []
    images = []
    for run in ('first', 'second'):
        target = os.path.join(workdir, run)
        os.makedirs(target)
        completed = run_boxbuild(
            vm, boxbuild_argv([], description, target), workdir, environment=environment
        )
        assert completed.returncode == 0, completed.stdout
        found = CACHE_LINE.search(completed.stdout)
        assert found, completed.stdout
        counts.append((int(found.group(1)), int(found.group(2))))
        images.append(image(target))
    (first_served, first_fetched), (second_served, second_fetched) = counts
    assert first_served == 0 and first_fetched > 50
    assert second_fetched == 0
    assert second_served >= first_fetched
    assert images[0] == images[1]
