import errno

import pytest

from kiwi_boxed_plugin.accel import (
    Accelerator,
    KvmUnusable,
    choose_accelerator,
    software,
)


@pytest.fixture
def kvm_opens(mocker):
    mocker.patch('os.open', return_value=99)
    mocker.patch('os.close')


def test_no_accel():
    assert choose_accelerator('x86_64', 'x86_64', False) == software('--no-accel given')


def test_foreign_arch():
    chosen = choose_accelerator('aarch64', 'x86_64', True)
    assert chosen.name == 'tcg'
    assert chosen.reason == 'a aarch64 box on a x86_64 host'


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
    mocker.patch('kiwi_boxed_plugin.accel.time_tiny_guest', return_value=0.2)
    chosen = choose_accelerator('x86_64', 'x86_64', True)
    assert chosen.is_kvm
    assert chosen.describe() == 'KVM: /dev/kvm runs guests at full speed'


def test_crawling_kvm(mocker, kvm_opens):
    # what the paravirtual kvm_pvm of some cloud hosts measures
    mocker.patch('kiwi_boxed_plugin.accel.time_tiny_guest', return_value=55.0)
    chosen = choose_accelerator('x86_64', 'x86_64', True)
    assert chosen.name == 'tcg'
    assert 'a tiny guest took 55.0 ms' in chosen.reason
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
