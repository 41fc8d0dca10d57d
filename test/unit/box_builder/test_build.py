"""
box_builder.build: a build from recipe to published box, unless up to date
"""
import os

import pytest

from box_builder import build
from box_builder.build import build_box, ensure_box
from box_builder.recipe import load_recipe


@pytest.fixture
def parts(mocker):
    """
    The build's parts, replaced: the recipe hash is 'a' * 64
    """
    mocker.patch.object(build, 'recipe_hash', return_value='a' * 64)
    return {
        name: mocker.patch.object(build, name)
        for name in ('verify_box', 'build_box', 'publish', 'remove_leftovers')
    }


def test_up_to_date_box_is_left_as_it_is(parts, tmp_path):
    parts['verify_box'].return_value = True
    ensure_box(str(tmp_path / 'debian-box'), 'http://m', force=False)
    parts['build_box'].assert_not_called()
    parts['publish'].assert_not_called()
    assert os.listdir(tmp_path) == []


def test_build_into_a_box_directory_then_publish(parts, tmp_path):
    parts['verify_box'].return_value = True
    output = str(tmp_path / 'debian-box')
    recipe = ensure_box(output, 'http://m', force=True)
    box_dir = f'{output}.{"a" * 16}'
    (_, mirror, work, deb_cache, target), _ = parts['build_box'].call_args
    assert (mirror, deb_cache, target) == ('http://m', f'{output}.debs', box_dir)
    assert os.path.basename(work).startswith('.debian-box.work-')
    parts['publish'].assert_called_once_with(box_dir, output)
    assert recipe.name == 'Debian-Box'
    # the work tree is gone, the stamp marks the box as complete
    assert os.listdir(tmp_path) == [os.path.basename(box_dir)]
    with open(os.path.join(box_dir, 'recipe.hash')) as handle:
        assert handle.read() == 'a' * 64 + '\n'


def test_a_failed_build_leaves_nothing(parts, tmp_path):
    parts['verify_box'].return_value = False
    parts['build_box'].side_effect = KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        ensure_box(str(tmp_path / 'debian-box'), 'http://m', force=False)
    parts['publish'].assert_not_called()
    assert os.listdir(tmp_path) == []


def test_build_box_makes_the_root_tree_under_emulation_then_the_files(mocker):
    tree = mocker.patch.object(build, 'RootTreeBuilder')
    files = mocker.patch.object(build, 'write_box_files')
    emulation = mocker.patch.object(build, 'user_emulation')
    recipe = load_recipe(arch='arm64')
    build_box(recipe, 'http://m', '/work', '/debs', '/box')
    emulation.assert_called_once_with('aarch64')
    tree.assert_called_once_with(recipe, 'http://m', '/work/rootfs', '/debs')
    tree.return_value.build.assert_called_once_with()
    files.assert_called_once_with(recipe, '/work/rootfs', '/work', '/box')


def test_a_box_of_another_arch_has_its_recipe_and_hash(parts, tmp_path):
    parts['verify_box'].return_value = False
    output = str(tmp_path / 'debian-box-aarch64')
    recipe = ensure_box(output, 'http://m', False, 'agent', 'arm64')
    assert (recipe.arch, recipe.debian_arch) == ('aarch64', 'arm64')
    build.recipe_hash.assert_called_once_with('http://m', 'agent', 'arm64')
    assert parts['verify_box'].call_args.args[:2] == (output, recipe)
    assert parts['build_box'].call_args.args[0] == recipe
