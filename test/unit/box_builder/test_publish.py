"""
box_builder.publish: the output link, its check and what killed builds left
"""
import os

import pytest

from box_builder import publish as publish_module
from box_builder.errors import BoxBuildError
from box_builder.files import file_sha256, sha256_line
from box_builder.publish import (
    build_lock, publish, read_recipe_hash, remove_leftovers, verify_box,
)
from box_builder.recipe import load_recipe


@pytest.fixture
def recipe():
    return load_recipe()


@pytest.fixture
def box_dir(tmp_path, recipe):
    """
    A complete box directory of recipe hash 'abc'
    """
    directory = tmp_path / 'debian-box.abc'
    directory.mkdir()
    for name in recipe.published + [recipe.packages_file, recipe.rootfs_tarball]:
        (directory / name).write_text(name)
    for name in recipe.published:
        (directory / f'{name}.sha256').write_text(
            sha256_line(file_sha256(str(directory / name)), name)
        )
    (directory / 'recipe.hash').write_text('abc\n')
    return directory


class TestVerifyBox:
    def test_complete(self, box_dir, recipe):
        assert read_recipe_hash(str(box_dir)) == 'abc'
        assert verify_box(str(box_dir), recipe, 'abc')

    def test_other_recipe(self, box_dir, recipe):
        assert not verify_box(str(box_dir), recipe, 'abd')

    def test_changed_file(self, box_dir, recipe):
        (box_dir / recipe.system_disk).write_text('changed')
        assert not verify_box(str(box_dir), recipe, 'abc')

    @pytest.mark.parametrize('name', [
        'Debian-Box.x86_64-System.qcow2.sha256', 'Debian-Box.x86_64-rootfs.tar', 'recipe.hash'
    ])
    def test_missing_file(self, box_dir, recipe, name):
        os.unlink(box_dir / name)
        assert not verify_box(str(box_dir), recipe, 'abc')

    def test_empty_checksum_file(self, box_dir, recipe):
        (box_dir / f'{recipe.system_disk}.sha256').write_text('')
        assert not verify_box(str(box_dir), recipe, 'abc')


class TestPublish:
    def test_switches_the_link_and_removes_the_previous_box(self, tmp_path):
        output = tmp_path / 'debian-box'
        for name in ('debian-box.old', 'debian-box.new'):
            (tmp_path / name).mkdir()
        publish(str(tmp_path / 'debian-box.old'), str(output))
        assert os.readlink(output) == 'debian-box.old'
        publish(str(tmp_path / 'debian-box.new'), str(output))
        assert os.readlink(output) == 'debian-box.new'
        assert sorted(os.listdir(tmp_path)) == ['debian-box', 'debian-box.new']

    def test_refuses_what_it_did_not_make(self, tmp_path):
        (tmp_path / 'debian-box').mkdir()
        (tmp_path / 'debian-box.new').mkdir()
        with pytest.raises(BoxBuildError, match='not a box made by build-box: move it away'):
            publish(str(tmp_path / 'debian-box.new'), str(tmp_path / 'debian-box'))


class TestRemoveLeftovers:
    def test_keeps_the_current_box_and_the_package_cache(self, tmp_path, mocker):
        remove_tree = mocker.patch.object(publish_module, 'remove_tree')
        for name in ('debian-box.current', 'debian-box.killed', 'debian-box.debs',
                     '.debian-box.work-x', 'other.box'):
            (tmp_path / name).mkdir()
        (tmp_path / 'debian-box').symlink_to('debian-box.current')
        (tmp_path / 'debian-box.link-7').symlink_to('debian-box.killed')
        (tmp_path / 'debian-box.lock').write_text('')
        remove_leftovers(str(tmp_path / 'debian-box'))
        assert sorted(call.args[0] for call in remove_tree.call_args_list) == [
            str(tmp_path / '.debian-box.work-x'), str(tmp_path / 'debian-box.killed')
        ]
        assert not os.path.lexists(tmp_path / 'debian-box.link-7')
        assert (tmp_path / 'debian-box.lock').exists()


class TestBuildLock:
    def test_lock_file_beside_the_output(self, tmp_path):
        output = tmp_path / 'cache' / 'debian-box'
        with build_lock(str(output)):
            assert (tmp_path / 'cache' / 'debian-box.lock').exists()


class TestVerifyConformanceBox:
    def test_the_public_key_is_part_of_the_box(self, tmp_path):
        recipe = load_recipe(flavour='conformance')
        directory = tmp_path / 'debian-conformance-box.abc'
        directory.mkdir()
        for name in recipe.published + recipe.unpublished:
            (directory / name).write_text(name)
        for name in recipe.published:
            (directory / f'{name}.sha256').write_text(
                sha256_line(file_sha256(str(directory / name)), name)
            )
        (directory / 'recipe.hash').write_text('abc\n')
        assert verify_box(str(directory), recipe, 'abc')
        os.unlink(directory / 'Debian-Conformance-Box.x86_64-root_id_rsa.pub')
        assert not verify_box(str(directory), recipe, 'abc')
