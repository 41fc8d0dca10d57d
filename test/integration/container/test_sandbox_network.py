"""
The network of a box container (issue 12, finding 4): a network of its
own that reaches the outside (the host's Debian mirror) but not the
host's loopback, unless the user asks for the host's network.
"""
import os

import pytest

from harness.boxbuild import run_boxbuild
from harness.container_boxbuild import boxbuild_argv
from harness.descriptions import write_quick_description
from harness.network_probes import BANNER, loopback_service, probe_result, probe_script

pytestmark = pytest.mark.integration


def probed_run(box, workdir, environment):
    """
    A quick job whose box profile probes the network

    :return: what the probe recorded
    """
    target = os.path.join(workdir, 'target')
    with loopback_service() as port:
        description = write_quick_description(os.path.join(workdir, 'desc'), probe_script(port))
        completed = run_boxbuild(
            box, boxbuild_argv([], description, target), cwd=workdir,
            environment=box.environment(**environment)
        )
    assert completed.returncode == 1, completed.stdout
    with open(os.path.join(target, 'result.log')) as log:
        assert 'no-such-element-kiwi-rejects' in log.read()
    return probe_result(target)


def test_container_reaches_the_mirror_not_the_host_loopback(box, workdir):
    probe = probed_run(box, workdir, {})
    print(probe)
    assert probe['mirror'] == 200
    # 127.0.0.1 is the container's own; the gateway is the host
    assert len(probe['loopback service']) >= 2
    for address, answer in probe['loopback service'].items():
        assert BANNER not in answer, address


def test_host_network_on_request(box, workdir):
    """
    KIWI_BOXED_NETWORK=host: the host's network, loopback included, as
    before (e.g. for a proxy on the host's loopback)
    """
    probe = probed_run(box, workdir, {'KIWI_BOXED_NETWORK': 'host'})
    assert probe['loopback service']['127.0.0.1'] == BANNER
    assert probe['mirror'] == 200
