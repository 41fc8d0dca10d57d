"""
The pure parts of boxes/debian/build-box, the builder of the box that
runs the agent
"""
import importlib.machinery
import importlib.util
import os
import struct

import pytest
import yaml

from kiwi_boxed_plugin.catalog import load_catalog_file

BUILDER = os.path.join(
    os.path.dirname(__file__), '..', '..', '..', 'boxes', 'debian', 'build-box'
)


def load_builder():
    loader = importlib.machinery.SourceFileLoader('build_box', BUILDER)
    spec = importlib.util.spec_from_loader('build_box', loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


build_box = load_builder()

DEB822 = '''Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main contrib

Types: deb
Enabled: no
URIs: http://off.example/debian
Suites: bookworm
Components: main
'''


class TestParseAptSources:
    def test_deb822(self):
        assert build_box.parse_apt_sources(DEB822, deb822=True) == [
            ('http://mirror.example/debian', ['bookworm', 'bookworm-updates'], ['main']),
            ('http://security.example/debian-security', ['bookworm-security'],
             ['main', 'contrib']),
        ]

    def test_deb822_multi_line_fields_and_several_uris(self):
        text = 'Types: deb\nURIs: http://a.example/d\n http://b.example/d\n' \
            'Suites: bookworm\nComponents: main\n'
        assert build_box.parse_apt_sources(text, deb822=True) == [
            ('http://a.example/d', ['bookworm'], ['main']),
            ('http://b.example/d', ['bookworm'], ['main']),
        ]

    def test_deb822_source_only(self):
        text = 'Types: deb-src\nURIs: http://a.example/d\nSuites: bookworm\nComponents: main\n'
        assert build_box.parse_apt_sources(text, deb822=True) == []

    def test_one_line_format(self):
        text = (
            '# deb http://commented.example/debian bookworm main\n'
            'deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n'
            'deb-src http://mirror.example/debian bookworm main\n'
            'deb http://other.example/debian bookworm-updates main # trailing\n'
            'garbage\n'
        )
        assert build_box.parse_apt_sources(text, deb822=False) == [
            ('http://mirror.example/debian', ['bookworm'], ['main', 'contrib']),
            ('http://other.example/debian', ['bookworm-updates'], ['main']),
        ]


class TestChooseMirror:
    ENTRIES = [
        ('http://security.example/s/', ['bookworm-security'], ['main']),
        ('http://contrib.example/d', ['bookworm'], ['contrib']),
        ('http://mirror.example/debian/', ['bookworm', 'bookworm-updates'], ['main']),
        ('http://second.example/debian', ['bookworm'], ['main']),
    ]

    def test_first_matching_without_trailing_slash(self):
        assert build_box.choose_mirror(self.ENTRIES, 'bookworm', 'main') == \
            'http://mirror.example/debian'

    def test_none(self):
        with pytest.raises(build_box.BoxBuildError, match="'trixie main'.*--mirror"):
            build_box.choose_mirror(self.ENTRIES, 'trixie', 'main')


class TestPipSettingsForBox:
    def parse(self, text):
        import configparser
        config = configparser.ConfigParser(interpolation=None)
        config.read_string(text)
        return {section: dict(config.items(section)) for section in config.sections()}

    def test_host_conf_and_variables(self):
        text = build_box.pip_settings_for_box(
            '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\ntimeout = 10\n'
            '[install]\nfind-links = /opt/wheels\n',
            {
                'PIP_DEFAULT_TIMEOUT': '180', 'PIP_FIND_LINKS': '/opt/wheels',
                'PIP_INDEX_URL': 'https://pypi.example/simple', 'PIP_TIMEOUT': '30',
                'PIP_CONFIG_FILE': '/somewhere/pip.conf', 'PATH': '/usr/bin',
            },
            lambda path: path == '/etc/ssl/certs/ca-certificates.crt'
        )
        assert self.parse(text) == {
            'global': {
                'cert': '/etc/ssl/certs/ca-certificates.crt', 'timeout': '30',
                'default-timeout': '180', 'index-url': 'https://pypi.example/simple',
            },
            'install': {},
        }

    def test_nothing_configured(self):
        assert self.parse(build_box.pip_settings_for_box('', {}, lambda path: True)) == {
            'global': {}
        }


class TestProxyEnvironment:
    def test_only_set_proxies(self):
        assert build_box.proxy_environment({
            'https_proxy': 'http://p:3128', 'NO_PROXY': 'localhost', 'http_proxy': '',
            'HOME': '/root',
        }) == {'https_proxy': 'http://p:3128', 'NO_PROXY': 'localhost'}


class TestDisk:
    def test_geometry(self):
        size, blocks = build_box.disk_geometry(20)
        assert size == 20 * 1024 ** 3
        assert blocks * 4096 + 1024 * 1024 == size

    def test_master_boot_record(self):
        size = 20 * 1024 ** 3
        record = build_box.master_boot_record(size)
        assert len(record) == 512
        assert record[510:] == b'\x55\xaa'
        status, kind, first, sectors = struct.unpack('<B3xB3xII', record[446:462])
        assert (status, kind) == (0, 0x83)
        assert first == 2048
        assert (first + sectors) * 512 == size
        assert record[462:510] == bytes(48)

    def test_too_large_for_dos(self):
        with pytest.raises(build_box.BoxBuildError, match='too large'):
            build_box.master_boot_record(3 * 1024 ** 4)


class TestHashInputs:
    FILES = [('recipe.toml', b'a'), ('root/etc/x', b'b')]

    def test_stable_and_order_independent(self):
        assert build_box.hash_inputs(self.FILES, {'mirror': 'm'}) == \
            build_box.hash_inputs(list(reversed(self.FILES)), {'mirror': 'm'})

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
        assert build_box.hash_inputs(files, host) != \
            build_box.hash_inputs(self.FILES, {'mirror': 'm'})


class TestMountsBelow:
    TABLE = (
        'proc /proc proc rw 0 0\n'
        '/dev/vda / ext4 rw 0 0\n'
        'proc /var/cache/w/rootfs/proc proc rw 0 0\n'
        'udev /var/cache/w/rootfs/dev devtmpfs rw 0 0\n'
        'devpts /var/cache/w/rootfs/dev/pts devpts rw 0 0\n'
        '/dev/vda /var/cache/w/rootfs/var/cache/apt/archives ext4 rw 0 0\n'
        '/dev/vda /var/cache/w2/rootfs ext4 rw 0 0\n'
        '/dev/vda /var/cache/w/with\\040blank ext4 rw 0 0\n'
    )

    def test_deepest_first_and_only_below(self):
        assert build_box.mounts_below('/var/cache/w', self.TABLE) == [
            '/var/cache/w/rootfs/var/cache/apt/archives',
            '/var/cache/w/rootfs/dev/pts',
            '/var/cache/w/rootfs/proc',
            '/var/cache/w/rootfs/dev',
            '/var/cache/w/with blank',
        ]

    def test_none(self):
        assert build_box.mounts_below('/var/cache/x', self.TABLE) == []


class TestDpkgFilter:
    def test_includes_follow_excludes(self):
        assert build_box.dpkg_filter(['/a/*', '/b/*'], ['/a/c']) == \
            'path-exclude=/a/*\npath-exclude=/b/*\npath-include=/a/c\n'


class TestCatalog:
    @pytest.fixture
    def recipe(self):
        return build_box.load_recipe()

    def test_entry_follows_the_contract(self, recipe):
        entry = build_box.catalog_entry(recipe, 'file:///var/cache/kiwi-plugins/debian-box')
        assert entry == {
            'name': 'debian', 'mem_mb': '4096M', 'processors': 2, 'console': 'hvc0',
            'arch': [{
                'name': 'x86_64',
                'cmdline': ['root=/dev/vda1', 'rw', 'quiet', 'panic=-1'],
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
        entry = build_box.catalog_entry(recipe, 'file:///new')
        other = {
            'name': 'mine', 'mem_mb': '2G',
            'arch': [{'name': 'x86_64', 'container': 'localhost/mine:1'}]
        }
        old = dict(entry, mem_mb='1G')
        merged = build_box.merge_catalog({'box': [other, old], 'note': 1}, entry)
        assert merged == {'box': [other, entry], 'note': 1}
        catalog = tmp_path / 'catalog.yml'
        catalog.write_text(yaml.safe_dump(merged))
        boxes = {box.name: box for box in load_catalog_file(str(catalog))}
        assert boxes['debian'].mem_mb == 4096
        assert boxes['debian'].arch('x86_64').system_disk == 'Debian-Box.x86_64-System.qcow2'

    @pytest.mark.parametrize('data', [None, {}, {'box': []}])
    def test_merge_into_nothing(self, recipe, data):
        entry = build_box.catalog_entry(recipe, 'file:///new')
        assert build_box.merge_catalog(data, entry) == {'box': [entry]}

    def test_merge_refuses_a_broken_catalog(self, recipe):
        with pytest.raises(build_box.BoxBuildError, match="no 'box:' list"):
            build_box.merge_catalog({'box': 'x'}, build_box.catalog_entry(recipe, 'file:///'))


class TestRecipe:
    def test_file_names(self):
        recipe = build_box.load_recipe()
        assert recipe.published == [
            'Debian-Box.x86_64-Kernel.tar.xz', 'Debian-Box.x86_64-System.qcow2'
        ]
        assert recipe.packages_file == 'Debian-Box.x86_64-System.packages'
        assert recipe.rootfs_tarball == 'Debian-Box.x86_64-rootfs.tar'

    def test_initrd_carries_the_modules_of_the_contract(self):
        modules = build_box.load_recipe().data['initramfs']['modules']
        for module in ('virtio_blk', '9p', '9pnet_virtio', 'virtiofs', 'ext4', 'qemu_fw_cfg'):
            assert module in modules
