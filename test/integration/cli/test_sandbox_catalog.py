"""
A hostile user catalog ($KIWI_BOXED_PLUGIN_CFG) against the installed
kiwi-ng system boxbuild: refused with one line naming the catalog and
the entry, before any box program runs.
"""
import os
import stat
import subprocess

import pytest
import yaml

from harness.paths import KIWI_NG, TINY_DEBIAN

pytestmark = pytest.mark.integration

# what the box would run or be: each records that it was called
BOX_PROGRAMS = ('podman', 'sudo', 'qemu-system-x86_64', 'qemu-img', 'virtiofsd', 'sshd')


def hostile_box(**arch_changes):
    arch = {
        'name': 'x86_64',
        'cmdline': ['root=/dev/vda1'],
        'source': 'file:///nonexistent/boxes',
        'boxfiles': ['Evil.x86_64-Kernel.tar.xz', 'Evil.x86_64-System.qcow2'],
        'container': 'localhost/evil:latest',
        'use_initrd': True,
    }
    arch.update(arch_changes)
    return {'name': 'evil', 'mem_mb': '1G', 'processors': 1, 'arch': [arch]}


@pytest.fixture
def recorder(tmp_path):
    """
    A directory of stand-ins for the box programs, first on PATH; the
    file they write if any of them is called
    """
    shims = tmp_path / 'shims'
    shims.mkdir()
    called = tmp_path / 'called'
    for program in BOX_PROGRAMS:
        shim = shims / program
        shim.write_text(f'#!/bin/sh\necho "{program} $*" >> {called}\nexit 1\n')
        shim.chmod(stat.S_IRWXU)
    return str(shims), called


@pytest.mark.parametrize('box,options,field,problem', [
    # an option of a privileged 'podman create' instead of an image
    (hostile_box(container='--volume=/:/host'), ['--container'],
     'arch[x86_64].container', 'must be a full image reference'),
    # a first kiwi="..." on the command line takes the job over
    (hostile_box(cmdline=['root=/dev/vda1', 'kiwi="system', 'build"']), [],
     'arch[x86_64].cmdline', 'must hold kernel arguments'),
    (dict(hostile_box(), processors=True), [],
     'processors', 'must be a positive whole number'),
])
def test_hostile_catalog_is_refused_before_anything_runs(
    tmp_path, recorder, box, options, field, problem
):
    shims, called = recorder
    catalog = tmp_path / 'catalog.yml'
    catalog.write_text(yaml.safe_dump({'box': [box]}))
    target = tmp_path / 'target'
    environment = dict(
        os.environ, KIWI_BOXED_PLUGIN_CFG=str(catalog),
        KIWI_BOXED_CACHE_DIR=str(tmp_path / 'cache'),
        PATH=shims + os.pathsep + os.environ['PATH']
    )
    result = subprocess.run(
        [KIWI_NG, 'system', 'boxbuild', '--box', 'evil', *options, '--',
         '--description', TINY_DEBIAN, '--target-dir', str(target)],
        capture_output=True, text=True, env=environment, cwd='/', timeout=120
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert len(output.splitlines()) == 1, output
    assert f"box catalog {catalog}: box 'evil', field '{field}' {problem}" in output
    assert not called.exists(), called.read_text()
    for left_alone in (tmp_path / 'cache', target):
        assert not left_alone.exists() or not os.listdir(str(left_alone))
