import os
import time

import kiwi.cli
import pytest

from kiwi_boxed_plugin.agent.kiwi_box_protocol import ProtocolError, parse_job
from kiwi_boxed_plugin.catalog import Box
from kiwi_boxed_plugin.exceptions import KiwiBoxProtocolError, KiwiBoxRequestError
from kiwi_boxed_plugin.host_files import CarriedFile
from kiwi_boxed_plugin.request import (
    build_request,
    check_description,
    shared_path_for_box,
    check_target_dir,
    forwarded_global_args,
    parse_box_memory,
    parse_console,
    parse_cpus,
    parse_kiwi_version,
    parse_port,
    parse_start_timeout,
    parse_timeout,
    requested_arch,
    sharing_backend,
    unique,
)
from harness.command_line import command_args, global_args
from kiwi_plugin_support.exceptions import KiwiPluginArgumentError

# kiwi 9.24 has no --setenv
SETENV = ['X=1'] if '--setenv' in (kiwi.cli.__doc__ or '') else []


@pytest.fixture
def description(tmp_path):
    path = tmp_path / 'my desc $(touch X)'
    path.mkdir()
    (path / 'config.xml').write_text('<image/>')
    return str(path)


def make_box(mem_mb: int = 4096, processors: int = 2) -> Box:
    return Box('debian', mem_mb, processors, 'hvc0', (), 'test')


