import subprocess

import pytest

from kiwi_boxed_plugin.agent import kiwi_box_agent as agent
from kiwi_boxed_plugin.agent.kiwi_box_agent import (
    AgentError, has_default_route, kiwi_build_argv, kiwi_bundle_argv, kiwi_install_argv,
    mount_argv, parse_environment,
)
from kiwi_boxed_plugin.agent import kiwi_box_protocol as protocol
from kiwi_boxed_plugin.agent.kiwi_box_protocol import BoxJob, Share
from kiwi_boxed_plugin.agent.kiwi_box_protocol import parse_job as parse_cmdline

BASE = 'root=/dev/vda1 rw quiet console=hvc0 '
JOB = 'kiwi="--debug --type tbz system build --allow-existing-root"'

SSHFS_REMOTES = (
    ' host_kiwidescription=_joe@10.0.2.2:/home/joe/desc_'
    ' host_kiwibundle=_joe@10.0.2.2:/home/joe/out_'
)


class TestMountArgv:
    def test_9p(self):
        job = BoxJob(kiwi_args=('system', 'build'), custom_mount='/srv/a b')
        bundle, description, custom = job.shares
        options = 'trans=virtio,version=9p2000.L,msize=512000'
        assert mount_argv(job, bundle) == [
            'mount', '-t', '9p', '-o', options, 'kiwibundle', '/bundle'
        ]
        assert mount_argv(job, description) == [
            'mount', '-t', '9p', '-o', options + ',cache=loose,ro',
            'kiwidescription', '/description'
        ]
        assert mount_argv(job, custom) == [
            'mount', '-t', '9p', '-o', options, 'custompath', '/srv/a b'
        ]

    def test_virtiofs(self):
        job = BoxJob(kiwi_args=('system', 'build'), sharing_backend='virtiofs')
        assert mount_argv(job, job.shares[0]) == [
            'mount', '-t', 'virtiofs', 'kiwibundle', '/bundle'
        ]
        assert mount_argv(job, job.shares[1]) == [
            'mount', '-t', 'virtiofs', '-o', 'ro', 'kiwidescription', '/description'
        ]

    def test_sshfs(self):
        job = parse_cmdline(JOB + ' sharing_backend=_sshfs_ kiwi_ssh_port=_40022_' + SSHFS_REMOTES)
        argv = mount_argv(job, job.shares[0])
        assert argv[0] == 'sshfs' and argv[1] == '-o'
        assert argv[3:] == ['joe@10.0.2.2:/home/joe/out', '/bundle']
        options = argv[2].split(',')
        assert 'IdentityFile=/run/kiwi-box/ssh_identity' in options
        assert 'port=40022' in options
        assert 'StrictHostKeyChecking=no' in options
        assert 'UserKnownHostsFile=/dev/null' in options
        assert 'reconnect' in options
        # kiwi's result bundle reads back the absolute links it makes
        assert 'no_contain_symlinks' in options


class TestKiwiArgv:
    def test_build(self):
        job = parse_cmdline(JOB)
        assert kiwi_build_argv(job) == [
            '/opt/kiwi/bin/kiwi-ng', '--logfile', '/bundle/result.log',
            '--debug', '--type', 'tbz', 'system', 'build', '--allow-existing-root',
            '--description', '/description', '--target-dir', '/result'
        ]

    def test_bundle(self):
        assert kiwi_bundle_argv() == [
            '/opt/kiwi/bin/kiwi-ng', '--logfile', '/bundle/result.log', 'result', 'bundle',
            '--target-dir', '/result', '--bundle-dir', '/bundle', '--id', '0'
        ]

    def test_install(self):
        assert kiwi_install_argv('9.24.61') == [
            '/opt/kiwi/bin/pip', 'install', '--upgrade', 'kiwi==9.24.61'
        ]


class TestHasDefaultRoute:
    HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n'

    def test_default_route(self):
        assert has_default_route(
            self.HEADER + 'ens3\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\n'
            'ens3\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n'
        )

    def test_only_a_subnet(self):
        assert not has_default_route(
            self.HEADER + 'ens3\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n'
        )

    def test_empty(self):
        assert not has_default_route(self.HEADER)
        assert not has_default_route('')


class TestParseEnvironment:
    def test_values_with_newlines_and_equals(self):
        assert parse_environment(b'A=1\0B=x=y\0C=line1\nline2\0\0junk\0') == {
            'A': '1', 'B': 'x=y', 'C': 'line1\nline2'
        }


