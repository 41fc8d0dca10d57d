"""
box_builder.recipe: recipe.toml, the box's file names and the hash
that keys a build
"""
import os

import pytest

from kiwi_boxed_plugin.agent.kiwi_box_protocol import AGENT_MARK

from box_builder import recipe as recipe_module
from box_builder.errors import BoxBuildError
from box_builder.recipe import (
    AGENT, BOX_DIR, CONFORMANCE, hash_inputs, load_recipe, merged, recipe_files, recipe_hash,
)


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


class TestFlavours:
    def test_the_agent_box_is_recipe_toml_alone(self):
        recipe = load_recipe()
        assert recipe.flavour == AGENT
        assert recipe.runs_agent
        assert not recipe.baked_root_key
        assert recipe.files_trees == [os.path.join(BOX_DIR, 'root')]
        assert recipe.unpublished == [
            'Debian-Box.x86_64-System.packages', 'Debian-Box.x86_64-rootfs.tar'
        ]

    def test_the_conformance_box_shares_the_recipe_but_the_box_side(self):
        agent, conformance = load_recipe(), load_recipe(flavour=CONFORMANCE)
        assert conformance.flavour == CONFORMANCE
        assert not conformance.runs_agent
        assert conformance.baked_root_key
        # the same system
        for table in ('packages', 'dpkg', 'initramfs', 'kiwi'):
            assert conformance.data[table] == agent.data[table]
        for key in ('suite', 'disk_size_gib', 'debian_arch', 'hostname'):
            assert conformance.data['box'][key] == agent.data['box'][key]
        assert conformance.published == [
            'Debian-Conformance-Box.x86_64-Kernel.tar.xz',
            'Debian-Conformance-Box.x86_64-System.qcow2',
        ]
        assert conformance.packages_file == 'Debian-Conformance-Box.x86_64-System.packages'
        assert conformance.unpublished == [
            'Debian-Conformance-Box.x86_64-System.packages',
            'Debian-Conformance-Box.x86_64-rootfs.tar',
            'Debian-Conformance-Box.x86_64-root_id_rsa.pub',
        ]
        assert conformance.files_trees == [
            os.path.join(BOX_DIR, 'root'), os.path.join(BOX_DIR, 'flavours', 'conformance', 'root')
        ]

    def test_the_conformance_box_runs_its_job_unit_not_the_agent(self):
        services = load_recipe(flavour=CONFORMANCE).data['services']
        assert 'kiwi-box-job.service' in services['enable']
        assert 'ssh.service' in services['enable']
        assert 'kiwi-box-agent.service' not in services['enable']
        # network-online.target waits for the link (bounded by a drop-in)
        assert 'systemd-networkd-wait-online.service' not in services['mask']
        assert 'systemd-networkd-wait-online.service' in services['enable']

    def test_the_conformance_catalog_entry_is_the_published_kind(self):
        catalog = load_recipe(flavour=CONFORMANCE).data['catalog']
        assert catalog['name'] == 'debian-conformance'
        assert catalog['container'] == 'localhost/kiwi-boxes/debian-conformance:latest'
        assert AGENT_MARK not in catalog['cmdline']
        assert not [word for word in catalog['cmdline'] if word.startswith('panic=')]

    def test_unknown_flavour(self):
        with pytest.raises(BoxBuildError, match="unknown box flavour 'x': choose one of agent, "):
            load_recipe(flavour='x')

    @pytest.mark.parametrize('base, overrides, expected', [
        ({'a': {'b': 1, 'c': 2}}, {'a': {'c': 3}}, {'a': {'b': 1, 'c': 3}}),
        ({'a': [1, 2]}, {'a': [3]}, {'a': [3]}),
        ({'a': {'b': 1}}, {'d': 'x'}, {'a': {'b': 1}, 'd': 'x'}),
        ({'a': 1}, {'a': {'b': 2}}, {'a': {'b': 2}}),
    ])
    def test_overrides_merge_tables_and_replace_the_rest(self, base, overrides, expected):
        before = repr(base)
        assert merged(base, overrides) == expected
        assert repr(base) == before