class TestBuildRequest:
    def test_kiwi_args_without_description_and_target(self, description, tmp_path):
        target = str(tmp_path / 'target dir')
        request = build_request(command_args(**{'<kiwi_build_command_args>': [
            f'--description={description}', '--target-dir', target,
            '--add-package', 'vim', '--allow-existing-root'
        ]}), global_args())
        assert request.description == description
        assert request.target_dir == target
        assert request.kiwi_args == (
            'system', 'build', '--add-package', 'vim', '--allow-existing-root'
        )

    def test_global_options_go_first(self, description, tmp_path):
        request = build_request(command_args(**{'<kiwi_build_command_args>': [
            '--description', description, '--target-dir', str(tmp_path / 't')
        ]}), global_args(**{
            '--debug': True, '--type': 'tbz', '--profile': ['a', 'b', 'a'],
            '--setenv': SETENV, '--kiwi-file': 'config.xml'
        }))
        assert request.kiwi_args == (
            '--debug', '--type=tbz', '--kiwi-file=config.xml', '--profile=a', '--profile=b'
        ) + tuple(f'--setenv={value}' for value in SETENV) + ('system', 'build')

    def test_defaults(self, description, tmp_path, mocker):
        mocker.patch('kiwi_boxed_plugin.request.host_arch', return_value='x86_64')
        request = build_request(command_args(**{'<kiwi_build_command_args>': [
            '--description', description, '--target-dir', str(tmp_path / 't')
        ]}), global_args())
        assert (request.arch, request.sharing, request.memory_mb, request.cpus) == \
            ('x86_64', '9p', 0, 0)
        assert request.update_check and request.snapshot and request.accel
        assert not request.debug and request.carried_files == ()

    def test_switches(self, description, tmp_path):
        config = tmp_path / 'kiwi.yml'
        config.write_text('xz:\n  - options: -1\n')
        request = build_request(command_args(**{
            '<kiwi_build_command_args>': [
                '--description', description, '--target-dir', str(tmp_path / 't')
            ],
            '--no-update-check': True, '--no-snapshot': True, '--no-accel': True,
            '--box-debug': True, '--sshfs-sharing': True, '--ssh-port': '2222',
            '--ssh-key': 'id_ed25519', '--aarch64': True, '--box-memory': '2G',
            '--box-smp-cpus': '1', '--machine': 'virt', '--cpu': 'cortex-a57'
        }), global_args(**{'--config': str(config)}))
        assert not request.update_check and not request.snapshot and not request.accel
        assert request.debug and request.sharing == 'sshfs'
        assert (request.ssh_port, request.ssh_key, request.arch) == \
            (2222, 'id_ed25519', 'aarch64')
        assert (request.memory_mb, request.cpus, request.machine, request.cpu) == \
            (2048, 1, 'virt', 'cortex-a57')
        assert request.carried_files == (
            CarriedFile(str(config), 'config/kiwi.yml'),
        )
        assert request.kiwi_args[:3] == (
            '--config=/bundle/.boxbuild.files/config/kiwi.yml', 'system', 'build'
        )

    def test_unknown_kiwi_option(self, description, tmp_path):
        with pytest.raises(KiwiPluginArgumentError):
            build_request(command_args(**{'<kiwi_build_command_args>': [
                '--description', description, '--target-dir', str(tmp_path),
                '--no-such-option'
            ]}), global_args())

    def test_ssh_options_apply_to_every_backend(self, description, tmp_path):
        # upstream command lines pass them with 9p too
        request = build_request(command_args(**{
            '<kiwi_build_command_args>': [
                '--description', description, '--target-dir', str(tmp_path / 't')
            ], '--ssh-port': '2222', '--ssh-key': 'id_ed25519'
        }), global_args())
        assert (request.sharing, request.ssh_port, request.ssh_key) == (
            '9p', 2222, 'id_ed25519'
        )

    def test_ssh_key_alone_leaves_the_port_to_the_run(self, description, tmp_path):
        request = build_request(command_args(**{
            '<kiwi_build_command_args>': [
                '--description', description, '--target-dir', str(tmp_path / 't')
            ], '--sshfs-sharing': True, '--ssh-key': 'id_ed25519'
        }), global_args())
        assert (request.sharing, request.ssh_port, request.ssh_key) == (
            'sshfs', 0, 'id_ed25519'
        )

    def test_keep_image_root_needs_container(self, description, tmp_path):
        tokens = ['--description', description, '--target-dir', str(tmp_path / 't')]
        with pytest.raises(KiwiBoxRequestError, match='--keep-image-root needs --container'):
            build_request(command_args(**{
                '<kiwi_build_command_args>': tokens, '--keep-image-root': True
            }), global_args())
        request = build_request(command_args(**{
            '<kiwi_build_command_args>': tokens, '--keep-image-root': True,
            '--container': True
        }), global_args())
        assert request.keep_image_root

    def test_local_repository_needs_the_shared_path(self, description, tmp_path):
        repo = tmp_path / 'repo'
        repo.mkdir()
        tokens = [
            '--description', description, '--target-dir', str(tmp_path / 't'),
            '--add-repo', f'{repo},rpm-md'
        ]
        with pytest.raises(KiwiBoxRequestError, match='--shared-path'):
            build_request(command_args(**{'<kiwi_build_command_args>': tokens}), global_args())
        request = build_request(command_args(**{
            '<kiwi_build_command_args>': tokens, '--shared-path': str(tmp_path)
        }), global_args())
        assert request.kiwi_args[-1] == f'--add-repo={repo},rpm-md'

    def test_missing_config(self, description, tmp_path):
        with pytest.raises(KiwiBoxRequestError, match='--config'):
            build_request(command_args(**{'<kiwi_build_command_args>': [
                '--description', description, '--target-dir', str(tmp_path / 't')
            ]}), global_args(**{'--config': str(tmp_path / 'none.yml')}))


class TestBoxDefaults:
    def test_memory_and_console_from_box(self, description, tmp_path):
        request = build_request(command_args(**{'<kiwi_build_command_args>': [
            '--description', description, '--target-dir', str(tmp_path / 't')
        ]}), global_args())
        assert request.box_memory_mb(make_box(4096)) == 4096
        assert request.box_console(make_box()) == 'hvc0'

    def test_cpus_capped_at_host(self, description, tmp_path, mocker):
        mocker.patch('os.cpu_count', return_value=2)
        request = build_request(command_args(**{'<kiwi_build_command_args>': [
            '--description', description, '--target-dir', str(tmp_path / 't')
        ]}), global_args())
        assert request.box_cpus(make_box(processors=4)) == 2
        assert request.box_cpus(make_box(processors=0)) == 1

    def test_cpus_override_whatever_box_declares(self, description, tmp_path):
        request = build_request(command_args(**{
            '<kiwi_build_command_args>': [
                '--description', description, '--target-dir', str(tmp_path / 't')
            ], '--box-smp-cpus': '1', '--box-console': 'ttyS0', '--box-memory': '1024M'
        }), global_args())
        assert request.box_cpus(make_box(processors=0)) == 1
        assert request.box_cpus(make_box(processors=4)) == 1
        assert request.box_console(make_box()) == 'ttyS0'
        assert request.box_memory_mb(make_box(4096)) == 1024


