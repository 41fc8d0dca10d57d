"""
box_builder.cli: the command line of build-box
"""
import signal

import pytest

from box_builder import cli
from box_builder.cli import default_output, main
from box_builder.errors import BoxBuildError
from box_builder.recipe import load_recipe


@pytest.fixture
def steps(mocker, tmp_path):
    """
    The steps of main, replaced, as root; the build lock too, which
    would take (and wait for) the lock of a real build in /var/cache
    """
    mocker.patch.object(cli.os, 'geteuid', return_value=0)
    mocker.patch.object(cli.signal, 'signal')
    mocker.patch.object(cli, 'read_recipe_hash', return_value='abc')
    return {
        name: mocker.patch.object(cli, name)
        for name in (
            'ensure_box', 'host_mirror', 'import_container', 'install_catalog_entry',
            'build_lock',
        )
    }


def test_needs_root(mocker, caplog):
    mocker.patch.object(cli.os, 'geteuid', return_value=1000)
    assert main([]) == 1
    assert caplog.messages == ['building the box needs root (debootstrap, chroot)']


def test_the_whole_way(steps, tmp_path, monkeypatch):
    monkeypatch.setenv('KIWI_BOXED_PLUGIN_CFG', str(tmp_path / 'catalog.yml'))
    steps['host_mirror'].return_value = 'http://host.example/debian'
    assert main(['--output', str(tmp_path / 'box')]) == 0
    steps['ensure_box'].assert_called_once_with(
        str(tmp_path / 'box'), 'http://host.example/debian', False, 'agent', 'x86_64'
    )
    recipe = steps['import_container'].call_args.args[1]
    steps['import_container'].assert_called_once_with(str(tmp_path / 'box'), recipe, 'abc')
    steps['install_catalog_entry'].assert_called_once_with(
        str(tmp_path / 'catalog.yml'), recipe, str(tmp_path / 'box')
    )


def test_mirror_force_and_nothing_else(steps, tmp_path):
    assert main([
        '--output', str(tmp_path / 'box'), '--mirror', 'http://m.example/debian/', '--force',
        '--no-container', '--no-catalog'
    ]) == 0
    steps['host_mirror'].assert_not_called()
    steps['ensure_box'].assert_called_once_with(
        str(tmp_path / 'box'), 'http://m.example/debian', True, 'agent', 'x86_64'
    )
    steps['import_container'].assert_not_called()
    steps['install_catalog_entry'].assert_not_called()


def test_a_build_error_is_one_line_and_exit_code_1(steps, tmp_path, caplog):
    steps['ensure_box'].side_effect = BoxBuildError('debootstrap failed with exit code 1: x')
    assert main(['--output', str(tmp_path / 'box'), '--mirror', 'http://m']) == 1
    assert caplog.messages == ['debootstrap failed with exit code 1: x']


def test_catalog_and_no_catalog_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(['--catalog', 'x.yml', '--no-catalog'])
    assert 'not allowed with argument' in capsys.readouterr().err


@pytest.mark.parametrize('flavour, output, name', [
    ([], '/var/cache/kiwi-plugins/debian-box', 'debian'),
    (['--flavour', 'agent'], '/var/cache/kiwi-plugins/debian-box', 'debian'),
    (['--flavour', 'conformance'], '/var/cache/kiwi-plugins/debian-conformance-box',
     'debian-conformance'),
])
def test_each_flavour_has_its_output_and_recipe(steps, flavour, output, name):
    assert main(flavour + ['--mirror', 'http://m', '--no-catalog']) == 0
    steps['ensure_box'].assert_called_once_with(
        output, 'http://m', False, (flavour or ['', 'agent'])[1], 'x86_64'
    )
    recipe = steps['import_container'].call_args.args[1]
    assert recipe.data['catalog']['name'] == name
    assert steps['import_container'].call_args.args[0] == output


def test_an_output_wins_over_the_flavours(steps, tmp_path):
    assert main([
        '--flavour', 'conformance', '--output', str(tmp_path / 'box'), '--mirror', 'http://m'
    ]) == 0
    assert steps['ensure_box'].call_args.args[0] == str(tmp_path / 'box')


def test_an_unknown_flavour_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(['--flavour', 'published'])
    assert "invalid choice: 'published'" in capsys.readouterr().err


@pytest.mark.parametrize('flavour, arch, output', [
    ('agent', 'x86_64', '/var/cache/kiwi-plugins/debian-box'),
    ('agent', '', '/var/cache/kiwi-plugins/debian-box'),
    ('agent', 'aarch64', '/var/cache/kiwi-plugins/debian-box-aarch64'),
    ('agent', 'arm64', '/var/cache/kiwi-plugins/debian-box-aarch64'),
    ('conformance', 'x86_64', '/var/cache/kiwi-plugins/debian-conformance-box'),
    ('conformance', 'aarch64', '/var/cache/kiwi-plugins/debian-conformance-box-aarch64'),
])
def test_another_arch_has_an_output_of_its_own(flavour, arch, output):
    assert default_output(load_recipe(flavour=flavour, arch=arch)) == output


def test_an_arch_by_debians_name_is_built_by_kiwis(steps, tmp_path, monkeypatch):
    monkeypatch.setenv('KIWI_BOXED_PLUGIN_CFG', str(tmp_path / 'catalog.yml'))
    assert main(['--arch', 'arm64', '--mirror', 'http://m']) == 0
    output = '/var/cache/kiwi-plugins/debian-box-aarch64'
    steps['build_lock'].assert_called_once_with(output)
    steps['ensure_box'].assert_called_once_with(output, 'http://m', False, 'agent', 'aarch64')
    recipe = steps['import_container'].call_args.args[1]
    assert recipe.arch == 'aarch64'
    assert recipe.data['catalog']['container'] == 'localhost/kiwi-boxes/debian:aarch64'
    steps['import_container'].assert_called_once_with(output, recipe, 'abc')
    steps['install_catalog_entry'].assert_called_once_with(
        str(tmp_path / 'catalog.yml'), recipe, output
    )


def test_an_output_wins_over_the_arch(steps, tmp_path):
    assert main([
        '--arch', 'aarch64', '--output', str(tmp_path / 'box'), '--mirror', 'http://m',
        '--no-catalog', '--no-container'
    ]) == 0
    steps['ensure_box'].assert_called_once_with(
        str(tmp_path / 'box'), 'http://m', False, 'agent', 'aarch64'
    )


def test_an_unknown_arch_is_one_line_and_exit_code_1(steps, caplog):
    assert main(['--arch', 'sparc', '--mirror', 'http://m']) == 1
    message, = caplog.messages
    assert "no architecture 'sparc': choose one of" in message
    steps['ensure_box'].assert_not_called()


def test_a_signal_ends_the_build_through_its_cleanup_once(mocker):
    handler = mocker.patch.object(cli.signal, 'signal')
    with pytest.raises(SystemExit) as ended:
        cli.leave_through_cleanup(signal.SIGTERM, None)
    assert ended.value.code == 128 + signal.SIGTERM
    # a second SIGTERM cannot cut the cleanup short
    handler.assert_called_once_with(signal.SIGTERM, signal.SIG_IGN)
