import errno

import pytest

from kiwi_boxed_plugin.accel import (
    CHUNK_TURNS,
    KVM_EXIT_HLT,
    KVM_EXIT_IO,
    PROBE_CHUNKS,
    PROBE_TURNS,
    Accelerator,
    KvmUnusable,
    ProbeRun,
    choose_accelerator,
    run_chunks,
    software,
)
from kiwi_boxed_plugin.defaults import Defaults


@pytest.fixture
def kvm_opens(mocker):
    mocker.patch('os.open', return_value=99)
    mocker.patch('os.close')


def test_no_accel():
    assert choose_accelerator('x86_64', 'x86_64', False) == software('--no-accel given')


def test_foreign_arch():
    chosen = choose_accelerator('aarch64', 'x86_64', True)
    assert chosen.name == 'tcg'
    assert chosen.reason == (
        "the box is aarch64, the host x86_64: KVM runs only the host's architecture"
    )


@pytest.mark.parametrize('error,reason', [
    (errno.ENOENT, '/dev/kvm does not exist'),
    (errno.EACCES, 'no permission to open /dev/kvm (join the kvm group'),
    (errno.EPERM, 'no permission to open /dev/kvm'),
    (errno.EBUSY, '/dev/kvm cannot be opened'),
])
def test_kvm_device_unusable(mocker, error, reason):
    mocker.patch('os.open', side_effect=OSError(error, 'x'))
    chosen = choose_accelerator('x86_64', 'x86_64', True)
    assert chosen.name == 'tcg'
    assert chosen.reason.startswith(reason)


def test_fast_kvm(mocker, kvm_opens):
    mocker.patch(
        'kiwi_boxed_plugin.accel.time_tiny_guest', return_value=ProbeRun(PROBE_TURNS, 0.9)
    )
    chosen = choose_accelerator('x86_64', 'x86_64', True)
    assert chosen.is_kvm
    assert chosen.describe() == 'KVM: /dev/kvm runs guests at full speed'


def test_crawling_kvm(mocker, kvm_opens):
    # what the paravirtual kvm_pvm of some cloud hosts measures
    mocker.patch(
        'kiwi_boxed_plugin.accel.time_tiny_guest', return_value=ProbeRun(CHUNK_TURNS, 55.0)
    )
    chosen = choose_accelerator('x86_64', 'x86_64', True)
    assert chosen.name == 'tcg'
    assert chosen.reason == (
        'KVM runs guests far too slowly here (a tiny guest ran 65,536 loop turns in '
        '55.0 ms, a working KVM runs 2,097,152 in about 1 ms)'
    )
    assert chosen.describe().startswith('software emulation (TCG): KVM runs guests far too slowly')


@pytest.mark.parametrize('problem', [OSError(errno.EINVAL, 'x'), KvmUnusable('exit 8')])
def test_probe_fails(mocker, kvm_opens, problem):
    mocker.patch('kiwi_boxed_plugin.accel.time_tiny_guest', side_effect=problem)
    chosen = choose_accelerator('x86_64', 'x86_64', True)
    assert chosen.name == 'tcg'
    assert chosen.reason.startswith('/dev/kvm cannot run a tiny guest')


def test_other_arch_trusts_device(mocker, kvm_opens):
    probe = mocker.patch('kiwi_boxed_plugin.accel.time_tiny_guest')
    assert choose_accelerator('aarch64', 'aarch64', True) == Accelerator(
        'kvm', '/dev/kvm is usable'
    )
    probe.assert_not_called()


class FakeGuest:
    """
    The tiny guest on a fake clock: each chunk of its loop takes what a
    KVM of the given speed needs, plus an optional stall of the host

    :param float ns_per_instruction: the KVM's speed (two instructions a turn)
    :param dict stalls_ms: chunk number -> milliseconds the host was busy
    """
    def __init__(self, mocker, ns_per_instruction, stalls_ms=None):
        self.now = 0.0
        self.chunk_ms = CHUNK_TURNS * 2 * ns_per_instruction / 1e6
        self.stalls_ms = stalls_ms or {}
        self.entries = 0
        mocker.patch('kiwi_boxed_plugin.accel.time.monotonic', side_effect=lambda: self.now)
        mocker.patch(
            'kiwi_boxed_plugin.accel.time_tiny_guest',
            side_effect=lambda kvm, limit_ms: run_chunks(self.enter, limit_ms)
        )

    def enter(self):
        if self.entries == PROBE_CHUNKS:
            return KVM_EXIT_HLT
        self.now += (self.chunk_ms + self.stalls_ms.get(self.entries, 0)) / 1000
        self.entries += 1
        return KVM_EXIT_IO


# a working KVM: a cycle a turn at 2 GHz (two instructions: 0.25 ns each)
WORKING_NS = 0.25
# the fastest paravirtual KVM seen: 50,000 turns of 'loop' in 11.0 ms
PARAVIRTUAL_NS = 11.0e6 / 50000


@pytest.mark.parametrize('stalls_ms', [{}, {0: 15.0}, {3: 8.0, 20: 8.0}])
def test_working_kvm_even_on_a_loaded_host(mocker, kvm_opens, stalls_ms):
    guest = FakeGuest(mocker, WORKING_NS, stalls_ms)
    assert choose_accelerator('x86_64', 'x86_64', True).is_kvm
    assert guest.entries == PROBE_CHUNKS


@pytest.mark.parametrize('speedup', [1, 10, 25])
def test_paravirtual_kvm_even_when_much_faster_than_seen(mocker, kvm_opens, speedup):
    guest = FakeGuest(mocker, PARAVIRTUAL_NS / speedup)
    chosen = choose_accelerator('x86_64', 'x86_64', True)
    assert chosen.name == 'tcg'
    assert chosen.reason.startswith('KVM runs guests far too slowly here')
    # stopped at the first exit past the limit, not run to its end
    assert guest.entries == 1 + int(Defaults.get_kvm_probe_limit_ms() // guest.chunk_ms)
    assert guest.entries < PROBE_CHUNKS


def test_outcomes_orders_of_magnitude_apart():
    working_ms = PROBE_TURNS * 2 * WORKING_NS / 1e6
    paravirtual_ms = PROBE_TURNS * 2 * PARAVIRTUAL_NS / 1e6
    limit_ms = Defaults.get_kvm_probe_limit_ms()
    assert 0.5 < working_ms < 2
    assert paravirtual_ms / working_ms > 500
    assert limit_ms / working_ms > 20 and paravirtual_ms / limit_ms > 20


def test_probe_ends_at_the_guests_hlt(mocker):
    mocker.patch('kiwi_boxed_plugin.accel.time.monotonic', side_effect=[1.0, 1.0005, 1.001])
    exits = iter([KVM_EXIT_IO, KVM_EXIT_HLT])
    assert run_chunks(lambda: next(exits), 30.0) == ProbeRun(CHUNK_TURNS, pytest.approx(1.0))


def test_probe_refuses_other_exits(mocker):
    with pytest.raises(KvmUnusable, match='guest exit reason 8'):
        run_chunks(lambda: 8, 30.0)