class TestArch:
    @pytest.mark.parametrize('given,expected', [
        ({'--x86_64': True}, 'x86_64'),
        ({'--aarch64': True}, 'aarch64'),
        ({'--box-arch': 's390x'}, 's390x'),
        ({'--box-arch': 'ppc64le'}, 'ppc64le'),
    ])
    def test_chosen(self, given, expected):
        assert requested_arch(command_args(**given)) == expected

    def test_host_default(self, mocker):
        mocker.patch('platform.machine', return_value='arm64')
        assert requested_arch(command_args()) == 'aarch64'

    def test_unknown(self):
        with pytest.raises(KiwiBoxRequestError, match='mips'):
            requested_arch(command_args(**{'--box-arch': 'mips'}))


@pytest.mark.parametrize('given,expected', [
    ({}, '9p'), ({'--9p-sharing': True}, '9p'),
    ({'--virtiofs-sharing': True}, 'virtiofs'), ({'--sshfs-sharing': True}, 'sshfs'),
])
def test_sharing_backend(given, expected):
    assert sharing_backend(command_args(**given)) == expected


class TestMemory:
    @pytest.mark.parametrize('value,expected', [
        (None, 0), ('8G', 8192), ('8096M', 8096), ('8', 8192), ('1GiB', 1024),
        ('512M', 512),
    ])
    def test_sizes(self, value, expected, mocker):
        mocker.patch('kiwi_boxed_plugin.request.host_memory_mb', return_value=65536)
        assert parse_box_memory(value) == expected

    @pytest.mark.parametrize('value', ['0', '-1G', 'lots', '8T', '1.5G', ''])
    def test_not_sizes(self, value):
        with pytest.raises(KiwiBoxRequestError, match='not a size'):
            parse_box_memory(value)

    def test_too_small(self):
        with pytest.raises(KiwiBoxRequestError, match='too small'):
            parse_box_memory('256M')

    def test_more_than_host(self, mocker):
        mocker.patch('kiwi_boxed_plugin.request.host_memory_mb', return_value=4096)
        with pytest.raises(KiwiBoxRequestError, match='more than this host'):
            parse_box_memory('8G')

    def test_host_unknown_allows_any(self, mocker):
        mocker.patch('kiwi_boxed_plugin.request.host_memory_mb', return_value=0)
        assert parse_box_memory('64G') == 65536


class TestCpus:
    @pytest.mark.parametrize('value,expected', [(None, 0), ('1', 1), ('2', 2)])
    def test_counts(self, value, expected, mocker):
        mocker.patch('os.cpu_count', return_value=2)
        assert parse_cpus(value) == expected

    @pytest.mark.parametrize('value', ['0', '-2', 'two', '1.5', '256', ''])
    def test_nonsense(self, value):
        with pytest.raises(KiwiBoxRequestError, match='1 to 255'):
            parse_cpus(value)

    def test_more_than_host_warns(self, mocker, caplog):
        mocker.patch('os.cpu_count', return_value=2)
        assert parse_cpus('4') == 4
        assert 'slower' in caplog.text


