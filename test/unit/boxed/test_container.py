import csv
import json
import logging
import os
import subprocess
import time
from dataclasses import replace

import pytest

import kiwi_boxed_plugin.container
from kiwi_boxed_plugin.agent.kiwi_box_protocol import AGENT_MARK, ProtocolError, parse_job
from kiwi_boxed_plugin.catalog import Box
from kiwi_boxed_plugin.container import (
    AGENT_COMMAND,
    KEEPER_COMMAND,
    MISSING_LOCAL,
    PULL,
    USE_LOCAL,
    ContainerBoxBuild,
    ContainerMount,
    Podman,
    check_container_arch,
    container_cmdline,
    container_mounts,
    container_name,
    create_argv,
    gone_runs_containers,
    ignored_vm_options,
    image_action,
    interrupt_argv,
    job_argv,
    job_file,
    podman_prefix,
    STAGING_SCRIPT,
    check_image_root_free,
    gone_staging_dirs,
    published_exit_code,
    remove_argv,
    shared_kiwi_cache,
    staging_helper_argv,
    wait_args,
)
from kiwi_boxed_plugin.console import NOT_STARTED, TIMED_OUT, Limits, RunOutcome
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxContainerError,
    KiwiBoxContainerImageError,
    KiwiBoxContainerRootError,
    KiwiBoxRequestError,
    KiwiBoxStagingError,
)
from kiwi_boxed_plugin.podman_host import PodmanRunOptions
from kiwi_boxed_plugin.result import WrittenCode
from kiwi_boxed_plugin.leftovers import maker_of
from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError
from kiwi_plugin_support.lifetime import run_identity

IMAGE = 'localhost/kiwi-boxes/debian:latest'
PODMAN = ['/usr/bin/podman']
# the podman call that lists the box containers for the sweep
SWEEP_LISTING = [
    'ps', '--all', '--filter', 'label=org.kiwi.boxbuild.run', '--format', 'json'
]


def done(code=0, stdout=b'', stderr=b''):
    return subprocess.CompletedProcess([], code, stdout, stderr)


def parse_mount(option):
    """
    The fields of a --mount value as podman reads them (a CSV line)
    """
    return next(csv.reader([option]))


@pytest.fixture
def request_of(request_of):
    """
    requests of container mode
    """
    return lambda global_options=None, **options: request_of(
        global_options, **{'--container': True, **options}
    )


class TestContainerMount:
    @pytest.mark.parametrize('path', [
        '/plain', '/with space', '/with,comma', '/with:colon', '/with"quote',
        "/with'apostrophe", '/$(touch x)', '/a=b', '/new\nline', '/"start', '/,',
    ])
    def test_paths_survive_as_one_field(self, path):
        fields = parse_mount(ContainerMount(path, '/bundle', read_only=False).option())
        assert fields == ['type=bind', f'source={path}', 'destination=/bundle']

    def test_read_only(self):
        option = ContainerMount('/d', '/description', read_only=True).option()
        assert option == 'type=bind,source=/d,destination=/description,ro'


class TestPodmanPrefix:
    def test_root_calls_podman_directly(self):
        assert podman_prefix('/usr/bin/podman', 0, '/usr/bin/sudo', False, {}) == PODMAN

    def test_user_without_sudo(self):
        with pytest.raises(KiwiBoxContainerRootError, match='needs root: run boxbuild as root'):
            podman_prefix('/usr/bin/podman', 1000, '', True, {})

    def test_user_with_sudo_and_terminal(self):
        assert podman_prefix('/usr/bin/podman', 1000, '/usr/bin/sudo', True, {}) == [
            '/usr/bin/sudo', '--', '/usr/bin/podman'
        ]

    def test_user_with_sudo_without_terminal_never_waits_for_a_password(self):
        assert podman_prefix('/usr/bin/podman', 1000, '/usr/bin/sudo', False, {}) == [
            '/usr/bin/sudo', '--non-interactive', '--', '/usr/bin/podman'
        ]

    def test_sudo_keeps_the_chosen_podman_configuration(self):
        environ = {
            'CONTAINERS_STORAGE_CONF': '/s.conf', 'CONTAINERS_CONF': '/c.conf',
            'CONTAINERS_REGISTRIES_CONF': '', 'TMPDIR': '/t', 'PATH': '/bin'
        }
        assert podman_prefix('/usr/bin/podman', 1000, '/usr/bin/sudo', True, environ) == [
            '/usr/bin/sudo', '--preserve-env=CONTAINERS_CONF,CONTAINERS_STORAGE_CONF',
            '--', '/usr/bin/podman'
        ]


class TestImageAction:
    @pytest.mark.parametrize('present,update_check,reference,action', [
        (True, True, 'registry.example/box:latest', PULL),
        (True, False, 'registry.example/box:latest', USE_LOCAL),
        (False, True, 'registry.example/box:latest', PULL),
        (False, False, 'registry.example/box:latest', PULL),
        (True, True, IMAGE, USE_LOCAL),
        (True, False, IMAGE, USE_LOCAL),
        (False, True, IMAGE, MISSING_LOCAL),
        (False, False, IMAGE, MISSING_LOCAL),
        # only the registry part makes a reference local
        (False, True, 'registry.example/localhost/box', PULL),
    ])
    def test_action(self, present, update_check, reference, action):
        assert image_action(present, update_check, reference) == action


