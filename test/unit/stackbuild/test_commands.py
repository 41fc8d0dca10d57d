import os
from unittest.mock import Mock

import pytest

from kiwi_stackbuild_plugin import stackbuild_command, stash_command
from kiwi_stackbuild_plugin.exceptions import (
    KiwiStackDescriptionError, KiwiStackPrivilegesError, KiwiStackTargetExistsError,
    KiwiStashNameError, KiwiStashNotFoundError
)
from kiwi_stackbuild_plugin.reference import StashReference, validate_registry
from kiwi_stackbuild_plugin.stack import StackItem
from kiwi_stackbuild_plugin.stash import StashResult


def run_stash(kiwi_call, *argv):
    """
    run_stash on the command line argv, parsed as kiwi parses it
    """
    global_args, command_args = kiwi_call(*argv)
    stash_command.run_stash(command_args, global_args)


def run_stackbuild(kiwi_call, *argv):
    """
    run_stackbuild on the command line argv, parsed as kiwi parses it
    """
    global_args, command_args = kiwi_call(*argv)
    stackbuild_command.run_stackbuild(command_args, global_args)


@pytest.fixture
def images(mocker):
    return mocker.patch.object(stash_command, 'ContainerImages').return_value


@pytest.fixture
def store(mocker):
    return mocker.patch.object(stash_command.Stash, 'store')


def test_list(images, kiwi_call, capsys):
    global_args, command_args = kiwi_call('system', 'stash', '--list')
    images.stashes.return_value = [{'Names': ['localhost/a:b'], 'Size': 1, 'Created': 0}]
    stash_command.run_stash(command_args, global_args)
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ['a', 'b']
    images.stashes.return_value = []
    stash_command.run_stash(command_args, global_args)
    assert 'No stashes' in capsys.readouterr().out


@pytest.mark.parametrize('registry', ['localhost:5000/s', 'docker://localhost:5000/s/'])
def test_stash_and_push(registry, images, store, as_root, kiwi_call, caplog):
    store.return_value = StashResult(StashReference('a', 'v1'), 'i' * 64, 3, 1, False)
    run_stash(
        kiwi_call, '--temp-dir', '/big', 'system', 'stash', '--root', '/r',
        '--push', registry, '--tag', 'v1', '--container-name', 'a'
    )
    assert stash_command.ContainerImages.call_args.args == (None, None, '/big')
    store.assert_called_once_with('/r', 'a', 'v1')
    images.push.assert_called_once_with('localhost/a:v1', 'localhost:5000/s/a:v1')
    assert 'Stashed as localhost/a:v1 (image iiiiiiiiiiii): one layer with ' \
        '3 changed and 1 deleted paths' in caplog.text


def test_stash_messages(images, store, as_root, kiwi_call, caplog):
    global_args, command_args = kiwi_call('system', 'stash', '--root', '/r')
    store.return_value = StashResult(StashReference('a'), 'i' * 64, 0, 0, True)
    stash_command.run_stash(command_args, global_args)
    assert 'Stashed as localhost/a:latest (image iiiiiiiiiiii)' in caplog.text
    store.return_value = StashResult(StashReference('a'), '', 0, 0, False)
    stash_command.run_stash(command_args, global_args)
    assert 'Nothing changed: localhost/a:latest names the previous stash' in caplog.text
    images.push.assert_not_called()


def test_stash_checks_registry_and_root_first(images, store, kiwi_call, mocker):
    with pytest.raises(KiwiStashNameError, match='is not a registry location'):
        run_stash(kiwi_call, 'system', 'stash', '--root', '/r', '--push', 'no registry')
    mocker.patch.object(os, 'geteuid', return_value=1000)
    with pytest.raises(KiwiStackPrivilegesError):
        run_stash(kiwi_call, 'system', 'stash', '--root', '/r')
    store.assert_not_called()


def test_resolve_local_and_missing():
    images = Mock()
    images.exists.side_effect = [True, False]
    images.inspect.return_value = {'Id': 'abc'}
    images.stashes.return_value = [{'Names': ['localhost/known:v1'], 'Created': 0}]
    assert stackbuild_command.resolve(images, [StashReference('a')], None) == [
        StackItem('a:latest', 'abc')
    ]
    # podman resolves the short name among the local images
    images.exists.assert_called_with('a:latest')
    images.inspect.assert_called_with('a:latest')
    with pytest.raises(KiwiStashNotFoundError, match=(
        "no stash 'b:latest': the stashes are known:v1; see 'kiwi-ng system stash --list'"
    )):
        stackbuild_command.resolve(images, [StashReference('b')], None)


def test_resolve_pulls_from_the_registry():
    images = Mock()
    images.pull.side_effect = ['id1', 'id2']
    items = stackbuild_command.resolve(
        images, [StashReference('a'), StashReference('b', 'v2')], validate_registry('r:5000/s')
    )
    assert items == [StackItem('a:latest', 'id1'), StackItem('b:v2', 'id2')]
    assert [call.args for call in images.pull.call_args_list] == [
        ('r:5000/s/a:latest',), ('r:5000/s/b:v2',)
    ]
    images.exists.assert_not_called()