class TestFlavourHashes:
    @pytest.fixture(autouse=True)
    def host(self, mocker):
        mocker.patch.object(recipe_module, 'carried_settings', return_value={'mirror': 'm'})
        mocker.patch.object(recipe_module, 'host_ca_certificates', return_value=[])

    def test_each_flavour_hashes_its_own_box_side(self):
        agent = dict(recipe_files(AGENT))
        conformance = dict(recipe_files(CONFORMANCE))
        assert 'agent/kiwi_box_agent.py' in agent
        assert not [name for name in agent if name.startswith('flavours/')]
        assert 'flavours/conformance/recipe.toml' in conformance
        assert 'flavours/conformance/root/usr/bin/kiwi-box-job' in conformance
        assert not [name for name in conformance if name.startswith('agent/')]
        # both are built from the same recipe, files tree and builder
        for name in ('recipe.toml', 'root/etc/hostname', 'build-box', 'box_builder/root_tree.py'):
            assert agent[name] == conformance[name]
        assert recipe_hash('m', AGENT) != recipe_hash('m', CONFORMANCE)

    def test_the_agent_box_ignores_the_flavours(self, tmp_path, monkeypatch):
        before = recipe_hash('m', AGENT)
        conformance_before = recipe_hash('m', CONFORMANCE)
        flavours = tmp_path / 'flavours'
        (flavours / 'conformance' / 'root').mkdir(parents=True)
        source = os.path.join(BOX_DIR, 'flavours', 'conformance', 'recipe.toml')
        (flavours / 'conformance' / 'recipe.toml').write_text(open(source).read())
        (flavours / 'conformance' / 'root' / 'changed').write_text('x')
        monkeypatch.setattr(recipe_module, 'FLAVOURS_DIR', str(flavours))
        assert recipe_hash('m', AGENT) == before
        assert recipe_hash('m', CONFORMANCE) != conformance_before


class TestArchitectures:
    @pytest.mark.parametrize('arch', ['aarch64', 'arm64'])
    def test_aarch64_by_kiwis_or_debians_name(self, arch):
        recipe = load_recipe(arch=arch)
        assert recipe.arch == 'aarch64'
        assert recipe.debian_arch == 'arm64'
        assert recipe.kernel_package == 'linux-image-arm64'
        assert recipe.other_arch
        assert recipe.data['catalog']['container'] == 'localhost/kiwi-boxes/debian:aarch64'
        assert recipe.published == [
            'Debian-Box.aarch64-Kernel.tar.xz', 'Debian-Box.aarch64-System.qcow2'
        ]
        assert recipe.packages_file == 'Debian-Box.aarch64-System.packages'
        assert recipe.rootfs_tarball == 'Debian-Box.aarch64-rootfs.tar'

    @pytest.mark.parametrize('arch', ['', 'x86_64', 'amd64'])
    def test_the_default_is_x86_64_under_its_published_names(self, arch):
        recipe = load_recipe(arch=arch)
        assert recipe.arch == 'x86_64'
        assert recipe.debian_arch == 'amd64'
        assert recipe.kernel_package == 'linux-image-amd64'
        assert not recipe.other_arch
        assert recipe.data['catalog']['container'] == 'localhost/kiwi-boxes/debian:latest'
        assert recipe.rootfs_tarball == 'Debian-Box.x86_64-rootfs.tar'

    def test_the_kernel_comes_from_the_arch_table_only(self):
        for arch in ('x86_64', 'aarch64'):
            install = load_recipe(arch=arch).data['packages']['install']
            assert not [name for name in install if name.startswith('linux-image-')]

    def test_an_unknown_arch_names_the_choices(self):
        with pytest.raises(BoxBuildError) as issue:
            load_recipe(arch='sparc')
        message = str(issue.value)
        assert "no architecture 'sparc'" in message
        for choice in ('x86_64', 'amd64', 'aarch64', 'arm64'):
            assert choice in message
        assert '\n' not in message

    def test_the_conformance_box_for_aarch64(self):
        recipe = load_recipe(flavour=CONFORMANCE, arch='aarch64')
        assert recipe.flavour == CONFORMANCE
        assert not recipe.runs_agent
        assert recipe.arch == 'aarch64'
        assert recipe.debian_arch == 'arm64'
        assert recipe.kernel_package == 'linux-image-arm64'
        assert recipe.other_arch
        assert recipe.data['catalog']['name'] == 'debian-conformance'
        assert recipe.data['catalog']['container'] == \
            'localhost/kiwi-boxes/debian-conformance:aarch64'
        assert recipe.published == [
            'Debian-Conformance-Box.aarch64-Kernel.tar.xz',
            'Debian-Conformance-Box.aarch64-System.qcow2',
        ]
        assert 'Debian-Conformance-Box.aarch64-root_id_rsa.pub' in recipe.unpublished


class TestArchHashes:
    @pytest.fixture(autouse=True)
    def host(self, mocker):
        mocker.patch.object(recipe_module, 'carried_settings', return_value={'mirror': 'm'})
        mocker.patch.object(recipe_module, 'host_ca_certificates', return_value=[])

    @pytest.mark.parametrize('flavour', [AGENT, CONFORMANCE])
    def test_each_arch_has_its_own_hash(self, flavour):
        assert recipe_hash('m', flavour, 'aarch64') != recipe_hash('m', flavour, 'x86_64')

    def test_either_name_of_an_arch_and_the_default_hash_alike(self):
        assert recipe_hash('m', AGENT, 'arm64') == recipe_hash('m', AGENT, 'aarch64')
        assert recipe_hash('m') == recipe_hash('m', AGENT, 'x86_64')

    def test_an_unknown_arch_has_no_hash(self):
        with pytest.raises(BoxBuildError, match="no architecture 'sparc'"):
            recipe_hash('m', AGENT, 'sparc')