class TestIgnoredVmOptions:
    def test_none_given(self, request_of):
        assert ignored_vm_options(request_of()) == []

    @pytest.mark.parametrize('options,expected', [
        ({'--box-memory': '2G'}, ['--box-memory']),
        ({'--box-console': 'ttyS0'}, ['--box-console']),
        ({'--box-smp-cpus': '1'}, ['--box-smp-cpus']),
        ({'--no-snapshot': True}, ['--no-snapshot']),
        ({'--no-accel': True}, ['--no-accel']),
        ({'--virtiofs-sharing': True}, ['--virtiofs-sharing']),
        ({'--sshfs-sharing': True, '--ssh-port': '2222'}, ['--sshfs-sharing', '--ssh-port']),
        ({'--machine': 'q35'}, ['--machine']),
        ({'--cpu': 'max'}, ['--cpu']),
        # options the container honours are not reported
        ({'--box-debug': True, '--no-update-check': True, '--kiwi-version': '10.2.3'}, []),
    ])
    def test_given(self, request_of, options, expected):
        assert ignored_vm_options(request_of(**options)) == expected

    def test_ssh_key(self, request_of):
        request = replace(request_of(**{'--sshfs-sharing': True}), ssh_key='id_ed25519')
        assert ignored_vm_options(request) == ['--sshfs-sharing', '--ssh-key']


class TestChecks:
    """
    Whether a box of another arch can run as a container depends on the
    host's binfmt_misc: the tests never read the real /proc, where a
    running box build may have registered a handler
    """
    def test_native_arch(self, mocker):
        problem = mocker.patch('kiwi_boxed_plugin.container.emulation_problem')
        check_container_arch('x86_64', 'x86_64')
        check_container_arch('aarch64', 'aarch64')
        problem.assert_not_called()

    def test_foreign_arch_without_emulation(self, mocker):
        problem = mocker.patch(
            'kiwi_boxed_plugin.container.emulation_problem',
            return_value='no enabled binfmt_misc handler runs aarch64 programs'
        )
        with pytest.raises(KiwiBoxContainerError) as error:
            check_container_arch('aarch64', 'x86_64')
        problem.assert_called_once_with('aarch64')
        message = str(error.value)
        assert '\n' not in message
        assert 'aarch64' in message and 'x86_64' in message
        assert 'runs through qemu-user' in message
        assert 'no enabled binfmt_misc handler runs aarch64 programs' in message
        assert 'install qemu-user-static' in message
        assert 'leave out --container' in message

    def test_foreign_arch_emulated(self, mocker, caplog):
        problem = mocker.patch(
            'kiwi_boxed_plugin.container.emulation_problem', return_value=''
        )
        caplog.set_level(logging.INFO, logger='kiwi')
        check_container_arch('s390x', 'x86_64')
        problem.assert_called_once_with('s390x')
        assert 'the s390x box container runs through qemu-user (binfmt_misc)' in caplog.text


class TestCmdline:
    def test_job(self):
        assert container_cmdline(['--debug', 'system', 'build'], '') == \
            'kiwi-no-halt kiwi="--debug system build"\n'

    def test_kiwi_version(self):
        assert container_cmdline(['system', 'build'], '10.2.3') == \
            'kiwi_version=_10.2.3_ kiwi-no-halt kiwi="system build"\n'

    @pytest.mark.parametrize('argument', ['a"b', 'a b', '', 'a\tb'])
    def test_arguments_the_agent_cannot_split(self, argument):
        with pytest.raises(ProtocolError):
            container_cmdline(['system', 'build', argument], '')

    def test_the_agent_reads_it(self):
        job = parse_job(container_cmdline(
            ['--profile=a', 'system', 'build', '--signing-key=/k'], '10.1.0'
        ))
        assert job.kiwi_args == ('--profile=a', 'system', 'build', '--signing-key=/k')
        assert job.kiwi_version == '10.1.0'
        assert job.no_halt


