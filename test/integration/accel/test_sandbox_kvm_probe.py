"""
The KVM probe on this host's /dev/kvm: the tiny guest runs as written,
and the probe's outcome is far from its limit either way
"""
import os

import pytest

from kiwi_boxed_plugin.accel import KVM_DEVICE, PROBE_TURNS, time_tiny_guest
from kiwi_boxed_plugin.defaults import Defaults

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(KVM_DEVICE), reason=f'no {KVM_DEVICE}'),
]


@pytest.fixture
def kvm():
    descriptor = os.open(KVM_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    yield descriptor
    os.close(descriptor)


def test_the_tiny_guest_runs_to_its_hlt(kvm):
    # a limit no KVM reaches: every chunk's exit and the final hlt
    assert time_tiny_guest(kvm, 60000.0).turns == PROBE_TURNS


def test_the_probe_decides_with_a_margin(kvm):
    limit_ms = Defaults.get_kvm_probe_limit_ms()
    probe = time_tiny_guest(kvm, limit_ms)
    if probe.turns == PROBE_TURNS and probe.elapsed_ms <= limit_ms:
        assert probe.elapsed_ms < limit_ms / 5, 'a working KVM close to the limit'
    else:
        whole_ms = probe.elapsed_ms / probe.turns * PROBE_TURNS
        assert whole_ms > limit_ms * 5, f'a slow KVM close to the limit: {whole_ms:.0f} ms'