class TestSmallValues:
    @pytest.mark.parametrize('value,expected', [(None, ''), ('hvc0', 'hvc0'), ('ttyS0', 'ttyS0')])
    def test_console(self, value, expected):
        assert parse_console(value) == expected

    @pytest.mark.parametrize('value', ['hvc0 x', '/dev/hvc0', ''])
    def test_bad_console(self, value):
        with pytest.raises(KiwiBoxRequestError):
            parse_console(value)

    @pytest.mark.parametrize('value,expected', [
        (None, ''), ('10.2.3', '10.2.3'), ('9.24.61', '9.24.61')
    ])
    def test_kiwi_version(self, value, expected):
        assert parse_kiwi_version(value) == expected

    @pytest.mark.parametrize('value', ['latest', '10 1', '$(id)', '-1'])
    def test_bad_kiwi_version(self, value):
        with pytest.raises(KiwiBoxRequestError):
            parse_kiwi_version(value)

    @pytest.mark.parametrize('value,expected', [(None, 0), ('2222', 2222), ('65535', 65535)])
    def test_port(self, value, expected):
        assert parse_port(value) == expected

    @pytest.mark.parametrize('value', ['22', '0', '65536', 'ssh', '-1'])
    def test_bad_port(self, value):
        with pytest.raises(KiwiBoxRequestError, match='port'):
            parse_port(value)


class TestPaths:
    def test_shared_path(self, tmp_path):
        assert shared_path_for_box(None) == ''
        assert shared_path_for_box(str(tmp_path)) == os.path.realpath(tmp_path)

    def test_shared_path_missing(self, tmp_path):
        with pytest.raises(KiwiBoxRequestError, match='not an existing directory'):
            shared_path_for_box(str(tmp_path / 'none'))

    def test_shared_path_root(self):
        with pytest.raises(KiwiBoxRequestError, match='whole box'):
            shared_path_for_box('/')

    def test_shared_path_with_space(self, tmp_path):
        (tmp_path / 'a b').mkdir()
        with pytest.raises(KiwiBoxRequestError, match='white space'):
            shared_path_for_box(str(tmp_path / 'a b'))

    def test_description_ok(self, description):
        check_description(description, '')

    def test_description_with_kiwi_file(self, tmp_path):
        (tmp_path / 'box.kiwi').write_text('<image/>')
        check_description(str(tmp_path), '')
        check_description(str(tmp_path), 'box.kiwi')
        with pytest.raises(KiwiBoxRequestError, match='other.kiwi'):
            check_description(str(tmp_path), 'other.kiwi')

    def test_description_missing(self, tmp_path):
        with pytest.raises(KiwiBoxRequestError, match='not found'):
            check_description(str(tmp_path / 'none'), '')

    def test_description_without_kiwi_file(self, tmp_path):
        with pytest.raises(KiwiBoxRequestError, match='config.xml or'):
            check_description(str(tmp_path), '')

    def test_description_glob_characters(self, tmp_path):
        odd = tmp_path / '[x]*'
        odd.mkdir()
        with pytest.raises(KiwiBoxRequestError):
            check_description(str(odd), '')
        (odd / 'a.kiwi').write_text('<image/>')
        check_description(str(odd), '')

    @pytest.mark.parametrize('inside', ['.', 'sub', 'sub/deeper'])
    def test_target_inside_description(self, description, inside):
        with pytest.raises(KiwiBoxRequestError, match='inside the description'):
            check_target_dir(description, os.path.join(description, inside))

    def test_target_beside_description(self, description):
        check_target_dir(description, description + '-result')
        check_target_dir(description, os.path.dirname(description))

    def test_target_is_file(self, description, tmp_path):
        (tmp_path / 'file').write_text('')
        with pytest.raises(KiwiBoxRequestError, match='not a directory'):
            check_target_dir(description, str(tmp_path / 'file'))

    def test_description_not_readable(self, description, mocker):
        mocker.patch('kiwi_boxed_plugin.request.os.access', return_value=False)
        with pytest.raises(KiwiBoxRequestError, match='is not readable for this user'):
            check_description(description, '')

    def test_target_not_writable(self, description, tmp_path, mocker):
        target = tmp_path / 'target'
        target.mkdir()
        access = mocker.patch('kiwi_boxed_plugin.request.os.access', return_value=False)
        with pytest.raises(
            KiwiBoxRequestError, match=f'target directory {target} is not writable'
        ):
            check_target_dir(description, str(target))
        access.assert_called_once_with(str(target), os.W_OK | os.X_OK)

    def test_target_parent_not_writable(self, description, tmp_path, mocker):
        mocker.patch('kiwi_boxed_plugin.request.os.access', return_value=False)
        target = tmp_path / 'new' / 'target'
        expected = f'cannot create target directory {target}: {tmp_path} is not writable'
        with pytest.raises(KiwiBoxRequestError, match=expected):
            check_target_dir(description, str(target))


