"""
The network of a box VM (issue 12, finding 4): the box reaches the
outside (the host's Debian mirror) and, of the host's loopback, only
the sshd its run forwards, which serves only the shares.
"""
import os

import pytest

from harness.boxbuild import run_boxbuild
from harness.descriptions import proof_script, write_quick_description
from harness.network_probes import BANNER, loopback_service, probe_result, probe_script
from harness.vm_boxbuild import boxbuild_argv

pytestmark = [pytest.mark.integration, pytest.mark.vm]

# With the run's key the box asks the run's sshd for the host's
# /etc/passwd and for a file beside the shares, as a hostile build would
SFTP_ATTACK = '''\
port=$(tr ' ' '\\n' < /proc/cmdline | sed -n 's/^kiwi_ssh_port=_\\([0-9]*\\)_$/\\1/p')
login=$(tr ' ' '\\n' < /proc/cmdline | sed -n 's/^host_kiwibundle=_\\([^:]*\\):.*/\\1/p')
printf -- '-get /etc/passwd /bundle/host-passwd.txt\\n-get "{secret}" /bundle/secret.txt\\n' | \\
    sftp -b - -i /run/kiwi-box/ssh_identity -P "$port" -o StrictHostKeyChecking=no \\
    -o UserKnownHostsFile=/dev/null "$login" > /bundle/sftp-attack.txt 2>&1 || true
'''


def read(path):
    with open(path) as handle:
        return handle.read()


def test_sshfs_box_reaches_the_mirror_and_the_runs_sshd_only(vm, workdir):
    """
    A quick job over sshfs: the shares mount (the box reaches its run's
    sshd), the mirror answers, a service on the host's loopback does
    not, and the run's key gets nothing but the shares
    """
    secret = os.path.join(workdir, 'beside the shares', 'secret.txt')
    os.makedirs(os.path.dirname(secret))
    with open(secret, 'w') as handle:
        handle.write('not for the box\n')
    target = os.path.join(workdir, 'target')
    with loopback_service() as port:
        description = write_quick_description(
            os.path.join(workdir, 'desc'), proof_script(
                probe_script(port) + SFTP_ATTACK.format(secret=secret)
            )
        )
        completed = run_boxbuild(
            vm, boxbuild_argv(['--sshfs-sharing'], description, target), cwd=workdir
        )

    # the shares worked both ways: kiwi read the description and failed
    assert completed.returncode == 1, completed.stdout
    assert 'no-such-element-kiwi-rejects' in read(os.path.join(target, 'result.log'))
    probe = probe_result(target)
    print(probe, read(os.path.join(target, 'sftp-attack.txt')))
    assert probe['mirror'] == 200
    assert '10.0.2.2' in probe['loopback service']
    for address, answer in probe['loopback service'].items():
        assert BANNER not in answer, address
    # the sshd of the run serves the shares only
    assert not os.path.exists(os.path.join(target, 'secret.txt'))
    fetched = os.path.join(target, 'host-passwd.txt')
    assert not os.path.exists(fetched) or read(fetched) != read('/etc/passwd')
