import subprocess
import sys

import pytest

from kiwi_plugin_support.exceptions import KiwiPluginArgumentError
from kiwi_plugin_support.kiwi_args import KiwiCommandArgs


@pytest.fixture(scope='module')
def build():
    return KiwiCommandArgs('system build')


def test_options_come_from_kiwis_own_usage(build):
    assert build.options['--description'] is True
    assert build.options['--allow-existing-root'] is False
    assert '--add-repo' in build.option_names


def test_parse_accepts_both_value_spellings(build):
    result = build.parse(['--description=d', '--target-dir', 't'])
    assert result['--description'] == 'd'
    assert result['--target-dir'] == 't'


def test_parse_rejects_unknown_option(build):
    with pytest.raises(KiwiPluginArgumentError, match="'--bogus' is not an option"):
        build.parse(['--description', 'd', '--target-dir', 't', '--bogus'])


def test_parse_rejects_missing_required(build):
    expected = "invalid arguments for 'kiwi-ng system build'"
    with pytest.raises(KiwiPluginArgumentError, match=expected):
        build.parse(['--description', 'd'])


def test_parse_refuses_what_the_plugin_supplies():
    create = KiwiCommandArgs('system create')
    with pytest.raises(KiwiPluginArgumentError, match="'--root' is set by the plugin"):
        create.parse(['--root=/x'], supplied=['--root', '/r', '--target-dir', '/t'])
    assert create.parse([], supplied=['--root', '/r', '--target-dir', '/t'])['--root'] == '/r'


def test_help_for_kiwi_does_not_exit(build):
    with pytest.raises(KiwiPluginArgumentError):
        build.parse(['--help'])


def test_without_drops_options_in_both_spellings_and_keeps_order(build):
    tokens = [
        '--description', 'd', '--add-repo', 'a', '--target-dir=t',
        '--add-repo', 'b', '--allow-existing-root'
    ]
    assert build.without(tokens, ['--description', '--target-dir']) == [
        '--add-repo', 'a', '--add-repo', 'b', '--allow-existing-root'
    ]


def test_map_values_changes_both_spellings_and_keeps_the_rest(build):
    tokens = [
        '--signing-key', 'a.asc', '--add-package=vim', '--signing-key=b c.asc',
        '--allow-existing-root'
    ]
    changed = build.map_values(
        tokens, ['--signing-key'], lambda name, value: f'{name}:{value}'
    )
    assert changed == [
        '--signing-key=--signing-key:a.asc', '--add-package=vim',
        '--signing-key=--signing-key:b c.asc', '--allow-existing-root'
    ]


def test_map_values_leaves_flags_alone(build):
    # a flag takes no value: the token after it is not its value
    assert build.map_values(
        ['--allow-existing-root', 'x'], ['--allow-existing-root'], lambda _, v: 'changed'
    ) == ['--allow-existing-root', 'x']


def test_values_of_in_typed_order(build):
    tokens = ['--add-repo', 'r1,rpm-md', '--description', 'd', '--add-repo=r2,apt-deb']
    assert build.values_of(tokens, '--add-repo') == ['r1,rpm-md', 'r2,apt-deb']
    assert build.values_of(tokens, '--set-repo') == []


def test_parse_checks_a_value_that_looks_like_an_option(build):
    # docopt would take '--bogus' as the directory: a typo must not pass
    with pytest.raises(KiwiPluginArgumentError, match="'--bogus' is not an option"):
        build.parse(['--description', 'd', '--target-dir', '--bogus'])


def test_parse_refuses_a_separator(build):
    with pytest.raises(KiwiPluginArgumentError, match="'--' is not an option"):
        build.parse(['--description', 'd', '--target-dir', 't', '--'])


def test_option_pieces_keep_other_options_as_typed(build):
    tokens = ['--add-repo', 'r', '--target-dir=t', 'word', '--allow-existing-root']
    assert list(build.option_pieces(tokens, ['--target-dir', '--allow-existing-root'])) == [
        ('', None, ['--add-repo']), ('', None, ['r']), ('--target-dir', 't', ['--target-dir=t']),
        ('', None, ['word']), ('--allow-existing-root', None, ['--allow-existing-root'])
    ]


def test_kiwi_args_does_not_import_usage():
    # usage imports kiwi_args: the import graph is one way
    code = (
        'import sys, kiwi_plugin_support.kiwi_args; '
        'sys.exit("kiwi_plugin_support.usage" in sys.modules)'
    )
    assert subprocess.run([sys.executable, '-c', code]).returncode == 0