class TestAgentEffects:
    """
    The agent's sequence with the programs it calls recorded
    """
    @pytest.fixture
    def box(self, tmp_path, monkeypatch):
        bundle = tmp_path / 'bundle'
        bundle.mkdir()
        monkeypatch.setattr(agent, 'RESULT_CODE', str(bundle / 'result.code'))
        monkeypatch.setattr(agent, 'RESULT_LOG', str(bundle / 'result.log'))
        monkeypatch.setattr(agent, 'BOXROOT', str(tmp_path / 'description' / 'boxroot'))
        monkeypatch.setattr(agent, 'BOXPROFILE', str(tmp_path / 'boxprofile'))
        monkeypatch.setattr(agent, 'RESULT_DIR', str(tmp_path / 'result'))
        monkeypatch.setattr(agent, 'NETWORK_WAIT_SECONDS', 0)
        monkeypatch.setattr(agent, 'SSHFS_RETRY_SECONDS', 0)
        return bundle

    def recorder(self, failing=()):
        calls = []

        def run(argv, **kwargs):
            calls.append(argv)
            code = 32 if argv[0] in failing else 0
            return subprocess.CompletedProcess(argv, code, b'no such device\n', b'')
        return calls, run

    def test_failed_mount_is_reported_in_the_bundle(self, box):
        calls, run = self.recorder(failing=('mount',))
        job = parse_cmdline(JOB)
        target = str(box.parent / 'mnt')
        box_agent = agent.Agent(job, in_container=True, console=agent.Console(), run=run)
        box_agent.start_result()
        with pytest.raises(AgentError, match='cannot mount share kiwidescription'):
            box_agent.mount(Share('kiwidescription', target))
        assert (box / 'result.code').read_text() == '1\n'
        assert calls == [mount_argv(job, Share('kiwidescription', target))]

    def test_sshfs_mount_is_retried_a_bounded_number_of_times(self, box, tmp_path):
        calls, run = self.recorder(failing=('sshfs',))
        job = parse_cmdline(JOB + ' sharing_backend=_sshfs_' + SSHFS_REMOTES)
        box_agent = agent.Agent(job, in_container=False, console=agent.Console(), run=run)
        with pytest.raises(AgentError, match='no such device'):
            box_agent.mount(Share('kiwibundle', str(tmp_path / 'mnt'), 'joe@h:/out'))
        assert len(calls) == agent.SSHFS_ATTEMPTS

    def test_container_job_runs_kiwi_and_bundles(self, box, monkeypatch, capsys):
        calls, run = self.recorder()
        kiwi_calls = []

        def fake_kiwi(argv, environment):
            kiwi_calls.append(argv)
            return 0
        job = parse_cmdline(JOB)
        box_agent = agent.Agent(job, in_container=True, console=agent.Console(), run=run)
        monkeypatch.setattr(box_agent, 'run_kiwi', fake_kiwi)
        code = box_agent.execute()
        box_agent.finish(code)
        assert code == 0
        assert kiwi_calls == [kiwi_build_argv(job), kiwi_bundle_argv()]
        assert (box / 'result.code').read_text() == '0\n'
        out = capsys.readouterr().out.splitlines()
        assert out.count('kiwi-box-agent: job started') == 1
        assert out[-1] == 'kiwi-box-agent: job finished with exit code 0'

    def test_failing_kiwi_output_lands_in_result_log(self, box, monkeypatch):
        job = parse_cmdline(JOB)
        box_agent = agent.Agent(job, in_container=True, console=agent.Console())
        box_agent.start_result()
        argv = ['sh', '-c', 'echo "usage: kiwi-ng ..."; exit 2']
        assert box_agent.run_kiwi(argv, {'PATH': '/usr/bin:/bin'}) == 2
        log = (box / 'result.log').read_text()
        assert 'usage: kiwi-ng ...' in log
        assert 'stopped before logging' in log

    def test_kiwi_install_failure_names_the_version(self, box):
        calls, run = self.recorder(failing=(agent.KIWI_PIP,))
        job = parse_cmdline(JOB + ' kiwi_version=_99.1_')
        box_agent = agent.Agent(job, in_container=True, console=agent.Console(), run=run)
        code = box_agent.execute()
        assert code == 1
        assert 'error: cannot install kiwi 99.1' in (box / 'result.log').read_text()

    def test_boxprofile_environment_reaches_kiwi(self, box, monkeypatch):
        profile = box.parent / 'boxprofile'
        profile.write_text('HTTP_PROXY="http://proxy:3128"\nNAME="a b $((1+1))"\n')
        box_agent = agent.Agent(parse_cmdline(JOB), in_container=True, console=agent.Console())
        environment = box_agent.prepare()
        assert environment['HTTP_PROXY'] == 'http://proxy:3128'
        assert environment['NAME'] == 'a b 2'

    def test_package_proxy_reaches_kiwi(self, box):
        job = parse_cmdline('kiwi_package_proxy=_http://10.0.2.2:4711_ ' + JOB)
        box_agent = agent.Agent(job, in_container=True, console=agent.Console())
        assert box_agent.prepare()['http_proxy'] == 'http://10.0.2.2:4711'

    def test_boxprofile_proxy_wins_over_the_package_cache(self, box, capsys):
        (box.parent / 'boxprofile').write_text('http_proxy=http://mine:3128\n')
        job = parse_cmdline('kiwi_package_proxy=_http://10.0.2.2:4711_ ' + JOB)
        box_agent = agent.Agent(job, in_container=True, console=agent.Console())
        assert box_agent.prepare()['http_proxy'] == 'http://mine:3128'
        assert "package cache is not used" in capsys.readouterr().out

    def test_no_proxy_without_the_word(self, box, monkeypatch):
        monkeypatch.delenv('http_proxy', raising=False)
        box_agent = agent.Agent(parse_cmdline(JOB), in_container=True, console=agent.Console())
        assert 'http_proxy' not in box_agent.prepare()

    def test_failing_boxprofile_is_an_agent_failure(self, box):
        (box.parent / 'boxprofile').write_text('exit 3\n')
        box_agent = agent.Agent(parse_cmdline(JOB), in_container=True, console=agent.Console())
        with pytest.raises(AgentError, match='boxprofile failed'):
            box_agent.prepare()