class TestMountsAndCalls:
    def test_mounts(self):
        mounts = container_mounts('/d', '/t', '/run/job', '', '')
        assert mounts == [
            ContainerMount('/d', '/description', True),
            ContainerMount('/t', '/bundle', False),
            ContainerMount('/run/job', '/container.cmdline', True),
        ]

    def test_mounts_with_cache_and_shared_path(self):
        mounts = container_mounts('/d', '/t', '/run/job', '/srv/x', '/srv/kiwi cache')
        assert mounts[3:] == [
            ContainerMount('/srv/kiwi cache', '/var/cache/kiwi', False),
            ContainerMount('/srv/x', '/srv/x', False),
        ]

    def test_create(self):
        mounts = [ContainerMount('/d,x', '/description', True)]
        argv = create_argv(PODMAN, 'kiwi-boxbuild-1', IMAGE, mounts, keep_running=False)
        assert argv[:4] == PODMAN + ['create', '--name', 'kiwi-boxbuild-1']
        for option in (['--privileged'], ['--network', 'bridge'], ['--pull', 'never']):
            assert any(argv[i:i + len(option)] == option for i in range(len(argv)))
        assert argv[argv.index('--mount') + 1] == \
            'type=bind,"source=/d,x",destination=/description,ro'
        assert argv[-4:] == ['--', IMAGE] + list(AGENT_COMMAND)
        assert '--tty' not in argv and '-t' not in argv

    def test_create_keeper(self):
        argv = create_argv(PODMAN, 'n', IMAGE, [], keep_running=True)
        assert argv[-6:] == ['--stop-signal', 'SIGKILL', '--', IMAGE] + list(KEEPER_COMMAND)

    def test_job_is_the_container(self):
        assert job_argv(PODMAN, 'n', keep_running=False) == PODMAN + [
            'start', '--attach', '--sig-proxy=false', 'n'
        ]

    def test_job_in_the_keeper(self):
        argv = job_argv(PODMAN, 'n', keep_running=True)
        assert argv[:2] == PODMAN + ['exec']
        assert argv[-3:] == ['n'] + list(AGENT_COMMAND)
        assert 'PYTHONUNBUFFERED=1' in argv

    def test_interrupt_and_remove(self):
        assert interrupt_argv(PODMAN, 'n') == PODMAN + ['exec', 'n', 'kill', '-INT', '-1']
        # the container had its grace before: kill what still runs
        assert remove_argv(PODMAN, 'n') == PODMAN + [
            'rm', '--force', '--ignore', '--time', '0', 'n'
        ]

    def test_wait_ends_for_a_container_never_started(self):
        assert wait_args('n') == [
            'wait', '--condition', 'created', '--condition', 'exited',
            '--condition', 'stopped', 'n'
        ]

    def test_names_are_unique_podman_names(self):
        names = {container_name() for _ in range(100)}
        assert len(names) == 100
        assert all(name.startswith('kiwi-boxbuild-') and name.isascii() for name in names)

    def test_name_and_label_carry_the_run(self):
        """
        A later run can tell that the maker of a container is gone
        """
        assert maker_of(container_name()) == run_identity()
        argv = create_argv(PODMAN, 'n', IMAGE, [], keep_running=False)
        label = argv[argv.index('--label') + 1]
        assert label == f'org.kiwi.boxbuild.run={run_identity()}'


def listing(*containers):
    return json.dumps([
        {'Names': [name], 'Labels': labels} for name, labels in containers
    ]).encode()


# the identity of a run that is gone: no process has that pid
GONE_RUN = '999999999.12345'


class TestSweep:
    def test_only_containers_of_gone_runs(self):
        assert gone_runs_containers(listing(
            ('mine', {'org.kiwi.boxbuild.run': run_identity()}),
            ('killed', {'org.kiwi.boxbuild.run': GONE_RUN}),
            ('unlabelled', None),
            ('odd label', {'org.kiwi.boxbuild.run': 'x'}),
        ).decode()) == ['killed']

    def test_nothing_listed(self):
        assert gone_runs_containers('') == []

    def test_removes_what_is_left(self, mocker, caplog):
        run = mocker.patch('subprocess.run', side_effect=[
            done(0, stdout=listing(
                ('killed', {'org.kiwi.boxbuild.run': GONE_RUN}),
                ('mine', {'org.kiwi.boxbuild.run': run_identity()}),
            )), done(0)
        ])
        Podman(PODMAN).sweep_containers()
        assert [call[0][0] for call in run.call_args_list] == [
            PODMAN + SWEEP_LISTING, remove_argv(PODMAN, 'killed')
        ]
        assert 'removing box container killed, left by a boxbuild that was killed' \
            in caplog.text

    def test_listing_refused(self, mocker):
        run = mocker.patch('subprocess.run', return_value=done(125, stderr=b'no storage'))
        Podman(PODMAN).sweep_containers()
        assert run.call_count == 1


class TestJobFile:
    def test_written_and_removed(self):
        with job_file('kiwi="system build"\n') as path:
            with open(path) as handle:
                assert handle.read() == 'kiwi="system build"\n'
            assert os.stat(path).st_mode & 0o777 == 0o644
            assert os.stat(os.path.dirname(path)).st_mode & 0o077 == 0
        assert not os.path.exists(os.path.dirname(path))


class TestSharedKiwiCache:
    def test_created(self, mocker, tmp_path):
        location = tmp_path / 'kiwi cache'
        mocker.patch(
            'kiwi.defaults.Defaults.get_shared_cache_location',
            return_value=str(location).lstrip('/')
        )
        assert shared_kiwi_cache() == str(location)
        assert location.is_dir()

    def test_not_creatable(self, mocker, tmp_path):
        blocker = tmp_path / 'file'
        blocker.write_text('')
        mocker.patch(
            'kiwi.defaults.Defaults.get_shared_cache_location',
            return_value=str(blocker / 'cache').lstrip('/')
        )
        assert shared_kiwi_cache() == ''


