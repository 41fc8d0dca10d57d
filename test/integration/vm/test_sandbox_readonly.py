"""
The description is read-only for the box: a build script running as
root in the box (boxprofile) tries hard to write into it, remounting
and mounting it afresh, and the user's checkout stays as it was.
"""
import os

import pytest

from harness.boxbuild import run_boxbuild
from harness.descriptions import write_quick_description
from harness.probe_tree import fingerprint
from harness.vm_boxbuild import boxbuild_argv

pytestmark = [pytest.mark.integration, pytest.mark.vm]

# the box's own mount of the description's share, as root may redo it
FRESH_MOUNTS = {
    '9p': 'mount -t 9p -o trans=virtio,version=9p2000.L kiwidescription /description',
    'virtiofs': 'mount -t virtiofs kiwidescription /description',
}
BACKEND_OPTIONS = {'9p': ['--9p-sharing'], 'virtiofs': ['--virtiofs-sharing']}
# what the box script tries, in order; the mounts may work (root in the
# box), every write must not
WRITES = (
    ('touch', 'touch /description/written-by-box'),
    ('append', 'echo evil >> /description/config.xml'),
    ('git config', 'echo "[core] fsmonitor = evil" >> /description/.git/config'),
    ('chmod', 'chmod 0777 /description/description-proof.txt'),
    ('mkdir', 'mkdir /description/new-dir'),
    ('remove', 'rm -f /description/description-proof.txt'),
    ('remount rw', 'mount -o remount,rw /description'),
    ('touch after remount', 'touch /description/written-after-remount'),
    ('git config after remount', 'echo evil >> /description/.git/config'),
    ('umount', 'umount /description'),
    ('fresh mount', '{fresh_mount}'),
    ('touch after fresh mount', 'touch /description/written-after-fresh-mount'),
    ('append after fresh mount', 'echo evil >> /description/config.xml'),
)
MOUNTS = ('remount rw', 'umount', 'fresh mount')
ATTEMPTS = 'write-attempts.txt'


def attempts_script(fresh_mount):
    """
    Each attempt as a line '<name>: done' or '<name>: refused' in the
    bundle; the profile itself must not fail
    """
    lines = [f'out=/bundle/{ATTEMPTS}']
    for name, command in WRITES:
        command = command.format(fresh_mount=fresh_mount)
        lines.append(
            f"if ( {command} ) >/dev/null 2>&1; then echo '{name}: done' >> \"$out\"; "
            f"else echo '{name}: refused' >> \"$out\"; fi"
        )
    return '\n'.join(lines + ['true', ''])


@pytest.mark.parametrize('backend', ['9p', 'virtiofs'])
def test_description_stays_unchanged(vm, workdir, backend):
    checkout = os.path.join(workdir, 'checkout')
    description = write_quick_description(
        os.path.join(checkout, 'desc'), attempts_script(FRESH_MOUNTS[backend])
    )
    os.makedirs(os.path.join(description, '.git'))
    with open(os.path.join(description, '.git', 'config'), 'w') as config:
        config.write('[core]\n\tbare = false\n')
    before = fingerprint(checkout)
    target = os.path.join(workdir, 'target')

    completed = run_boxbuild(
        vm, boxbuild_argv(BACKEND_OPTIONS[backend], description, target), cwd=workdir
    )

    assert completed.returncode == 1, completed.stdout
    with open(os.path.join(target, ATTEMPTS)) as attempts:
        outcomes = dict(line.rstrip('\n').split(': ') for line in attempts)
    # in the report: which of the box's mounts root got through
    print(outcomes)
    assert list(outcomes) == [name for name, _ in WRITES], completed.stdout
    for name, outcome in outcomes.items():
        if name not in MOUNTS:
            assert outcome == 'refused', f'{name} reached the host: {outcomes}'
    assert fingerprint(checkout) == before
    # virtiofsd's read-only view was a mount of its own namespace only
    with open('/proc/self/mountinfo') as mounts:
        assert description not in mounts.read()
