"""
What this host's podman needs per run: --ulimit within what root may
raise, --runtime runc where crun cannot run; the user's containers.conf
respected.
"""
import pytest

from kiwi_boxed_plugin import podman_host
from kiwi_boxed_plugin.podman_host import (
    ContainersConf,
    PodmanRunOptions,
    cgroup_is_unified,
    containers_conf_paths,
    detect_run_options,
    has_capability,
    merge_containers_conf,
    read_containers_conf,
    runtime_options,
    ulimit_hard,
    ulimit_options,
)

# this machine: hard nofile 20000, nproc 96364, pid_max 32768
HOST = {'nofile': 20000, 'nproc': 96364}
HYBRID = (
    '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n'
    '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n'
)
UNIFIED = '31 23 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n'


class TestUlimits:
    def test_podman_defaults_beyond_the_host(self):
        """
        podman's nofile 1048576 is too high; once one --ulimit is given
        the default list is gone, so nproc is given too, within pid_max
        """
        assert ulimit_options(None, HOST, 32768, can_raise=False) == [
            '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768'
        ]

    def test_nothing_when_root_may_raise(self):
        assert ulimit_options(None, HOST, 32768, can_raise=True) == []

    def test_nothing_when_the_host_allows_podmans_defaults(self):
        host = {'nofile': 1048576, 'nproc': -1}
        assert ulimit_options(None, host, 4194304, can_raise=False) == []

    def test_unlimited_host(self):
        assert ulimit_options(None, {'nofile': -1, 'nproc': -1}, 32768, False) == []

    def test_configured_limits_that_fit_are_kept_alone(self):
        configured = ['nofile=1024:4096', 'nproc=100:200']
        assert ulimit_options(configured, HOST, 32768, False) == []

    def test_configured_list_without_nproc(self):
        """
        A configured list replaces podman's built-in one: nproc falls to
        podman's default, too high; the configured entries are passed
        again, as the --ulimit replaces the list
        """
        assert ulimit_options(['nofile=1024:4096', 'memlock=-1:-1'], HOST, 32768, False) == [
            '--ulimit', 'nofile=1024:4096', '--ulimit', 'memlock=-1:-1',
            '--ulimit', 'nproc=32768:32768'
        ]

    def test_configured_too_high_is_the_users_and_warned(self, caplog):
        options = ulimit_options(['nofile=1048576:1048576'], HOST, 32768, False)
        assert options == [
            '--ulimit', 'nofile=1048576:1048576', '--ulimit', 'nproc=32768:32768'
        ]
        assert 'containers.conf sets the ulimit nofile beyond' in caplog.text

    def test_pid_max_above_the_hard_limit(self):
        host = {'nofile': 20000, 'nproc': 4096}
        assert ulimit_options(None, host, 32768, False) == [
            '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096'
        ]

    @pytest.mark.parametrize('entry, hard', [
        ('nofile=1:2', 2), ('nofile=5', 5), (' nproc = -1:-1 ', -1), ('nofile=a', None)
    ])
    def test_hard(self, entry, hard):
        assert ulimit_hard(entry) == hard


class TestRuntime:
    def test_crun_on_hybrid_cgroups(self):
        assert runtime_options('', 'crun', False, True) == ['--runtime', 'runc']

    def test_crun_by_path(self):
        assert runtime_options('', '/usr/bin/crun', False, True) == ['--runtime', 'runc']

    @pytest.mark.parametrize('configured, picked, unified, runc', [
        ('crun', 'crun', False, True),
        ('', 'runc', False, True),
        ('', 'crun', True, True),
        ('', 'crun', False, False),
        ('', '', False, True),
    ])
    def test_kept(self, configured, picked, unified, runc):
        assert runtime_options(configured, picked, unified, runc) == []

    def test_cgroups(self):
        assert not cgroup_is_unified(HYBRID)
        assert cgroup_is_unified(UNIFIED)
        assert not cgroup_is_unified('')


class TestContainersConf:
    def test_paths(self):
        assert containers_conf_paths({'CONTAINERS_CONF': '/my.conf'}, ['/x.conf']) == [
            '/my.conf'
        ]
        found = [
            '/etc/containers/containers.conf.d/b.conf', '/etc/containers/containers.conf.d/a.conf'
        ]
        assert containers_conf_paths({}, found) == [
            '/usr/share/containers/containers.conf', '/etc/containers/containers.conf',
            '/etc/containers/containers.conf.d/a.conf',
            '/etc/containers/containers.conf.d/b.conf',
        ]

    def test_later_wins(self):
        assert merge_containers_conf([
            {'containers': {'default_ulimits': ['nofile=1:1']}, 'engine': {'runtime': 'crun'}},
            {'engine': {'runtime': 'runc'}},
            {'containers': {'default_ulimits': []}},
        ]) == ContainersConf([], 'runc')

    def test_read(self, tmp_path):
        one = tmp_path / 'one.conf'
        one.write_text('[containers]\ndefault_ulimits = ["nofile=9:9"]\n')
        broken = tmp_path / 'broken.conf'
        broken.write_text('[engine\n')
        assert read_containers_conf([str(one), str(broken), str(tmp_path / 'missing')]) == \
            ContainersConf(['nofile=9:9'], '')

    def test_debian_default_sets_nothing(self, tmp_path):
        conf = tmp_path / 'containers.conf'
        conf.write_text('[containers]\n#default_ulimits = [\n#  "nofile=1280:2560",\n#]\n'
                        '[engine]\n#runtime = "crun"\n')
        assert read_containers_conf([str(conf)]) == ContainersConf(None, '')


class TestCapability:
    STATUS = 'Name:\tx\nCapEff:\t000001fffeffffff\nCapBnd:\t000001ffffffffff\n'

    def test_root_uses_the_effective_set(self):
        assert not has_capability(self.STATUS, 24, 0)
        assert has_capability(self.STATUS, 23, 0)

    def test_sudo_uses_the_bounding_set(self):
        assert has_capability(self.STATUS, 24, 1000)


class TestDetect:
    def test_this_kind_of_host(self, mocker, tmp_path):
        """
        Debian 12's podman as installed on a host without
        CAP_SYS_RESOURCE and with hybrid cgroups, where podman picked
        crun
        """
        mocker.patch.object(podman_host, 'SYSTEM_CONTAINERS_CONF', (str(tmp_path / 'none'),))
        mocker.patch.object(podman_host, 'SYSTEM_CONTAINERS_CONF_DIR', str(tmp_path))
        mocker.patch.object(podman_host, 'host_hard_limits', return_value=HOST)
        mocker.patch.object(podman_host, 'runc_installed', return_value=True)
        texts = {
            podman_host.PID_MAX: '32768\n',
            '/proc/self/status': 'CapEff:\t000001fffeffffff\n',
            '/proc/self/mountinfo': HYBRID,
        }
        mocker.patch.object(podman_host, 'read_text', side_effect=lambda path: texts[path])
        mocker.patch('os.geteuid', return_value=0)
        assert detect_run_options('crun', {}) == PodmanRunOptions(
            ['--runtime', 'runc'],
            ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768']
        )