class TestMain:
    @pytest.fixture
    def cmdline(self, tmp_path, monkeypatch):
        """
        The box's command line file and the power-offs asked for; a VM
        unless the test writes /container.cmdline
        """
        monkeypatch.setattr(protocol, 'CONTAINER_CMDLINE', str(tmp_path / 'container.cmdline'))
        monkeypatch.setattr(protocol, 'KERNEL_CMDLINE', str(tmp_path / 'cmdline'))
        monkeypatch.setattr(agent, 'open_console', lambda in_container: None)
        halts = []
        monkeypatch.setattr(agent, 'power_off', lambda: halts.append(True))
        return tmp_path, halts

    def test_container_command_line_wins(self, cmdline):
        directory, _ = cmdline
        (directory / 'cmdline').write_text('root=/dev/vda1')
        (directory / 'container.cmdline').write_text('kiwi="system build"')
        assert agent.read_cmdline() == ('kiwi="system build"', True)

    def test_kernel_command_line(self, cmdline):
        directory, _ = cmdline
        (directory / 'cmdline').write_text('root=/dev/vda1 kiwi="system build"\n')
        assert agent.read_cmdline() == ('root=/dev/vda1 kiwi="system build"\n', False)

    def test_no_job_leaves_the_box_alone(self, cmdline, capsys):
        directory, halts = cmdline
        (directory / 'cmdline').write_text('root=/dev/vda1 rw\n')
        assert agent.main() == 0
        assert halts == []
        assert 'nothing to do' in capsys.readouterr().out

    @pytest.mark.parametrize('name, extra, halted', [
        ('cmdline', '', [True]),
        ('cmdline', ' kiwi-no-halt', []),
        # a container ends with the agent, it is never powered off
        ('container.cmdline', '', []),
    ])
    def test_bad_job_is_reported_and_halts_a_vm_unless_asked(
        self, cmdline, capsys, name, extra, halted
    ):
        directory, halts = cmdline
        (directory / name).write_text('kiwi="image info" sharing_backend=_9p_' + extra)
        assert agent.main() == 2
        out = capsys.readouterr().out.splitlines()
        assert "must be 'system build'" in out[0]
        assert out[-1] == 'kiwi-box-agent: job finished with exit code 2'
        assert halts == halted

    @pytest.fixture
    def ran(self, monkeypatch):
        """
        The job the agent read and its end, instead of running it
        """
        seen = {}

        class Ran:
            def __init__(self, job, in_container, console):
                seen['job'] = job

            def execute(self):
                return 1

            def finish(self, code):
                seen['finished'] = code
        monkeypatch.setattr(agent, 'Agent', Ran)
        return seen

    @pytest.mark.parametrize('job, halted', [
        ('kiwi="system build --add-package kiwi-no-halt --profile x"', [True]),
        ('kiwi="system build --add-package=kiwi-no-halt"', [True]),
        ('kiwi-no-halt kiwi="system build --add-package kiwi-no-halt"', []),
    ])
    def test_kiwi_no_halt_read_alike_for_halt_and_job(self, cmdline, ran, job, halted):
        """
        kiwi-no-halt inside kiwi's arguments (a package of that name) is
        no flag: the job and the power-off read it alike, as the host
        writes it and the box's getty condition reads it; a box told
        otherwise kept running without a session, for good
        """
        directory, halts = cmdline
        (directory / 'cmdline').write_text(BASE + 'sharing_backend=_9p_ ' + job)
        assert agent.main() == 1
        assert ran['finished'] == 1
        assert halts == halted
        assert ran['job'].no_halt == (halted == [])


class TestConsole:
    def test_says_on_the_console_and_in_the_log_once_there_is_one(self, tmp_path):
        import io
        stream = io.BytesIO()
        console = agent.Console(stream)
        console.say('before the bundle')
        console.log_path = str(tmp_path / 'result.log')
        console.say('after')
        console.echo(b'console only\n')
        assert stream.getvalue() == (
            b'kiwi-box-agent: before the bundle\nkiwi-box-agent: after\nconsole only\n'
        )
        assert (tmp_path / 'result.log').read_text() == 'kiwi-box-agent: after\n'

    def test_a_gone_console_does_not_end_the_job(self, tmp_path):
        class Gone:
            def write(self, data):
                raise OSError(5, 'Input/output error')
        console = agent.Console(Gone())
        console.log_path = str(tmp_path / 'result.log')
        console.say('still logged')
        assert (tmp_path / 'result.log').read_text() == 'kiwi-box-agent: still logged\n'

    def test_a_container_reports_on_its_own_output(self):
        assert agent.open_console(in_container=True) is None