class Stackbuild:
    """
    run_stackbuild with the container storage, the stacking and the
    kiwi run replaced
    """
    def __init__(self, mocker, target: str) -> None:
        self.target = target
        self.images = mocker.patch.object(stackbuild_command, 'ContainerImages')
        self.resolve = mocker.patch.object(stackbuild_command, 'resolve', return_value=['items'])
        self.stacker = mocker.patch.object(stackbuild_command, 'Stacker')
        self.call = mocker.patch.object(stackbuild_command, 'KiwiCall')
        self.call.return_value.root = os.path.join(target, 'build', 'image-root')

    def stashes(self) -> list:
        """
        the stashes run_stackbuild resolved, in order
        """
        return self.resolve.call_args.args[1]


@pytest.fixture
def stackbuild(mocker, tmp_path):
    return Stackbuild(mocker, str(tmp_path / 'target'))


def test_run_stackbuild(stackbuild, as_root, kiwi_call):
    global_args, command_args = kiwi_call(
        '--type', 'tbz', '--temp-dir', '/var/tmp', 'system', 'stackbuild',
        '--stash', 'a', '--stash', 'b', '--target-dir', stackbuild.target, '--no-tls-verify',
        '--', '--signing-key', '/k'
    )
    stackbuild_command.run_stackbuild(command_args, global_args)
    stackbuild.images.assert_called_once_with(None, False, '/var/tmp')
    assert stackbuild.stashes() == [StashReference('a'), StashReference('b')]
    assert stackbuild.resolve.call_args.args[2] is None
    stackbuild.stacker.return_value.stack.assert_called_once_with(
        ['items'], stackbuild.call.return_value.root
    )
    stackbuild.call.assert_called_once_with(
        stackbuild.target, ['--signing-key', '/k'], global_args, ''
    )
    stackbuild.call.return_value.run.assert_called_once_with()


@pytest.mark.parametrize('typed', [
    ['a', 'b', 'c'], ['a', 'b', 'a'], ['a', 'a'], ['b', 'a', 'b'], ['c', 'b', 'a'],
])
@pytest.mark.parametrize('spelling', [['--stash', '{}'], ['--stash={}']])
def test_the_stashes_are_what_the_user_typed_in_order(
    typed, spelling, stackbuild, as_root, kiwi_call
):
    stashes = [[word.format(name) for word in spelling] for name in typed]
    # other options between the stashes; a '--stash' after '--' is kiwi's
    words = stashes[0] + ['--target-dir', stackbuild.target]
    for index, stash in enumerate(stashes[1:]):
        words += stash + (['--no-tls-verify'] if index == 0 else [])
    run_stackbuild(kiwi_call, 'system', 'stackbuild', *words, '--', '--stash', 'x')
    assert stackbuild.stashes() == [StashReference.parse(name) for name in typed]


def test_stackbuild_pulls_from_the_validated_registry(stackbuild, as_root, kiwi_call):
    run_stackbuild(
        kiwi_call, 'system', 'stackbuild', '--stash', 'a', '--target-dir', stackbuild.target,
        '--from-registry', 'docker://localhost:5000/stashes/'
    )
    assert stackbuild.resolve.call_args.args[2] == 'localhost:5000/stashes'


@pytest.mark.parametrize('words, error, match', [
    (['--stash', 'A'], KiwiStashNameError, "'A' is not a valid stash name"),
    (['--from-registry', 'x y'], KiwiStashNameError, "'x y' is not a registry location"),
    (['--stash', 'quay.io/b', '--from-registry', 'localhost:5000'], KiwiStashNameError,
     '--stash quay.io/b:latest names a registry and --from-registry names another'),
    (['--description', '{tmp}'], KiwiStackDescriptionError,
     "is not a kiwi description: it has no config.xml or \\*.kiwi; --description takes"),
    (['--description', '{tmp}/missing'], KiwiStackDescriptionError,
     'description directory .*/missing not found'),
])
def test_user_input_is_checked_before_anything_is_touched(
    words, error, match, stackbuild, as_root, kiwi_call, tmp_path
):
    words = [word.format(tmp=tmp_path) for word in words]
    with pytest.raises(error, match=match):
        run_stackbuild(
            kiwi_call, 'system', 'stackbuild', '--stash', 'a', '--target-dir', stackbuild.target,
            *words
        )
    stackbuild.images.assert_not_called()
    stackbuild.resolve.assert_not_called()


def test_the_description_file_is_the_one_kiwi_is_told(stackbuild, as_root, kiwi_call, tmp_path):
    (tmp_path / 'config.xml').write_text('<image/>')
    arguments = [
        'system', 'stackbuild', '--stash', 'a', '--target-dir', stackbuild.target,
        '--description', str(tmp_path)
    ]
    run_stackbuild(kiwi_call, *arguments)
    with pytest.raises(KiwiStackDescriptionError, match='it has no other.kiwi'):
        run_stackbuild(kiwi_call, '--kiwi-file', 'other.kiwi', *arguments)


def test_an_existing_target_or_a_user_is_refused_before_anything_is_touched(
    stackbuild, kiwi_call, mocker
):
    arguments = ['system', 'stackbuild', '--stash', 'a', '--target-dir', stackbuild.target]
    os.makedirs(stackbuild.call.return_value.root)
    with pytest.raises(KiwiStackTargetExistsError, match='exists and is kept'):
        run_stackbuild(kiwi_call, *arguments)
    os.rmdir(stackbuild.call.return_value.root)
    mocker.patch.object(os, 'geteuid', return_value=1000)
    with pytest.raises(KiwiStackPrivilegesError):
        run_stackbuild(kiwi_call, *arguments)
    stackbuild.images.assert_not_called()
    stackbuild.resolve.assert_not_called()