class TestPodman:
    def test_podman_missing(self, mocker):
        mocker.patch('shutil.which', return_value=None)
        with pytest.raises(KiwiPluginToolMissingError, match='install podman'):
            Podman.for_this_user(False)

    def test_root(self, mocker):
        mocker.patch('shutil.which', side_effect=lambda name, **kwargs: f'/usr/bin/{name}')
        mocker.patch('os.geteuid', return_value=0)
        run = mocker.patch('subprocess.run')
        assert Podman.for_this_user(False).prefix == PODMAN
        run.assert_not_called()

    def test_sudo_refused(self, mocker):
        mocker.patch('shutil.which', side_effect=lambda name, **kwargs: f'/usr/bin/{name}')
        mocker.patch('os.geteuid', return_value=1000)
        mocker.patch('subprocess.run', return_value=done(
            1, stderr=b'sudo: a password is required\n'
        ))
        with pytest.raises(
            KiwiBoxContainerRootError, match=r'sudo refused to run podman \(sudo: a password'
        ):
            Podman.for_this_user(False)

    def test_sudo_accepted(self, mocker):
        mocker.patch('shutil.which', side_effect=lambda name, **kwargs: f'/usr/bin/{name}')
        mocker.patch('os.geteuid', return_value=1000)
        run = mocker.patch('subprocess.run', return_value=done(0))
        podman = Podman.for_this_user(False)
        assert podman.prefix[:2] == ['/usr/bin/sudo', '--non-interactive']
        assert run.call_args[0][0] == podman.prefix + ['--version']

    def test_run_captures(self, mocker):
        run = mocker.patch('subprocess.run', return_value=done(0, b'x'))
        assert Podman(PODMAN).run(['image', 'exists', IMAGE]).stdout == b'x'
        assert run.call_args[0][0] == PODMAN + ['image', 'exists', IMAGE]
        assert run.call_args[1]['stdin'] == subprocess.DEVNULL


class TestEnsureImage:
    REMOTE = 'registry.example/box:latest'

    def calls(self, run):
        return [call[0][0][1:3] for call in run.call_args_list]

    def test_local_image_used(self, mocker, caplog):
        run = mocker.patch('subprocess.run', return_value=done(0))
        Podman(PODMAN).ensure_image(IMAGE, update_check=True)
        assert self.calls(run) == [['image', 'exists']]
        assert 'using the local image' in caplog.text

    def test_local_image_missing(self, mocker):
        mocker.patch('subprocess.run', return_value=done(1))
        with pytest.raises(KiwiBoxContainerImageError, match='make box'):
            Podman(PODMAN).ensure_image(IMAGE, update_check=False)

    def test_no_update_check_skips_the_pull(self, mocker):
        run = mocker.patch('subprocess.run', return_value=done(0))
        Podman(PODMAN).ensure_image(self.REMOTE, update_check=False)
        assert self.calls(run) == [['image', 'exists']]

    def test_pulled(self, mocker, caplog):
        run = mocker.patch('subprocess.run', side_effect=[done(1), done(0)])
        Podman(PODMAN).ensure_image(self.REMOTE, update_check=False)
        assert self.calls(run) == [['image', 'exists'], ['pull', '--']]
        assert run.call_args[0][0][-1] == self.REMOTE
        assert f'box container image {self.REMOTE}: pulling' in caplog.text

    def test_pull_fails_without_local_image(self, mocker):
        mocker.patch('subprocess.run', side_effect=[
            done(1), done(125, stderr=b'Trying to pull\nError: connection refused\n')
        ])
        with pytest.raises(
            KiwiBoxContainerImageError, match='cannot pull .*: Error: connection refused; check'
        ):
            Podman(PODMAN).ensure_image(self.REMOTE, update_check=True)

    def test_failed_update_check_falls_back_to_local_image(self, mocker, caplog):
        mocker.patch('subprocess.run', side_effect=[done(0), done(125, stderr=b'offline\n')])
        Podman(PODMAN).ensure_image(self.REMOTE, update_check=True)
        assert 'cannot check container image' in caplog.text
        assert '(offline): using the local image' in caplog.text


class TestContainerLifetime:
    def test_removed_after_success(self, mocker):
        run = mocker.patch('subprocess.run', return_value=done(0))
        with Podman(PODMAN).container(PODMAN + ['create', 'x'], 'n'):
            pass
        argvs = [call[0][0] for call in run.call_args_list]
        assert argvs == [PODMAN + ['create', 'x'], remove_argv(PODMAN, 'n')]

    def test_create_fails(self, mocker):
        run = mocker.patch('subprocess.run', side_effect=[
            done(125, stderr=b'Error: statfs /x: no such file or directory\n'), done(0)
        ])
        with pytest.raises(KiwiBoxContainerError, match='statfs /x'):
            with Podman(PODMAN).container(PODMAN + ['create'], 'n'):
                pytest.fail('no container')
        assert run.call_args[0][0] == remove_argv(PODMAN, 'n')

    def test_interrupted_create_is_removed(self, mocker):
        run = mocker.patch('subprocess.run', side_effect=[KeyboardInterrupt, done(0)])
        with pytest.raises(KeyboardInterrupt):
            with Podman(PODMAN).container(PODMAN + ['create'], 'n'):
                pytest.fail('no container')
        assert run.call_args[0][0] == remove_argv(PODMAN, 'n')

    def test_interrupt_stops_gracefully_then_removes(self, mocker):
        run = mocker.patch('subprocess.run', return_value=done(0))
        with pytest.raises(KeyboardInterrupt):
            with Podman(PODMAN).container(PODMAN + ['create'], 'n'):
                raise KeyboardInterrupt
        argvs = [call[0][0] for call in run.call_args_list]
        assert argvs == [
            PODMAN + ['create'], interrupt_argv(PODMAN, 'n'), PODMAN + wait_args('n'),
            remove_argv(PODMAN, 'n')
        ]

    def test_stop_wait_bounded(self, mocker, caplog):
        def run(argv, **kwargs):
            if argv[1] == 'wait':
                raise subprocess.TimeoutExpired(argv, kwargs['timeout'])
            return done(0)
        calls = mocker.patch('subprocess.run', side_effect=run)
        with pytest.raises(KeyboardInterrupt):
            with Podman(PODMAN).container(PODMAN + ['create'], 'n'):
                raise KeyboardInterrupt
        assert 'did not stop within 5 s' in caplog.text
        assert calls.call_args[0][0] == remove_argv(PODMAN, 'n')

    def test_remove_failure_is_reported(self, mocker, caplog):
        mocker.patch('subprocess.run', side_effect=[done(0), done(2, stderr=b'locked\n')])
        with Podman(PODMAN).container(PODMAN + ['create'], 'n'):
            pass
        assert 'cannot remove box container n: locked; remove it with: podman rm' in caplog.text


