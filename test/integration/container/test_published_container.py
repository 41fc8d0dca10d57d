"""
Container mode with a box built the published way (the conformance
box: systemd as entry point, its unit reads /container.cmdline, empties
/bundle and builds straight into it, ends with 'reboot -f'), with
podman as installed: no containers.conf of the tests, boxbuild finds
what this host's podman needs (runc, ulimits root may raise) by itself.
The user's target dir is never emptied: the box builds into a staging
dir whose results are moved over.
"""
import glob
import os

import pytest

from harness.boxbuild import CONSOLE_LOG, run_boxbuild
from harness.container_boxbuild import boxbuild_argv, containers
from harness.descriptions import description_copy
from harness.podman import podman
from harness.processes import processes_mentioning
from harness.stackbuild_kiwi import RUNTIME_CONFIG

pytestmark = pytest.mark.integration

BOX = 'debian-conformance'
# the staging dirs of runs, as kiwi_boxed_plugin.staging names them
STAGING_GLOB = 'kiwi-boxbuild-*'
# a kiwi runtime config (fast xz): a host file the run carries into the
# box at /bundle/.boxbuild.files, which the box's emptying of /bundle
# must not remove
CARRIED_CONFIG = f'--config={RUNTIME_CONFIG}'


def kiwi_globals(workdir):
    """
    kiwi's global options of the builds: the carried config, and a kiwi
    cache of the test's own (another build on the host may hold the
    default cache's apt lock)
    """
    return [CARRIED_CONFIG, f'--shared-cache-dir={os.path.join(workdir, "kiwi cache")}']


def read(path):
    with open(path) as handle:
        return handle.read()


def prepared_target(workdir):
    """
    A target dir holding files of the user, one of them in build/, and
    a stale verdict
    """
    target = os.path.join(workdir, 'target dir')
    os.makedirs(os.path.join(target, 'build'))
    for name in ('keep.txt', os.path.join('build', 'mine.txt')):
        with open(os.path.join(target, name), 'w') as keep:
            keep.write('mine\n')
    with open(os.path.join(target, 'result.code'), 'w') as stale:
        stale.write('0\n')
    return target


def assert_user_files_kept_nothing_left(box, target):
    assert read(os.path.join(target, 'keep.txt')) == 'mine\n'
    assert read(os.path.join(target, 'build', 'mine.txt')) == 'mine\n'
    assert glob.glob(os.path.join(target, STAGING_GLOB)) == []
    assert containers(box) == []
    assert processes_mentioning(target) == []


def test_podman_as_installed(podman_environment):
    """
    The suite's podman has a storage of its own and no configuration of
    ours: what a box container needs here comes from boxbuild
    """
    assert 'CONTAINERS_CONF' not in podman_environment
    info = podman(podman_environment, 'info', '--format', '{{.Host.OCIRuntime.Name}}')
    assert info.stdout.strip()


@pytest.mark.slow
def test_build(conformance_box, mirror, workdir):
    """
    The tiny description built by the published-manner box: the image,
    result.code 0, the user's files kept (the box empties its /bundle),
    kiwi's build/ tree not brought over without --keep-image-root
    """
    description = description_copy(os.path.join(workdir, 'desc'), mirror)
    target = prepared_target(workdir)
    completed = run_boxbuild(conformance_box, boxbuild_argv(
        [], description, target, global_options=kiwi_globals(workdir), box_name=BOX
    ), cwd=workdir)

    assert completed.returncode == 0, completed.stdout
    assert read(os.path.join(target, 'result.code')).strip() == '0'
    images = glob.glob(os.path.join(target, 'tiny-debian.*.tar.xz'))
    assert len(images) == 1, os.listdir(target)
    assert glob.glob(os.path.join(target, 'tiny-debian.*.packages'))
    assert f'  {os.path.basename(images[0])}' in completed.stdout
    assert 'kiwi-box-job: job started' in read(os.path.join(target, CONSOLE_LOG))
    assert 'Traceback' not in completed.stdout
    assert os.listdir(os.path.join(target, 'build')) == ['mine.txt']
    assert_user_files_kept_nothing_left(conformance_box, target)


def test_failing_build(conformance_box, mirror, workdir):
    """
    kiwi in the published-manner box rejects the description: exit 1,
    the reason in result.log (kiwi got past reading the carried
    config), the user's files kept
    """
    description = description_copy(os.path.join(workdir, 'desc'), mirror, broken=True)
    target = prepared_target(workdir)
    completed = run_boxbuild(conformance_box, boxbuild_argv(
        [], description, target, global_options=kiwi_globals(workdir), box_name=BOX
    ), cwd=workdir)

    assert completed.returncode == 1, completed.stdout
    assert 'the build in the box failed with exit code 1' in completed.stdout
    assert read(os.path.join(target, 'result.code')).strip() == '1'
    assert 'no-such-element' in read(os.path.join(target, 'result.log'))
    assert 'Traceback' not in completed.stdout
    assert_user_files_kept_nothing_left(conformance_box, target)