class TestGlobalArgs:
    def test_nothing_given(self):
        assert forwarded_global_args(global_args()) == []

    def test_all_forwarded(self):
        assert forwarded_global_args(global_args(**{
            '--debug': True, '--color-output': True, '--type': 'oem',
            '--target-arch': 'x86_64', '--loglevel': '10', '--kiwi-file': 'a.kiwi',
            '--profile': ['x', 'y'], '--setenv': SETENV,
        })) == [
            '--debug', '--color-output', '--type=oem', '--target-arch=x86_64',
            '--loglevel=10', '--kiwi-file=a.kiwi', '--profile=x', '--profile=y'
        ] + [f'--setenv={value}' for value in SETENV]

    @pytest.mark.parametrize('name,value', [
        ('--logfile', '/tmp/log'), ('--logsocket', '/tmp/socket'),
        ('--debug-run-scripts-in-screen', True),
    ])
    def test_host_only_warns(self, name, value, caplog):
        assert forwarded_global_args(global_args(**{name: value})) == []
        assert f'{name} applies to this host only' in caplog.text

    def test_unique_keeps_order(self):
        # docopt-ng turns '--profile a --profile b --profile c' into this
        assert unique(['a', 'b', 'c', 'b', 'c']) == ['a', 'b', 'c']


class TestOneRuleForBothSides:
    """
    What the box would refuse after boot is refused before any download
    """
    @pytest.mark.parametrize('path', ['/etc', '/usr', '/var', '/opt', '/tmp'])
    def test_shared_path_hiding_a_box_directory(self, path):
        with pytest.raises(KiwiBoxRequestError, match=f"--shared-path '{path}' would hide"):
            shared_path_for_box(path)

    @pytest.mark.parametrize('version', ['1!10.0', '10.2.3_rc1', 'latest'])
    def test_kiwi_version_the_box_cannot_install(self, version):
        with pytest.raises(KiwiBoxRequestError, match='is not a kiwi version'):
            parse_kiwi_version(version)

    @pytest.mark.parametrize('container', [False, True])
    def test_kiwi_argument_that_cannot_travel(self, description, tmp_path, container):
        with pytest.raises(KiwiBoxProtocolError, match='white space'):
            build_request(command_args(**{'--container': container, '<kiwi_build_command_args>': [
                '--description', description, '--target-dir', str(tmp_path / 't'),
                '--add-package', 'a\tb'
            ]}), global_args())

    def test_the_call_through_docopt(self, description, tmp_path):
        request = build_request(command_args(**{
            '--box-arch': 'aarch64', '--machine': 'virt', '--cpu': 'cortex-a57',
            '--sshfs-sharing': True, '--ssh-port': '40022', '--container': True,
            '<kiwi_build_command_args>': [
                '--description', description, '--target-dir', str(tmp_path / 't')
            ]
        }), global_args(**{'--type': 'tbz', '--profile': ['a', 'b']}))
        assert (request.arch, request.machine, request.cpu) == ('aarch64', 'virt', 'cortex-a57')
        assert (request.sharing, request.ssh_port, request.container) == ('sshfs', 40022, True)
        assert request.kiwi_args == ('--type=tbz', '--profile=a', '--profile=b', 'system', 'build')

    @pytest.mark.parametrize('options', [
        {'--kiwi-version': '1!10.0'},
        {'--kiwi-version': '10.2.3_rc1'},
        {'--shared-path': '/etc'},
        {'--shared-path': '/usr'},
    ])
    def test_refused_in_the_request_of_a_box_vm(self, description, tmp_path, options):
        """
        Each was accepted on the host and refused by the agent after the
        box had booted
        """
        with pytest.raises(KiwiBoxRequestError):
            build_request(command_args(**{'<kiwi_build_command_args>': [
                '--description', description, '--target-dir', str(tmp_path / 't')
            ]}, **options), global_args())

    def test_shared_path_with_a_quote(self, description, tmp_path):
        quoted = tmp_path / 'a"b'
        quoted.mkdir()
        with pytest.raises(KiwiBoxRequestError, match="--shared-path .*'\"'"):
            build_request(command_args(**{'<kiwi_build_command_args>': [
                '--description', description, '--target-dir', str(tmp_path / 't')
            ]}, **{'--shared-path': str(quoted)}), global_args())

    @pytest.mark.parametrize('version', [
        '10.2.3', '10', '10.2.3rc1', '10.2.3.dev1', '10.2.3+local', '10.2.3-1',
        '1!10.0', '10.2.3_rc1', 'latest', 'v10', '10.2.3;rm', '10.2.3RC1',
    ])
    def test_kiwi_version_host_and_box_agree(self, version):
        assert host_accepts(parse_kiwi_version, version) == \
            box_accepts(f'kiwi_version=_{version}_')

    @pytest.mark.parametrize('name', [
        'data', 'a"b', "it's", 'a,b', 'x:y', 'etc', '$(touch X)',
    ])
    def test_shared_path_host_and_box_agree(self, tmp_path, name):
        path = tmp_path / name
        path.mkdir()
        assert host_accepts(shared_path_for_box, str(path)) == \
            box_accepts(f'custom_mount=_{path}_')

    @pytest.mark.parametrize('path', ['/etc', '/usr', '/var', '/opt', '/tmp', '/root', '/boot'])
    def test_reserved_path_host_and_box_agree(self, path):
        with pytest.raises(KiwiBoxRequestError):
            shared_path_for_box(path)
        assert not box_accepts(f'custom_mount=_{path}_')