@pytest.fixture
def catalog(mocker):
    return mocker.patch('kiwi_boxed_plugin.container.BoxCatalog').return_value


@pytest.fixture
def root_podman(mocker):
    mocker.patch('kiwi_boxed_plugin.container.Podman.for_this_user', return_value=Podman(PODMAN))


class TestPrepare:
    def test_ready(self, box, box_arch, request_of, catalog, root_podman, mocker):
        catalog.get.return_value = box
        mocker.patch('kiwi_boxed_plugin.container.has_terminal', return_value=False)
        build = ContainerBoxBuild.prepare(request_of())
        assert build.arch == box_arch and not build.debug_shell

    def test_box_without_container_image(self, box, box_arch, request_of, catalog, root_podman):
        catalog.get.return_value = Box(
            'leap', 4096, 2, 'hvc0', (replace(box_arch, container=''),), 'test'
        )
        with pytest.raises(KiwiBoxContainerImageError, match="box 'leap' has no container"):
            ContainerBoxBuild.prepare(request_of())

    def test_vm_options_warned(self, box, request_of, catalog, root_podman, caplog):
        catalog.get.return_value = box
        ContainerBoxBuild.prepare(request_of(**{'--box-memory': '2G'}))
        assert '--box-memory applies to box VMs only' in caplog.text

    def test_debug_without_terminal(self, box, request_of, catalog, root_podman, mocker, caplog):
        catalog.get.return_value = box
        mocker.patch('kiwi_boxed_plugin.container.has_terminal', return_value=False)
        assert not ContainerBoxBuild.prepare(request_of(**{'--box-debug': True})).debug_shell
        assert '--box-debug needs a terminal' in caplog.text

    def test_debug_with_terminal(self, box, request_of, catalog, root_podman, mocker):
        catalog.get.return_value = box
        mocker.patch('kiwi_boxed_plugin.container.has_terminal', return_value=True)
        assert ContainerBoxBuild.prepare(request_of(**{'--box-debug': True})).debug_shell


class TestStagingHelpers:
    def test_image_root_refused_when_present(self, tmp_path):
        os.makedirs(tmp_path / 'build' / 'image-root')
        with pytest.raises(KiwiBoxRequestError, match='build/image-root exists: remove it'):
            check_image_root_free(str(tmp_path), True)
        check_image_root_free(str(tmp_path), False)

    def test_image_root_free(self, tmp_path):
        os.makedirs(tmp_path / 'build')
        check_image_root_free(str(tmp_path), True)

    def test_gone_staging_dirs(self):
        alive = f'kiwi-boxbuild-{run_identity()}-abc'
        assert gone_staging_dirs(
            ['kiwi-boxbuild-1.1-b', 'kiwi-boxbuild-1.1-a', alive, 'mine', 'kiwi-boxbuild-x']
        ) == ['kiwi-boxbuild-1.1-a', 'kiwi-boxbuild-1.1-b']

    @pytest.mark.parametrize('code, judged', [(129, 0), (130, 0), (0, 0), (125, 125), (1, 1)])
    def test_published_exit_code(self, code, judged):
        assert published_exit_code(code) == judged

    def test_published_create_has_no_command(self):
        argv = create_argv(
            PODMAN, 'n', IMAGE, [], keep_running=False, runs_agent=False,
            options=PodmanRunOptions(['--runtime', 'runc'], ['--ulimit', 'nofile=5:5'])
        )
        assert argv[:4] == PODMAN + ['--runtime', 'runc', 'create']
        assert argv[-3:] == ['--tty', '--', IMAGE]
        assert '--env' not in argv and 'nofile=5:5' in argv

    def test_helper_argv(self):
        argv = staging_helper_argv(
            PODMAN, 'n-finish', IMAGE, '/t a,b', ['--move', 'x'],
            PodmanRunOptions([], ['--ulimit', 'nproc=5:5'])
        )
        assert argv[:3] == PODMAN + ['run', '--rm']
        assert ['--entrypoint', '/usr/bin/python3'] == argv[
            argv.index('--entrypoint'):argv.index('--entrypoint') + 2
        ]
        assert '--privileged' not in argv and 'nproc=5:5' in argv
        assert 'type=bind,"source=/t a,b",destination=/kiwi-boxbuild-target' in argv
        assert argv[-5:] == [
            IMAGE, '/kiwi-boxbuild-staging.py', '/kiwi-boxbuild-target', '--move', 'x'
        ]
        assert os.path.isfile(STAGING_SCRIPT)


