import os
import sys

import kiwi.cli
import pytest

from kiwi_plugin_support.exceptions import KiwiPluginArgumentError, KiwiPluginToolMissingError
from kiwi_stackbuild_plugin import kiwi_call as kiwi_call_module
from kiwi_stackbuild_plugin.exceptions import KiwiStackKiwiError, KiwiStackPathError
from kiwi_stackbuild_plugin.interruption import dies_with_parent
from kiwi_stackbuild_plugin.kiwi_call import (
    KiwiCall, build_environment, check_shell_literal, global_options, kiwi_executable
)

STACKBUILD = ['system', 'stackbuild', '--stash', 'a', '--target-dir', '/t']


def test_global_options(kiwi_call):
    # kiwi 9.24 has no --setenv
    setenv = ['--setenv', 'X=1 2'] if '--setenv=' in (kiwi.cli.__doc__ or '') else []
    global_args, _ = kiwi_call(
        '--profile', 'a', *setenv, '--type', 'tbz', '--debug', '--config', '/c f.yml',
        '--kiwi-file', 'x.kiwi', '--target-arch', 'aarch64', '--logfile', '/log',
        '--loglevel', '10', '--shared-cache-dir', '/cache', *STACKBUILD
    )
    assert global_options(global_args) == ['--profile=a'] + [
        f'--setenv={value}' for value in setenv[1:]
    ] + [
        '--shared-cache-dir=/cache', '--target-arch=aarch64', '--type=tbz', '--debug',
        '--config=/c f.yml', '--kiwi-file=x.kiwi',
    ]
    assert global_options(kiwi_call(*STACKBUILD)[0]) == []


def test_profiles_go_on_as_kiwi_parsed_them(kiwi_call):
    global_args, _ = kiwi_call('--profile', 'a', '--profile', 'b', *STACKBUILD)
    profiles = [option for option in global_options(global_args) if '--profile' in option]
    # docopt repeats values of an option that stands in several of
    # kiwi's usage lines; the nested kiwi gets what the outer one has
    assert profiles == [f'--profile={name}' for name in global_args['--profile']]
    assert list(dict.fromkeys(profiles)) == ['--profile=a', '--profile=b']


def test_kiwi_executable(mocker):
    beside = os.path.join(os.path.dirname(sys.executable), 'kiwi-ng')
    access = mocker.patch.object(os, 'access', return_value=True)
    assert kiwi_executable() == [beside]
    access.return_value = False
    find = mocker.patch.object(
        kiwi_call_module, 'find_program', return_value='/usr/bin/kiwi-ng'
    )
    assert kiwi_executable() == ['/usr/bin/kiwi-ng']
    assert find.call_args.args[0] == 'kiwi-ng'
    find.side_effect = KiwiPluginToolMissingError('kiwi-ng not found')
    assert kiwi_executable()[:2] == [sys.executable, '-c']


@pytest.mark.parametrize('path', ['/var/tmp/build-1', '/a/b_c/d.e/f+g@h,i:j=k%'])
def test_shell_literal_paths(path):
    check_shell_literal(path, '--target-dir')


@pytest.mark.parametrize('path', ['/a b', '/a$(x)', "/a'b", '/a"b', '/a;b', '/a\nb', '/a*'])
def test_paths_kiwi_cannot_take(path):
    with pytest.raises(KiwiStackPathError, match='--target-dir'):
        check_shell_literal(path, '--target-dir')


def stacked_call(kiwi_call, *words) -> KiwiCall:
    """
    The KiwiCall of a stackbuild command line, parsed as kiwi parses it
    """
    global_args, command_args = kiwi_call(*words)
    return KiwiCall(
        command_args['--target-dir'], command_args['<kiwi_command_args>'], global_args,
        command_args['--description'] or ''
    )


@pytest.fixture
def kiwi_ng(mocker):
    mocker.patch.object(kiwi_call_module, 'kiwi_executable', return_value=['kiwi-ng'])


def test_rebuild_call(kiwi_ng, kiwi_call):
    call = stacked_call(kiwi_call, '--type', 'tbz', *STACKBUILD, '--', '--signing-key', '/k')
    assert call.root == '/t/build/image-root'
    assert call.argv == [
        'kiwi-ng', '--type=tbz', 'system', 'create', '--signing-key', '/k',
        '--root', '/t/build/image-root', '--target-dir', '/t',
    ]


def test_build_call(kiwi_ng, kiwi_call):
    call = stacked_call(
        kiwi_call, *STACKBUILD, '--description', '/d', '--', '--add-package', 'vim'
    )
    assert call.argv == [
        'kiwi-ng', 'system', 'build', '--add-package', 'vim', '--description', '/d',
        '--target-dir', '/t', '--allow-existing-root',
    ]


@pytest.mark.parametrize('passthrough, description, match', [
    (['--bogus'], [], "'--bogus' is not an option of 'kiwi-ng system create'"),
    (['--root', '/x'], [], "'--root' is set by the plugin"),
    (['--allow-existing-root'], ['--description', '/d'],
     "'--allow-existing-root' is set by the plugin"),
    (['stray'], ['--description', '/d'], "invalid arguments for 'kiwi-ng system build'"),
])
def test_invalid_passthrough(passthrough, description, match, kiwi_call):
    with pytest.raises(KiwiPluginArgumentError, match=match):
        stacked_call(kiwi_call, *STACKBUILD, *description, '--', *passthrough)


@pytest.mark.parametrize('words, match', [
    (['--target-dir', '/t t'], "--target-dir '/t t'"),
    (['--target-dir', '/t', '--description', '/d d'], "--description '/d d'"),
])
def test_unsafe_paths(words, match, kiwi_call):
    with pytest.raises(KiwiStackPathError, match=match):
        stacked_call(kiwi_call, 'system', 'stackbuild', '--stash', 'a', *words)


def test_run(mocker, kiwi_call):
    run = mocker.patch.object(kiwi_call_module.subprocess, 'run')
    run.return_value.returncode = 0
    call = stacked_call(kiwi_call, *STACKBUILD)
    call.run()
    run.assert_called_once_with(dies_with_parent(call.argv, 'INT'), env=None)
    run.return_value.returncode = 2
    with pytest.raises(KiwiStackKiwiError, match='exit code 2 .* stays in /t/build/image-root'):
        call.run()


def test_build_on_top_keeps_directory_links(mocker, kiwi_call):
    # kiwi's apt bootstrap untars packages into the stacked root: tar
    # must go through /bin -> usr/bin and the like, not replace them
    run = mocker.patch.object(kiwi_call_module.subprocess, 'run')
    run.return_value.returncode = 0
    mocker.patch.dict(os.environ, {'TAR_OPTIONS': '--no-same-owner'})
    stacked_call(kiwi_call, *STACKBUILD, '--description', '/d').run()
    environment = run.call_args.kwargs['env']
    assert environment['TAR_OPTIONS'] == '--no-same-owner --keep-directory-symlink'
    assert environment['PATH'] == os.environ['PATH']


@pytest.mark.parametrize('given, expected', [
    ({}, '--keep-directory-symlink'),
    ({'TAR_OPTIONS': '--keep-directory-symlink'}, '--keep-directory-symlink'),
    ({'TAR_OPTIONS': " --exclude='a  b'"}, "--exclude='a  b' --keep-directory-symlink"),
])
def test_build_environment(given, expected):
    assert build_environment(dict(given, HOME='/h')) == dict(HOME='/h', TAR_OPTIONS=expected)