def host_accepts(check, value: str) -> bool:
    """
    Whether the request's check takes value
    """
    try:
        check(value)
    except KiwiBoxRequestError:
        return False
    return True


def box_accepts(word: str) -> bool:
    """
    Whether the agent takes a job with word on its command line
    """
    try:
        parse_job(f'{word} kiwi="system build"')
    except ProtocolError:
        return False
    return True


class TestTimeouts:
    def test_no_limit_by_default(self, description, tmp_path, monkeypatch):
        monkeypatch.delenv('KIWI_BOXED_START_TIMEOUT', raising=False)
        request = build_request(command_args(**{'<kiwi_build_command_args>': [
            '--description', description, '--target-dir', str(tmp_path / 't')
        ]}), global_args())
        assert request.timeout_minutes == 0 and request.run_deadline() == 0
        assert request.start_seconds == 600

    def test_box_timeout(self, description, tmp_path, monkeypatch):
        monkeypatch.setenv('KIWI_BOXED_START_TIMEOUT', '45')
        request = build_request(command_args(**{'<kiwi_build_command_args>': [
            '--description', description, '--target-dir', str(tmp_path / 't')
        ]}, **{'--box-timeout': '90'}), global_args())
        assert request.timeout_minutes == 90 and request.start_seconds == 45
        assert 0 < request.run_deadline() - time.monotonic() <= 90 * 60

    @pytest.mark.parametrize('value', ['0', '-5', '1.5', 'soon', ''])
    def test_bad_box_timeout(self, value):
        with pytest.raises(KiwiBoxRequestError, match=f"--box-timeout '{value}' is not"):
            parse_timeout(value)

    @pytest.mark.parametrize('value', ['0', '1m', 'x'])
    def test_bad_start_timeout(self, value):
        with pytest.raises(KiwiBoxRequestError, match=f"KIWI_BOXED_START_TIMEOUT '{value}' is"):
            parse_start_timeout(value)
