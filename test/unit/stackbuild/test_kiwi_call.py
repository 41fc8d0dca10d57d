import os
import sys

import pytest

from kiwi_plugin_support.exceptions import KiwiPluginArgumentError
from kiwi_stackbuild_plugin import kiwi_call
from kiwi_stackbuild_plugin.exceptions import KiwiStackKiwiError, KiwiStackPathError
from kiwi_stackbuild_plugin.kiwi_call import (
    KiwiCall, check_shell_literal, global_options, kiwi_executable
)

GLOBALS = {
    '--profile': ['a', 'b'], '--setenv': ['X=1 2'], '--type': 'tbz', '--debug': True,
    '--config': '/c f.yml', '--kiwi-file': 'x.kiwi', '--target-arch': 'aarch64',
    '--temp-dir': None, '--logfile': '/log', '--loglevel': '10', '--color-output': False,
    '--shared-cache-dir': '/cache',
}


def test_global_options():
    assert global_options(GLOBALS) == [
        '--profile=a', '--profile=b', '--setenv=X=1 2', '--shared-cache-dir=/cache',
        '--target-arch=aarch64', '--type=tbz', '--debug', '--config=/c f.yml',
        '--kiwi-file=x.kiwi',
    ]
    assert global_options({}) == []


def test_kiwi_executable(mocker):
    beside = os.path.join(os.path.dirname(sys.executable), 'kiwi-ng')
    access = mocker.patch.object(os, 'access', return_value=True)
    assert kiwi_executable() == [beside]
    access.return_value = False
    which = mocker.patch.object(kiwi_call.shutil, 'which', return_value='/usr/bin/kiwi-ng')
    assert kiwi_executable() == ['/usr/bin/kiwi-ng']
    which.return_value = None
    assert kiwi_executable()[:2] == [sys.executable, '-c']


@pytest.mark.parametrize('path', ['/var/tmp/build-1', '/a/b_c/d.e/f+g@h,i:j=k%'])
def test_shell_literal_paths(path):
    check_shell_literal(path, '--target-dir')


@pytest.mark.parametrize('path', ['/a b', '/a$(x)', "/a'b", '/a"b', '/a;b', '/a\nb', '/a*'])
def test_paths_kiwi_cannot_take(path):
    with pytest.raises(KiwiStackPathError, match='--target-dir'):
        check_shell_literal(path, '--target-dir')


def test_rebuild_call(mocker):
    mocker.patch.object(kiwi_call, 'kiwi_executable', return_value=['kiwi-ng'])
    call = KiwiCall('/t', ['--signing-key', '/k'], {'--type': 'tbz'})
    assert call.root == '/t/build/image-root'
    assert call.argv == [
        'kiwi-ng', '--type=tbz', 'system', 'create', '--signing-key', '/k',
        '--root', '/t/build/image-root', '--target-dir', '/t',
    ]


def test_build_call(mocker, tmp_path):
    mocker.patch.object(kiwi_call, 'kiwi_executable', return_value=['kiwi-ng'])
    call = KiwiCall('/t', ['--add-package', 'vim'], {}, description='/d')
    assert call.argv == [
        'kiwi-ng', 'system', 'build', '--add-package', 'vim', '--description', '/d',
        '--target-dir', '/t', '--allow-existing-root',
    ]


@pytest.mark.parametrize('passthrough, description, match', [
    (['--bogus'], '', "'--bogus' is not an option of 'kiwi-ng system create'"),
    (['--root', '/x'], '', "'--root' is set by the plugin"),
    (['--allow-existing-root'], '/d', "'--allow-existing-root' is set by the plugin"),
    (['stray'], '/d', "invalid arguments for 'kiwi-ng system build'"),
])
def test_invalid_passthrough(passthrough, description, match):
    with pytest.raises(KiwiPluginArgumentError, match=match):
        KiwiCall('/t', passthrough, {}, description=description)


def test_unsafe_description():
    with pytest.raises(KiwiStackPathError, match="--description '/d d'"):
        KiwiCall('/t', [], {}, description='/d d')


def test_run(mocker):
    run = mocker.patch.object(kiwi_call.subprocess, 'run')
    run.return_value.returncode = 0
    call = KiwiCall('/t', [], {})
    call.run()
    run.assert_called_once_with(call.argv)
    run.return_value.returncode = 2
    with pytest.raises(KiwiStackKiwiError, match='exit code 2 .* stays in /t/build/image-root'):
        call.run()
