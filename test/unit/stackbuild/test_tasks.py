import sys

import pytest

from kiwi_stackbuild_plugin.tasks import system_stackbuild, system_stash


def task(module, cls, argv, mocker):
    mocker.patch.object(sys, 'argv', argv)
    return getattr(module, cls)()


@pytest.mark.parametrize('module, cls, argv, entry', [
    (system_stash, 'SystemStashTask', ['kiwi-ng', 'system', 'stash', '--list'],
     'kiwi_stackbuild_plugin.stash_command.run_stash'),
    (system_stackbuild, 'SystemStackbuildTask',
     ['kiwi-ng', 'system', 'stackbuild', '--stash', 'a', '--target-dir', '/t'],
     'kiwi_stackbuild_plugin.stackbuild_command.run_stackbuild'),
])
def test_process_hands_on(module, cls, argv, entry, mocker):
    run = mocker.patch(entry)
    instance = task(module, cls, argv, mocker)
    instance.process()
    run.assert_called_once_with(instance.command_args, instance.global_args)


@pytest.mark.parametrize('module, cls, argv, topic', [
    (system_stash, 'SystemStashTask', ['kiwi-ng', 'system', 'stash', 'help'],
     'kiwi::system::stash'),
    (system_stackbuild, 'SystemStackbuildTask', ['kiwi-ng', 'system', 'stackbuild', 'help'],
     'kiwi::system::stackbuild'),
])
def test_help(module, cls, argv, topic, mocker):
    show = mocker.patch.object(module.Help, 'show')
    task(module, cls, argv, mocker).process()
    show.assert_called_once_with(topic)
