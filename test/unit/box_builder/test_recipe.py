"""
box_builder.recipe: recipe.toml, the box's file names and the hash
that keys a build
"""
import os

import pytest

from box_builder import recipe as recipe_module
from box_builder.recipe import BOX_DIR, hash_inputs, load_recipe, recipe_files, recipe_hash


class TestRecipe:
    def test_file_names(self):
        recipe = load_recipe()
        assert recipe.published == [
            'Debian-Box.x86_64-Kernel.tar.xz', 'Debian-Box.x86_64-System.qcow2'
        ]
        assert recipe.packages_file == 'Debian-Box.x86_64-System.packages'
        assert recipe.rootfs_tarball == 'Debian-Box.x86_64-rootfs.tar'

    def test_initrd_carries_the_modules_of_the_contract(self):
        modules = load_recipe().data['initramfs']['modules']
        for module in ('virtio_blk', '9p', '9pnet_virtio', 'virtiofs', 'ext4', 'qemu_fw_cfg'):
            assert module in modules


class TestHashInputs:
    FILES = [('recipe.toml', b'a'), ('root/etc/x', b'b')]

    def test_stable_and_order_independent(self):
        assert hash_inputs(self.FILES, {'mirror': 'm'}) == \
            hash_inputs(list(reversed(self.FILES)), {'mirror': 'm'})

    @pytest.mark.parametrize('files, host', [
        ([('recipe.toml', b'a'), ('root/etc/x', b'c')], {'mirror': 'm'}),
        ([('recipe.toml', b'a'), ('root/etc/y', b'b')], {'mirror': 'm'}),
        ([('recipe.toml', b'a')], {'mirror': 'm'}),
        ([('recipe.toml', b'a'), ('root/etc/x', b'b')], {'mirror': 'n'}),
        ([('recipe.toml', b'a'), ('root/etc/x', b'b')], {'mirror': 'm', 'pip': ''}),
        # content moved between name and data must not collide
        ([('recipe.tom', b'la'), ('root/etc/x', b'b')], {'mirror': 'm'}),
    ])
    def test_any_change_changes_it(self, files, host):
        assert hash_inputs(files, host) != hash_inputs(self.FILES, {'mirror': 'm'})


class TestRecipeFiles:
    @pytest.fixture
    def box_side(self, tmp_path, monkeypatch):
        """
        Stand-ins for the plugin's box side files and the host's CA
        certificates
        """
        for name in ('kiwi_box_agent.py', 'kiwi_box_protocol.py', 'kiwi-box-agent.service'):
            (tmp_path / name).write_text(f'content of {name}')
        (tmp_path / 'ca.crt').write_text('CA')
        monkeypatch.setattr(recipe_module, 'source_path', lambda name: str(tmp_path / name))
        monkeypatch.setattr(
            recipe_module, 'host_ca_certificates', lambda: [str(tmp_path / 'ca.crt')]
        )
        return tmp_path

    def test_everything_that_goes_into_the_box(self, box_side):
        files = dict(recipe_files())
        for name in ('build-box', 'recipe.toml', 'root/etc/hostname'):
            with open(os.path.join(BOX_DIR, name), 'rb') as handle:
                assert files[name] == handle.read()
        for module in ('cli', 'recipe', 'root_tree', 'disk'):
            assert f'box_builder/{module}.py' in files
        assert not [name for name in files if '__pycache__' in name]
        assert files['agent/kiwi_box_agent.py'] == b'content of kiwi_box_agent.py'
        assert files['agent/kiwi_box_protocol.py'] == b'content of kiwi_box_protocol.py'
        assert files['agent/kiwi-box-agent.service'] == b'content of kiwi-box-agent.service'
        assert files['host-ca/ca.crt'] == b'CA'

    def test_a_changed_protocol_module_changes_the_hash(self, box_side, mocker):
        mocker.patch.object(recipe_module, 'carried_settings', return_value={'mirror': 'm'})
        before = recipe_hash('m')
        (box_side / 'kiwi_box_protocol.py').write_text('changed')
        assert recipe_hash('m') != before
