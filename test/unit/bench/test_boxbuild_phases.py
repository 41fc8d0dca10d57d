"""
bench.boxbuild's reading of kiwi's log: the phases of one build.
"""
from bench.boxbuild import PHASES, log_times, phases

LOG = """kiwi-box-agent: job started
[ INFO    ]: 10:00:05 | Reading runtime config file
[ DEBUG   ]: 10:00:06 | Creating directory /result/build
[ INFO    ]: 10:00:12 | Installing bootstrap packages
some output without a time
[ INFO    ]: 10:02:12 | Installing system (chroot) for build type: tbz
[ INFO    ]: 10:06:12 | Creating system image
[ INFO    ]: 10:07:00 | Bundle build results from /result
[ INFO    ]: 10:07:05 | Finalizing x.tar.xz
"""


def test_every_phase_from_start_to_return():
    started = 10 * 3600
    found = phases(LOG, started, 10 * 3600 + 7 * 60 + 10)
    assert found == {
        'start': 5, 'setup': 7, 'bootstrap': 120, 'install': 240, 'create': 48,
        'bundle': 5, 'end': 5,
    }
    assert tuple(found) == PHASES


def test_a_phase_kiwi_did_not_log_is_left_out():
    native = '\n'.join(line for line in LOG.splitlines() if 'Bundle' not in line)
    found = phases(native, 10 * 3600, 10 * 3600 + 7 * 60 + 10)
    assert 'bundle' not in found
    assert found['create'] == 53


def test_across_midnight():
    text = '[ INFO    ]: 23:59:58 | Installing bootstrap packages\n' \
           '[ INFO    ]: 00:00:03 | Installing system (chroot)\n'
    assert [stamp for stamp, _ in log_times(text)] == [86398, 86403]
    found = phases(text, 86390, 10)
    assert found['start'] == 8 and found['bootstrap'] == 5 and found['end'] == 7


def test_no_log_no_phases():
    assert phases('kiwi-ng: usage error\n', 0, 10) == {}
