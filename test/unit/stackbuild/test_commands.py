import os
from unittest.mock import Mock

import pytest

from kiwi_stackbuild_plugin import stackbuild_command, stash_command
from kiwi_stackbuild_plugin.exceptions import (
    KiwiStackbuildError, KiwiStackPrivilegesError, KiwiStackTargetExistsError,
    KiwiStashNotFoundError
)
from kiwi_stackbuild_plugin.reference import StashReference
from kiwi_stackbuild_plugin.stack import StackItem
from kiwi_stackbuild_plugin.stash import StashResult


def stash_args(**given):
    args = {'--list': False, '--root': '/r', '--tag': None, '--container-name': None,
            '--push': None, '--registry-auth-file': None, '--tls-verify': False,
            '--no-tls-verify': False}
    args.update(given)
    return args


@pytest.fixture
def images(mocker):
    return mocker.patch.object(stash_command, 'ContainerImages').return_value


def test_list(images, capsys):
    images.stashes.return_value = [{'Names': ['localhost/a:b'], 'Size': 1, 'Created': 0}]
    stash_command.run_stash(stash_args(**{'--list': True}), {})
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ['a', 'b']
    images.stashes.return_value = []
    stash_command.run_stash(stash_args(**{'--list': True}), {})
    assert 'No stashes' in capsys.readouterr().out


def test_stash_and_push(images, mocker, caplog):
    mocker.patch.object(os, 'geteuid', return_value=0)
    store = mocker.patch.object(stash_command.Stash, 'store', return_value=StashResult(
        'localhost/a:v1', 'i' * 64, 3, 1, False
    ))
    stash_command.run_stash(stash_args(**{
        '--push': 'localhost:5000/s', '--tag': 'v1', '--container-name': 'a'
    }), {'--temp-dir': '/big'})
    assert stash_command.ContainerImages.call_args.args == (None, None, '/big')
    store.assert_called_once_with('/r', 'a', 'v1')
    images.push.assert_called_once_with('localhost/a:v1', 'localhost:5000/s/a:v1')
    assert '3 changed and 1 deleted' in caplog.text


def test_stash_messages(images, mocker, caplog):
    mocker.patch.object(os, 'geteuid', return_value=0)
    store = mocker.patch.object(stash_command.Stash, 'store')
    store.return_value = StashResult('localhost/a:latest', 'i' * 64, 0, 0, True)
    stash_command.run_stash(stash_args(), {})
    assert 'Stashed as localhost/a:latest (image iiiiiiiiiiii)' in caplog.text
    store.return_value = StashResult('localhost/a:latest', '', 0, 0, False)
    stash_command.run_stash(stash_args(), {})
    assert 'Nothing changed' in caplog.text
    images.push.assert_not_called()


def test_stash_checks_registry_and_root_first(images, mocker):
    store = mocker.patch.object(stash_command.Stash, 'store')
    with pytest.raises(Exception, match='is not a registry location'):
        stash_command.run_stash(stash_args(**{'--push': 'no registry'}), {})
    mocker.patch.object(os, 'geteuid', return_value=1000)
    with pytest.raises(KiwiStackPrivilegesError):
        stash_command.run_stash(stash_args(), {})
    store.assert_not_called()


def test_stash_names_prefers_what_was_typed(mocker):
    parsed = {'--stash': ['a', 'b', 'c', 'b', 'c']}
    argv = ['kiwi-ng', 'system', 'stackbuild', '--stash', 'a', '--stash', 'b', '--stash', 'c']
    assert stackbuild_command.stash_names(parsed, argv) == ['a', 'b', 'c']
    # a programmatic call: argv is not the command line that was parsed
    assert stackbuild_command.stash_names({'--stash': ['x']}, ['pytest']) == ['x']
    assert stackbuild_command.stash_names({'--stash': ['x']}, argv) == ['x']


def test_check_description(tmp_path):
    stackbuild_command.check_description(None)
    with pytest.raises(KiwiStackbuildError, match='is not a kiwi description'):
        stackbuild_command.check_description(str(tmp_path))
    (tmp_path / 'x.kiwi').write_text('')
    stackbuild_command.check_description(str(tmp_path))


