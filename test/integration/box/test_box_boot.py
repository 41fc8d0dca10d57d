"""
The box boots under qemu and its agent reports every outcome of a job
through the bundle share (or, without one, the console)
"""
import pytest

from harness.descriptions import description_copy

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.vm]

JOB = 'kiwi="--type tbz system build" sharing_backend=_9p_'


def read(path):
    with open(path) as handle:
        return handle.read()


def test_job_that_kiwi_rejects(boot_box, mirror, tmp_path):
    description = description_copy(str(tmp_path / 'description'), mirror, broken=True)
    bundle = tmp_path / 'bundle'
    bundle.mkdir()
    result = boot_box(JOB, [('kiwidescription', description), ('kiwibundle', str(bundle))])
    assert 'kiwi-box-agent: job started' in result.console.splitlines()
    assert 'kiwi-box-agent: job finished with exit code 1' in result.console
    assert read(bundle / 'result.code').strip() == '1'
    log = read(bundle / 'result.log')
    assert 'KiwiDescriptionInvalid' in log
    assert 'no-such-element' in log
    # the boxroot of the description was copied into the box first
    assert "copied the description's boxroot into the box" in log


def test_missing_description_share_is_an_agent_failure(boot_box, tmp_path):
    bundle = tmp_path / 'bundle'
    bundle.mkdir()
    (bundle / 'result.code').write_text('0\n')
    result = boot_box(JOB, [('kiwibundle', str(bundle))])
    assert read(bundle / 'result.code').strip() == '1'
    assert 'error: cannot mount share kiwidescription (9p) at /description' in \
        read(bundle / 'result.log')
    assert 'kiwi-box-agent: job started' not in result.console
    assert 'kiwi-box-agent: job finished with exit code 1' in result.console


def test_missing_bundle_share_is_told_on_the_console(boot_box, mirror, tmp_path):
    description = description_copy(str(tmp_path / 'description'), mirror)
    result = boot_box(JOB, [('kiwidescription', description)])
    assert 'error: cannot mount share kiwibundle (9p) at /bundle' in result.console
    assert 'kiwi-box-agent: job finished with exit code 1' in result.console
