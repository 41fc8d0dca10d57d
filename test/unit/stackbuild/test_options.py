import os

import pytest

from kiwi_stackbuild_plugin.exceptions import KiwiStackPrivilegesError
from kiwi_stackbuild_plugin.options import require_root, tls_verify, typed_values


@pytest.mark.parametrize('tokens, values', [
    (['--stash', 'a', '--stash', 'b', '--stash', 'c'], ['a', 'b', 'c']),
    (['--stash=a', '--stash', 'b', '--stash=c'], ['a', 'b', 'c']),
    (['--stash', 'b', '--stash', 'a', '--stash', 'b'], ['b', 'a', 'b']),
    (['kiwi-ng', '--type', 'tbz', 'system', 'stackbuild', '--stash', 'x',
      '--target-dir', 't', '--', '--stash', 'y'], ['x']),
    (['--stashed', 'x', '--stash=', '--other'], ['']),
    ([], []),
])
def test_typed_values(tokens, values):
    assert typed_values(tokens, '--stash') == values


@pytest.mark.parametrize('args, expected', [
    ({}, None),
    ({'--tls-verify': True, '--no-tls-verify': False}, True),
    ({'--tls-verify': False, '--no-tls-verify': True}, False),
])
def test_tls_verify(args, expected):
    assert tls_verify(args) is expected


def test_require_root(mocker):
    mocker.patch.object(os, 'geteuid', return_value=0)
    require_root('system stash')
    mocker.patch.object(os, 'geteuid', return_value=1000)
    with pytest.raises(KiwiStackPrivilegesError, match="'kiwi-ng system stash' needs root"):
        require_root('system stash')
