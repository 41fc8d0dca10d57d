import os

import pytest

from kiwi_stackbuild_plugin.exceptions import KiwiStackPrivilegesError
from kiwi_stackbuild_plugin.options import require_root, tls_verify


@pytest.mark.parametrize('command', ['stash', 'stackbuild'])
@pytest.mark.parametrize('words, expected', [
    ([], None), (['--tls-verify'], True), (['--no-tls-verify'], False),
])
def test_tls_verify(command, words, expected, kiwi_call):
    target = ['--root', '/r'] if command == 'stash' else ['--stash', 'a', '--target-dir', '/t']
    _, command_args = kiwi_call('system', command, *target, *words)
    assert tls_verify(command_args) is expected


def test_require_root(as_root, mocker):
    require_root('system stash')
    mocker.patch.object(os, 'geteuid', return_value=1000)
    with pytest.raises(KiwiStackPrivilegesError, match="'kiwi-ng system stash' needs root"):
        require_root('system stash')
