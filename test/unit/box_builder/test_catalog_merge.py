"""
box_builder.catalog_merge: the box's entry in the user's catalog
"""
import os

import pytest
import yaml

from kiwi_boxed_plugin.catalog import load_catalog_file

from box_builder.catalog_merge import (
    catalog_entry, install_catalog_entry, merge_catalog, user_catalog,
)
from box_builder.errors import BoxBuildError
from box_builder.recipe import load_recipe


@pytest.fixture
def recipe():
    return load_recipe()


class TestCatalog:
    def test_entry_follows_the_contract(self, recipe):
        entry = catalog_entry(recipe, 'file:///var/cache/kiwi-plugins/debian-box')
        assert entry == {
            'name': 'debian', 'mem_mb': '4096M', 'processors': 2, 'console': 'hvc0',
            'arch': [{
                'name': 'x86_64',
                'cmdline': ['root=/dev/vda1', 'rw', 'quiet', 'panic=-1', 'kiwi_box_agent'],
                'source': 'file:///var/cache/kiwi-plugins/debian-box',
                'packages_file': 'Debian-Box.x86_64-System.packages',
                'boxfiles': [
                    'Debian-Box.x86_64-Kernel.tar.xz', 'Debian-Box.x86_64-System.qcow2'
                ],
                'container': 'localhost/kiwi-boxes/debian:latest',
                'use_initrd': True,
            }],
        }

    def test_merge_keeps_other_boxes_and_replaces_its_own(self, recipe, tmp_path):
        entry = catalog_entry(recipe, 'file:///new')
        other = {
            'name': 'mine', 'mem_mb': '2G',
            'arch': [{'name': 'x86_64', 'container': 'localhost/mine:1'}]
        }
        old = dict(entry, mem_mb='1G')
        merged = merge_catalog({'box': [other, old], 'note': 1}, entry)
        assert merged == {'box': [other, entry], 'note': 1}
        catalog = tmp_path / 'catalog.yml'
        catalog.write_text(yaml.safe_dump(merged))
        boxes = {box.name: box for box in load_catalog_file(str(catalog))}
        assert boxes['debian'].mem_mb == 4096
        assert boxes['debian'].arch('x86_64').system_disk == 'Debian-Box.x86_64-System.qcow2'

    @pytest.mark.parametrize('data', [None, {}, {'box': []}])
    def test_merge_into_nothing(self, recipe, data):
        entry = catalog_entry(recipe, 'file:///new')
        assert merge_catalog(data, entry) == {'box': [entry]}

    def test_merge_refuses_a_broken_catalog(self, recipe):
        with pytest.raises(BoxBuildError, match="no 'box:' list"):
            merge_catalog({'box': 'x'}, catalog_entry(recipe, 'file:///'))


class TestUserCatalog:
    def test_the_variable_wins(self, monkeypatch):
        monkeypatch.setenv('KIWI_BOXED_PLUGIN_CFG', '/etc/mine.yml')
        assert user_catalog() == '/etc/mine.yml'

    def test_else_the_users_config(self, monkeypatch):
        monkeypatch.delenv('KIWI_BOXED_PLUGIN_CFG', raising=False)
        monkeypatch.setenv('HOME', '/home/me')
        assert user_catalog() == '/home/me/.config/kiwi/kiwi_boxed_plugin.yml'


class TestInstallCatalogEntry:
    def test_a_new_catalog_in_a_new_directory(self, recipe, tmp_path):
        path = tmp_path / 'config' / 'kiwi_boxed_plugin.yml'
        install_catalog_entry(str(path), recipe, str(tmp_path / 'box'))
        box, = load_catalog_file(str(path))
        assert box.arch('x86_64').source == f'file://{tmp_path}/box'
        assert os.stat(path).st_mode & 0o777 == 0o644
        assert os.listdir(path.parent) == ['kiwi_boxed_plugin.yml']

    def test_other_boxes_stay(self, recipe, tmp_path):
        path = tmp_path / 'catalog.yml'
        other = dict(catalog_entry(recipe, 'file:///mine'), name='mine')
        path.write_text(yaml.safe_dump({'box': [other]}))
        install_catalog_entry(str(path), recipe, '/boxes/debian')
        assert [box['name'] for box in yaml.safe_load(path.read_text())['box']] == \
            ['mine', 'debian']

    def test_invalid_yaml_is_left_alone(self, recipe, tmp_path):
        path = tmp_path / 'catalog.yml'
        path.write_text('box: [')
        with pytest.raises(BoxBuildError, match='not valid YAML: fix it or pass --no-catalog'):
            install_catalog_entry(str(path), recipe, '/boxes/debian')
        assert path.read_text() == 'box: ['


