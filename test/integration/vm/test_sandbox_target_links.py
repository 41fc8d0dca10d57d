"""
Links in the target dir: over virtiofs and sshfs and in container mode
a build makes real links of the host there. The next run on that target
dir follows none of them: what they name stays as it was.
"""
import os

import pytest

from harness.boxbuild import run_boxbuild
from harness.descriptions import proof_script, write_quick_description
from harness.probe_tree import fingerprint
from harness.vm_boxbuild import boxbuild_argv

pytestmark = [pytest.mark.integration, pytest.mark.vm]


def read(path):
    with open(path) as handle:
        return handle.read()


def test_planted_links_are_not_followed(vm, workdir):
    """
    A target dir with the links a build of an earlier run left, each
    naming a file or dir of the host elsewhere, and a signing key
    carried in: the run builds as always, the links are gone, every
    file and dir they named is unchanged
    """
    sentinels = os.path.join(workdir, 'sentinels')
    os.makedirs(os.path.join(sentinels, 'dir'))
    for name, text in (('console', 'precious console\n'), ('code', '0\n'),
                       (os.path.join('dir', 'mine'), 'mine\n')):
        with open(os.path.join(sentinels, name), 'w') as sentinel:
            sentinel.write(text)
    target = os.path.join(workdir, 'target')
    os.makedirs(target)
    planted = {
        'boxbuild.console.log': os.path.join(sentinels, 'console'),
        '.boxbuild.files': os.path.join(sentinels, 'dir'),
        'result.code': os.path.join(sentinels, 'code'),
    }
    for name, points_to in planted.items():
        os.symlink(points_to, os.path.join(target, name))
    before = fingerprint(sentinels)
    host_key = os.path.join(workdir, 'key.asc')
    with open(host_key, 'w') as key:
        key.write('signing key of the host\n')
    description = write_quick_description(
        os.path.join(workdir, 'desc'),
        proof_script(
            'key=$(tr \' "\' \'\\n\\n\' < /proc/cmdline | sed -n \'s/^--signing-key=//p\')\n'
            'cat "$key" > /bundle/key-seen-in-box.txt\n'
        )
    )

    completed = run_boxbuild(vm, boxbuild_argv(
        [], description, target, kiwi_options=['--signing-key', host_key]
    ), cwd=workdir)

    assert fingerprint(sentinels) == before
    # the run itself went as a run on a clean target dir goes
    assert completed.returncode == 1, completed.stdout
    assert 'the build in the box failed with exit code' in completed.stdout
    assert read(os.path.join(target, 'key-seen-in-box.txt')) == 'signing key of the host\n'
    assert 'no-such-element-kiwi-rejects' in read(os.path.join(target, 'result.log'))
    for name in ('boxbuild.console.log', 'result.code'):
        path = os.path.join(target, name)
        assert os.path.isfile(path) and not os.path.islink(path)
    assert 'kiwi-box-agent: job started' in read(os.path.join(target, 'boxbuild.console.log'))
    assert read(os.path.join(target, 'result.code')).strip() not in ('', '0')
    assert not os.path.lexists(os.path.join(target, '.boxbuild.files'))