def test_resolve_local_and_missing():
    images = Mock()
    images.exists.side_effect = [True, False]
    images.inspect.return_value = {'Id': 'abc'}
    images.stashes.return_value = [{'Names': ['localhost/known:v1'], 'Created': 0}]
    assert stackbuild_command.resolve(images, [StashReference('a')], None) == [
        StackItem('a:latest', 'abc')
    ]
    images.exists.assert_called_with('localhost/a:latest')
    with pytest.raises(KiwiStashNotFoundError, match=(
        "no stash 'b:latest': the stashes are known:v1; see 'kiwi-ng system stash --list'"
    )):
        stackbuild_command.resolve(images, [StashReference('b')], None)


def test_resolve_pulls_from_the_registry():
    images = Mock()
    images.pull.side_effect = ['id1', 'id2']
    items = stackbuild_command.resolve(
        images, [StashReference('a'), StashReference('b', 'v2')], 'r:5000/s'
    )
    assert items == [StackItem('a:latest', 'id1'), StackItem('b:v2', 'id2')]
    assert [call.args for call in images.pull.call_args_list] == [
        ('r:5000/s/a:latest',), ('r:5000/s/b:v2',)
    ]
    images.exists.assert_not_called()


def stackbuild_args(target, **given):
    args = {'--stash': ['a', 'b'], '--target-dir': str(target), '--description': None,
            '--from-registry': None, '--registry-auth-file': None, '--tls-verify': False,
            '--no-tls-verify': True, '<kiwi_command_args>': []}
    args.update(given)
    return args


def test_run_stackbuild(mocker, tmp_path):
    mocker.patch.object(os, 'geteuid', return_value=0)
    mocker.patch.object(stackbuild_command.sys, 'argv', ['kiwi-ng'])
    images = mocker.patch.object(stackbuild_command, 'ContainerImages')
    resolve = mocker.patch.object(stackbuild_command, 'resolve', return_value=['items'])
    stacker = mocker.patch.object(stackbuild_command, 'Stacker')
    call = mocker.patch.object(stackbuild_command, 'KiwiCall')
    call.return_value.root = str(tmp_path / 'build' / 'image-root')
    stackbuild_command.run_stackbuild(
        stackbuild_args(tmp_path), {'--type': 'tbz', '--temp-dir': '/var/tmp'})
    images.assert_called_once_with(None, False, '/var/tmp')
    assert resolve.call_args.args[1] == [StashReference('a'), StashReference('b')]
    stacker.return_value.stack.assert_called_once_with(['items'], call.return_value.root)
    call.assert_called_once_with(
        str(tmp_path), [], {'--type': 'tbz', '--temp-dir': '/var/tmp'}, '')
    call.return_value.run.assert_called_once_with()


def test_run_stackbuild_checks_before_touching_anything(mocker, tmp_path):
    mocker.patch.object(stackbuild_command.sys, 'argv', ['kiwi-ng'])
    resolve = mocker.patch.object(stackbuild_command, 'resolve')
    (tmp_path / 'build' / 'image-root').mkdir(parents=True)
    with pytest.raises(KiwiStackTargetExistsError):
        stackbuild_command.run_stackbuild(stackbuild_args(tmp_path), {})
    with pytest.raises(Exception, match='not a valid stash name'):
        stackbuild_command.run_stackbuild(stackbuild_args(tmp_path, **{'--stash': ['A']}), {})
    with pytest.raises(Exception, match='is not a registry location'):
        stackbuild_command.run_stackbuild(
            stackbuild_args(tmp_path, **{'--from-registry': 'x y'}), {})
    with pytest.raises(KiwiStackbuildError, match='is not a kiwi description'):
        stackbuild_command.run_stackbuild(
            stackbuild_args(tmp_path, **{'--description': str(tmp_path)}), {})
    mocker.patch.object(os, 'geteuid', return_value=1000)
    with pytest.raises(KiwiStackPrivilegesError):
        stackbuild_command.run_stackbuild(stackbuild_args(tmp_path / 'other'), {})
    resolve.assert_not_called()