class TestConformanceCatalog:
    def test_entry_in_the_published_schema_beside_ours(self, recipe, tmp_path):
        conformance = load_recipe(flavour='conformance')
        entry = catalog_entry(
            conformance, 'file:///var/cache/kiwi-plugins/debian-conformance-box'
        )
        assert entry == {
            'name': 'debian-conformance', 'mem_mb': '4096M', 'processors': 2,
            'console': 'hvc0',
            'arch': [{
                'name': 'x86_64',
                # no agent mark: boxbuild speaks the published protocol
                # only; no panic=: the host adds it
                'cmdline': ['root=/dev/vda1', 'rw', 'quiet'],
                'source': 'file:///var/cache/kiwi-plugins/debian-conformance-box',
                'packages_file': 'Debian-Conformance-Box.x86_64-System.packages',
                'boxfiles': [
                    'Debian-Conformance-Box.x86_64-Kernel.tar.xz',
                    'Debian-Conformance-Box.x86_64-System.qcow2',
                ],
                'container': 'localhost/kiwi-boxes/debian-conformance:latest',
                'use_initrd': True,
            }],
        }
        catalog = tmp_path / 'catalog.yml'
        install_catalog_entry(str(catalog), recipe, '/var/cache/kiwi-plugins/debian-box')
        install_catalog_entry(
            str(catalog), conformance, '/var/cache/kiwi-plugins/debian-conformance-box'
        )
        boxes = {box.name: box for box in load_catalog_file(str(catalog))}
        assert sorted(boxes) == ['debian', 'debian-conformance']
        assert boxes['debian'].arch('x86_64').runs_agent
        assert not boxes['debian-conformance'].arch('x86_64').runs_agent


class TestArchitectures:
    @pytest.fixture
    def aarch64(self):
        return load_recipe(arch='aarch64')

    def test_an_aarch64_entry_goes_beside_the_x86_64_one(self, recipe, aarch64):
        x86_64 = catalog_entry(recipe, 'file:///boxes/debian-box')
        other = {'name': 'mine', 'arch': [{'name': 'x86_64', 'container': 'localhost/mine:1'}]}
        entry = catalog_entry(aarch64, 'file:///boxes/debian-box-aarch64')
        merged = merge_catalog({'box': [x86_64, other], 'note': 1}, entry)
        assert merged['note'] == 1
        debian, mine = merged['box']
        assert mine == other
        assert [arch['name'] for arch in debian['arch']] == ['x86_64', 'aarch64']
        assert debian['arch'][0] == x86_64['arch'][0]
        assert debian['arch'][1] == entry['arch'][0]
        assert debian['arch'][1]['container'] == 'localhost/kiwi-boxes/debian:aarch64'

    def test_merging_an_arch_again_replaces_it_in_its_place(self, recipe, aarch64):
        old_x86_64 = dict(
            catalog_entry(recipe, 'file:///old')['arch'][0], cmdline=['root=/dev/sda']
        )
        old_aarch64 = catalog_entry(aarch64, 'file:///boxes/debian-box-aarch64')['arch'][0]
        # an arch of the user's that the builder does not make
        ppc = {'name': 'ppc64le', 'container': 'localhost/mine:ppc'}
        box = dict(catalog_entry(recipe, 'file:///old'), arch=[ppc, old_x86_64, old_aarch64])
        other = {'name': 'mine', 'arch': [{'name': 'x86_64', 'container': 'localhost/mine:1'}]}
        entry = catalog_entry(recipe, 'file:///new')
        merged = merge_catalog({'box': [other, box]}, entry)
        assert merged['box'][0] == other
        debian = merged['box'][1]
        assert debian['arch'] == [ppc, entry['arch'][0], old_aarch64]
        assert debian['arch'][1]['source'] == 'file:///new'
        # the input stays as it was
        assert box['arch'] == [ppc, old_x86_64, old_aarch64]

    def test_an_arch_of_a_box_of_another_name_is_no_match(self, recipe, aarch64):
        conformance = catalog_entry(
            load_recipe(flavour='conformance'), 'file:///boxes/debian-conformance-box'
        )
        entry = catalog_entry(aarch64, 'file:///boxes/debian-box-aarch64')
        merged = merge_catalog({'box': [conformance]}, entry)
        assert merged == {'box': [conformance, entry]}

    def test_both_arches_installed_read_back_by_the_plugin(self, recipe, aarch64, tmp_path):
        path = tmp_path / 'catalog.yml'
        install_catalog_entry(str(path), recipe, '/boxes/debian-box')
        install_catalog_entry(str(path), aarch64, '/boxes/debian-box-aarch64')
        # the x86_64 box rebuilt: still one box, its arch in its place
        install_catalog_entry(str(path), recipe, '/boxes/debian-box-new')
        box, = load_catalog_file(str(path))
        assert box.name == 'debian'
        assert box.arch_names == ['x86_64', 'aarch64']
        x86_64, arm = box.arch('x86_64'), box.arch('aarch64')
        assert x86_64.source == 'file:///boxes/debian-box-new'
        assert x86_64.system_disk == 'Debian-Box.x86_64-System.qcow2'
        assert x86_64.container == 'localhost/kiwi-boxes/debian:latest'
        assert arm.source == 'file:///boxes/debian-box-aarch64'
        assert arm.system_disk == 'Debian-Box.aarch64-System.qcow2'
        assert arm.kernel_tarball == 'Debian-Box.aarch64-Kernel.tar.xz'
        assert arm.packages_file == 'Debian-Box.aarch64-System.packages'
        assert arm.container == 'localhost/kiwi-boxes/debian:aarch64'
        assert arm.runs_agent
