"""
Boxes that hang, with real boots: a kernel panic in a box whose catalog
sets no panic= (as no published box does), a box whose agent never runs,
and a job whose kiwi arguments hold the word kiwi-no-halt. Each ends in
bounded time with one line and the console's tail; without the fixes
each of them hangs for good.
"""
import os
import subprocess
import time

import pytest
import yaml

from harness.descriptions import proof_script, write_quick_description
from harness.vm_boxbuild import boxbuild_argv

pytestmark = [pytest.mark.integration, pytest.mark.vm]

# A hung run fails the test after this long instead of hanging it; far
# above the seconds that a box that ends takes under load
HUNG_RUN_SECONDS = 600
# The start limit of the box whose agent never runs
START_TIMEOUT = 30


def read(path):
    with open(path, errors='replace') as handle:
        return handle.read()


def catalog_with_cmdline(vm, workdir, change):
    """
    The VM tests' catalog with the kernel command line of the box
    changed by change(list of words)

    :return: the environment of a boxbuild with that catalog
    """
    with open(vm.catalog) as handle:
        catalog = yaml.safe_load(handle)
    for box in catalog['box']:
        for arch in box['arch']:
            arch['cmdline'] = change(list(arch['cmdline']))
    path = os.path.join(workdir, 'catalog.yml')
    with open(path, 'w') as handle:
        yaml.safe_dump(catalog, handle)
    return vm.environment(KIWI_BOXED_PLUGIN_CFG=path)


def run_bounded(argv, workdir, environment):
    """
    A boxbuild to its end, which must come within HUNG_RUN_SECONDS

    :return: the completed run, its output as text, and its seconds
    """
    started = time.monotonic()
    try:
        completed = subprocess.run(
            argv, cwd=workdir, env=environment, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors='replace', timeout=HUNG_RUN_SECONDS
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f'the boxbuild hung: no end within {HUNG_RUN_SECONDS} s')
    print(completed.stdout)
    return completed, time.monotonic() - started


def test_kernel_panic_ends_the_box(vm, workdir):
    """
    The box's catalog sets no panic=, the kernel panics during the job:
    boxbuild gives every box a panic=, so qemu ends (-no-reboot) and
    the run fails with the panic in the console log
    """
    environment = catalog_with_cmdline(
        vm, workdir, lambda words: [word for word in words if not word.startswith('panic=')]
    )
    description = write_quick_description(
        os.path.join(workdir, 'desc'), proof_script('echo c > /proc/sysrq-trigger\nsleep 600\n')
    )
    target = os.path.join(workdir, 'target')
    completed, _ = run_bounded(boxbuild_argv([], description, target), workdir, environment)
    assert completed.returncode == 1
    assert 'Traceback' not in completed.stdout
    console = read(os.path.join(target, 'boxbuild.console.log'))
    assert 'Kernel panic' in console and 'sysrq triggered crash' in console


def test_box_whose_agent_never_runs_is_stopped(vm, workdir):
    """
    A box that boots but never starts its job (here: its agent masked)
    is stopped at the start limit: one line, the console's tail (a
    box without 'quiet' shows its boot)
    """
    environment = catalog_with_cmdline(vm, workdir, lambda words: [
        word for word in words if word != 'quiet'
    ] + ['systemd.mask=kiwi-box-agent.service'])
    environment['KIWI_BOXED_START_TIMEOUT'] = str(START_TIMEOUT)
    description = write_quick_description(os.path.join(workdir, 'desc'), proof_script())
    target = os.path.join(workdir, 'target')
    completed, seconds = run_bounded(
        boxbuild_argv([], description, target), workdir, environment
    )
    assert completed.returncode == 1
    assert f'the box did not start its job within {START_TIMEOUT} s and was stopped: ' \
        f'see {target}/boxbuild.console.log' in completed.stdout
    assert f'last lines of {target}/boxbuild.console.log' in completed.stdout
    assert seconds < START_TIMEOUT + 60
    assert not os.path.exists(os.path.join(target, 'result.code'))


def test_kiwi_no_halt_in_the_build_arguments_is_no_flag(vm, workdir):
    """
    A package named kiwi-no-halt: the box still powers off after the
    job, the run ends with kiwi's verdict
    """
    description = write_quick_description(os.path.join(workdir, 'desc'), proof_script())
    target = os.path.join(workdir, 'target')
    completed, _ = run_bounded(boxbuild_argv(
        [], description, target,
        kiwi_options=['--add-package', 'kiwi-no-halt', '--add-package', 'vim']
    ), workdir, vm.environment())
    assert completed.returncode == 1
    assert 'the build in the box failed with exit code' in completed.stdout
    assert 'no-such-element-kiwi-rejects' in read(os.path.join(target, 'result.log'))