AGENT_OPTIONS = PodmanRunOptions(['--runtime', 'runc'], ['--ulimit', 'nofile=9:9'])
RUNTIME_INFO = ['info', '--format', '{{.Host.OCIRuntime.Name}}']


class TestRun:
    @pytest.fixture
    def podman(self, mocker):
        podman = Podman(PODMAN)
        mocker.patch.object(podman, 'ensure_image')
        podman.outputs = {'info': b'crun\n', 'ps': b'[]'}
        mocker.patch.object(
            podman, 'run', side_effect=lambda args: done(0, podman.outputs.get(args[0], b''))
        )
        mocker.patch(
            'kiwi_boxed_plugin.container.detect_run_options', return_value=AGENT_OPTIONS
        )
        mocker.patch('kiwi_boxed_plugin.container.shared_kiwi_cache', return_value='')
        return podman

    @pytest.fixture
    def agent_arch(self, box_arch):
        return replace(box_arch, cmdline=box_arch.cmdline + (AGENT_MARK,))

    def agent(self, mocker, code, seen, exit_code=None, files=('image.tar.xz',)):
        """
        The box: writes result.code and files into its bundle, the
        staging dir mounted at /bundle
        """
        def run_console(argv, console_log, interactive, limits):
            seen['job'] = argv
            seen['limits'] = limits
            bundle = seen['bundle']
            seen['bundle_listing'] = sorted(os.listdir(bundle))
            with open(console_log, 'w') as log:
                log.write('kiwi-box-agent: job started\n')
            with open(os.path.join(bundle, 'result.code'), 'w') as handle:
                handle.write(f'{code}\n')
            for name in files:
                os.makedirs(os.path.dirname(os.path.join(bundle, name)), exist_ok=True)
                with open(os.path.join(bundle, name), 'w') as handle:
                    handle.write('image')
            return RunOutcome(code if exit_code is None else exit_code, True)
        mocker.patch('kiwi_boxed_plugin.container.run_console', side_effect=run_console)

        def create(argv, **kwargs):
            if 'create' in argv:
                mounts = dict(
                    parse_mount(value)[1:3][::-1] for value in argv if 'type=bind' in value
                )
                seen['bundle'] = mounts['destination=/bundle'][len('source='):]
                seen['mounts'] = mounts
                seen['create'] = argv + [
                    mounts['destination=/container.cmdline'][len('source='):]
                ]
                seen['cmdline'] = open(seen['create'][-1]).read()
            return done(0)
        mocker.patch('subprocess.run', side_effect=create)

    def test_success_keeps_the_target_dir(
        self, box, agent_arch, request_of, podman, mocker, caplog
    ):
        request = request_of({'--config': None})
        os.makedirs(request.target_dir)
        keep = os.path.join(request.target_dir, 'keep.txt')
        with open(keep, 'w') as handle:
            handle.write('mine')
        with open(os.path.join(request.target_dir, 'image.tar.xz'), 'w') as handle:
            handle.write('older result')
        with open(os.path.join(request.target_dir, 'result.code'), 'w') as handle:
            handle.write('0\n')
        seen = {}
        self.agent(mocker, 0, seen)
        box_run = ContainerBoxBuild(request, box, agent_arch, podman, debug_shell=False).run()
        assert box_run.outcome == RunOutcome(0, True) and box_run.engine == 'podman'
        assert box_run.written_code == WrittenCode('0')
        assert open(keep).read() == 'mine'
        # the result replaced the older one of its name
        assert open(os.path.join(request.target_dir, 'image.tar.xz')).read() == 'image'
        assert sorted(os.listdir(request.target_dir)) == [
            'boxbuild.console.log', 'image.tar.xz', 'keep.txt', 'result.code'
        ]
        # the box built into an empty staging dir of the run in the target dir
        assert seen['bundle_listing'] == []
        assert os.path.dirname(seen['bundle']) == request.target_dir
        assert maker_of(os.path.basename(seen['bundle'])) == run_identity()
        assert seen['job'][1:3] == ['start', '--attach']
        assert seen['cmdline'] == 'kiwi-no-halt kiwi="system build"\n'
        assert seen['create'][1:4] == ['--runtime', 'runc', 'create']
        assert '--ulimit' in seen['create']
        podman.ensure_image.assert_called_once_with(IMAGE, True)
        assert [call[0][0] for call in podman.run.call_args_list] == [
            SWEEP_LISTING, RUNTIME_INFO, remove_argv([], seen['create'][5])
        ]
        assert seen['limits'] == Limits(
            start=600, started_file=os.path.join(seen['bundle'], 'result.code')
        )

    def test_published_box(self, box, box_arch, request_of, podman, mocker):
        """
        A box without our agent: its own entry point with a terminal,
        the published words only, its reboot a normal end, build/ not
        kept without --keep-image-root
        """
        request = request_of()
        seen = {}
        self.agent(mocker, 0, seen, exit_code=129, files=('image.tar.xz', 'build/image-root/x'))
        box_run = ContainerBoxBuild(request, box, box_arch, podman, debug_shell=False).run()
        assert box_run.outcome.exit_code == 0
        assert seen['create'][-4:-1] == ['--tty', '--', IMAGE]
        assert seen['cmdline'] == 'kiwi="system build"\n'
        assert sorted(os.listdir(request.target_dir)) == [
            'boxbuild.console.log', 'image.tar.xz', 'result.code'
        ]

    def test_published_box_other_exit_fails(self, box, box_arch, request_of, podman, mocker):
        seen = {}
        self.agent(mocker, 0, seen, exit_code=125)
        box_run = ContainerBoxBuild(request_of(), box, box_arch, podman, debug_shell=False).run()
        assert box_run.outcome.exit_code == 125

    @pytest.mark.parametrize('agent', [True, False], ids=['agent', 'published'])
    def test_keep_image_root(self, box, box_arch, request_of, podman, mocker, agent):
        arch = replace(box_arch, cmdline=box_arch.cmdline + (AGENT_MARK,)) if agent else box_arch
        request = replace(request_of(), keep_image_root=True)
        seen = {}
        self.agent(mocker, 0, seen, files=('image.tar.xz', 'build/image-root/etc/x',
                                           'build/other'))
        ContainerBoxBuild(request, box, arch, podman, debug_shell=False).run()
        assert os.listdir(os.path.join(request.target_dir, 'build')) == ['image-root']
        assert os.path.isfile(os.path.join(request.target_dir, 'build/image-root/etc/x'))
        assert ('kiwi-keep-image-root' in seen['cmdline']) == agent

    def test_failed_build_moves_the_log(self, box, agent_arch, request_of, podman, mocker):
        request = request_of()
        seen = {}
        self.agent(mocker, 1, seen, files=('result.log',))
        box_run = ContainerBoxBuild(request, box, agent_arch, podman, debug_shell=False).run()
        assert box_run.written_code == WrittenCode('1')
        assert os.path.isfile(os.path.join(request.target_dir, 'result.log'))
        assert not [name for name in os.listdir(request.target_dir) if maker_of(name)]

    def test_interrupt_moves_and_removes_the_staging_dir(
        self, box, agent_arch, request_of, podman, mocker
    ):
        request = request_of()
        seen = {}
        self.agent(mocker, 1, seen)
        mocker.patch.object(ContainerBoxBuild, 'run_container', side_effect=KeyboardInterrupt)
        os.makedirs(request.target_dir)
        with pytest.raises(KeyboardInterrupt):
            ContainerBoxBuild(request, box, agent_arch, podman, debug_shell=False).run()
        assert os.listdir(request.target_dir) == []

    def test_gone_runs_staging_dirs_swept(self, box, agent_arch, request_of, podman, mocker):
        request = request_of()
        os.makedirs(os.path.join(request.target_dir, 'kiwi-boxbuild-1.1-abc', 'build'))
        alive = os.path.join(request.target_dir, f'kiwi-boxbuild-{run_identity()}-abc')
        os.makedirs(alive)
        self.agent(mocker, 0, {})
        ContainerBoxBuild(request, box, agent_arch, podman, debug_shell=False).run()
        assert not os.path.exists(os.path.join(request.target_dir, 'kiwi-boxbuild-1.1-abc'))
        assert os.path.isdir(alive)

    def test_carried_files_of_an_older_run_removed(
        self, box, agent_arch, request_of, podman, mocker
    ):
        request = request_of()
        os.makedirs(os.path.join(request.target_dir, '.boxbuild.files', '1'))
        self.agent(mocker, 0, {})
        ContainerBoxBuild(request, box, agent_arch, podman, debug_shell=False).run()
        assert not os.path.exists(os.path.join(request.target_dir, '.boxbuild.files'))

    def test_through_sudo_gone_runs_swept_by_the_helper(
        self, box, agent_arch, request_of, podman, mocker
    ):
        podman.prefix = ['/usr/bin/sudo', '--', '/usr/bin/podman']
        request = request_of()
        os.makedirs(os.path.join(request.target_dir, 'kiwi-boxbuild-1.1-abc'))
        self.agent(mocker, 0, {})
        ContainerBoxBuild(request, box, agent_arch, podman, debug_shell=False).run()
        helper = subprocess.run.call_args_list[-1][0][0]
        assert helper[-2:] == ['--remove', 'kiwi-boxbuild-1.1-abc']

    def test_through_sudo_a_helper_container_moves(
        self, box, agent_arch, request_of, podman, mocker
    ):
        podman.prefix = ['/usr/bin/sudo', '--', '/usr/bin/podman']
        request = replace(request_of(), keep_image_root=True)
        seen = {}
        self.agent(mocker, 0, seen)
        ContainerBoxBuild(request, box, agent_arch, podman, debug_shell=False).run()
        helper = subprocess.run.call_args_list[-1][0][0]
        name = os.path.basename(seen['bundle'])
        assert helper[:5] == ['/usr/bin/sudo', '--', '/usr/bin/podman', '--runtime', 'runc']
        image_at = len(helper) - helper[::-1].index('--')
        assert helper[image_at:] == [
            IMAGE, '/kiwi-boxbuild-staging.py', '/kiwi-boxbuild-target', '--move', name,
            '--keep-image-root'
        ]

    def test_staging_failure_is_reported(self, box, agent_arch, request_of, podman, mocker):
        podman.prefix = ['/usr/bin/sudo', '--', '/usr/bin/podman']
        seen = {}
        self.agent(mocker, 0, seen)
        original = subprocess.run.side_effect

        def helper_fails(argv, **kwargs):
            if 'run' in argv and '--rm' in argv:
                return done(1, b'', b'staging: cannot move x\n')
            return original(argv, **kwargs)
        subprocess.run.side_effect = helper_fails
        with pytest.raises(KiwiBoxStagingError, match='cannot move x; move them yourself'):
            ContainerBoxBuild(request_of(), box, agent_arch, podman, debug_shell=False).run()

    def test_carried_files_mounted_read_only(
        self, box, box_arch, request_of, podman, mocker, tmp_path
    ):
        config = tmp_path / 'kiwi.yml'
        config.write_text('xz: []\n')
        seen = {}
        self.agent(mocker, 0, seen)
        request = request_of({'--config': str(config)})
        ContainerBoxBuild(request, box, box_arch, podman, debug_shell=False).run()
        assert '--config=/bundle/.boxbuild.files/config/kiwi.yml system build' \
            in seen['cmdline']
        carried = seen['mounts']['destination=/bundle/.boxbuild.files']
        assert carried == 'source=' + os.path.join(seen['bundle'], '.boxbuild.files')
        assert not os.path.exists(os.path.join(request.target_dir, '.boxbuild.files'))

    def test_stale_result_code_removed(self, box, agent_arch, request_of, podman, mocker):
        request = request_of()
        os.makedirs(request.target_dir)
        with open(os.path.join(request.target_dir, 'result.code'), 'w') as stale:
            stale.write('0\n')
        mocker.patch(
            'kiwi_boxed_plugin.container.run_console', return_value=RunOutcome(1, False)
        )
        mocker.patch('subprocess.run', return_value=done(0))
        box_run = ContainerBoxBuild(request, box, agent_arch, podman, debug_shell=False).run()
        assert box_run.outcome.exit_code == 1
        assert box_run.written_code == WrittenCode(None)
        assert not os.path.exists(os.path.join(request.target_dir, 'result.code'))

    def test_config_carried(self, box, agent_arch, request_of, podman, mocker, tmp_path):
        config = tmp_path / 'kiwi.yml'
        config.write_text('xz: []\n')
        seen = {}
        self.agent(mocker, 0, seen)
        request = request_of({'--config': str(config)})
        ContainerBoxBuild(request, box, agent_arch, podman, debug_shell=False).run()
        assert '--config=/bundle/.boxbuild.files/config/kiwi.yml system build' \
            in seen['cmdline']
        assert not os.path.exists(os.path.join(request.target_dir, '.boxbuild.files'))

    @pytest.mark.parametrize('limit', [NOT_STARTED, TIMED_OUT])
    def test_box_at_a_limit_is_stopped(
        self, box, agent_arch, request_of, podman, mocker, limit
    ):
        """
        The console runner stopped what ran the console; the container
        itself gets kiwi's grace, then it is removed
        """
        mocker.patch(
            'kiwi_boxed_plugin.container.run_console',
            return_value=RunOutcome(-15, True, limit)
        )
        mocker.patch('subprocess.run', return_value=done(0))
        stop = mocker.patch.object(podman, 'stop_container')
        request = request_of(**{'--box-timeout': '5'})
        box_run = ContainerBoxBuild(request, box, agent_arch, podman, debug_shell=True).run()
        assert box_run.outcome.limit == limit
        stop.assert_called_once()
        runs = [call[0][0] for call in podman.run.call_args_list]
        assert runs[-1][:2] == ['rm', '--force']
        limits = kiwi_boxed_plugin.container.run_console.call_args[0][3]
        assert 0 < limits.deadline - time.monotonic() <= 5 * 60

    def test_debug_shell(self, box, agent_arch, request_of, podman, mocker):
        seen = {}
        self.agent(mocker, 0, seen)
        build = ContainerBoxBuild(request_of(), box, agent_arch, podman, debug_shell=True)
        build.run()
        name = seen['create'][5]
        assert seen['create'][-3:-1] == list(KEEPER_COMMAND)
        assert seen['job'][1] == 'exec'
        runs = [call[0][0] for call in podman.run.call_args_list]
        assert runs == [SWEEP_LISTING, RUNTIME_INFO, ['start', name], remove_argv([], name)]
        shell = [call[0][0] for call in subprocess.run.call_args_list][-1]
        assert shell[:4] == PODMAN + ['exec', '--interactive', '--tty']
        assert shell[-3:] == [name, '/bin/bash', '--login']

    def test_debug_shell_published(self, box, box_arch, request_of, podman, mocker, caplog):
        """
        A published box stays up (kiwi-no-halt): the shell comes while
        it builds, the console log from podman's log after
        """
        seen = {}
        self.agent(mocker, 0, seen)
        request = request_of()
        build = ContainerBoxBuild(request, box, box_arch, podman, debug_shell=True)
        podman.outputs['logs'] = b'the console\n'
        box_run = build.run()
        name = seen['create'][5]
        assert 'kiwi-no-halt' in seen['cmdline']
        runs = [call[0][0] for call in podman.run.call_args_list]
        assert runs == [
            SWEEP_LISTING, RUNTIME_INFO, ['start', name], ['logs', name], remove_argv([], name)
        ]
        assert box_run.outcome == RunOutcome(0, False)
        with open(os.path.join(request.target_dir, 'boxbuild.console.log')) as log:
            assert log.read() == 'the console\n'
        assert 'a shell in the box container while the build runs' in caplog.text
