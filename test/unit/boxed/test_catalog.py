import os

import pytest
import yaml

from kiwi_boxed_plugin.catalog import (
    BoxCatalog,
    load_catalog_file,
    parse_memory_mb,
    source_url,
)
from kiwi_boxed_plugin.defaults import OBS_DOWNLOAD_URL, Defaults
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxArchNotFoundError,
    KiwiBoxCatalogError,
    KiwiBoxNotFoundError,
)

OBS = 'https://obs.example/repositories'

PUBLISHED = {
    'tumbleweed': ['x86_64', 'aarch64', 's390x'],
    'leap': ['x86_64'],
    'fedora': ['x86_64'],
    'ubuntu': ['x86_64', 'aarch64'],
    'universal': ['x86_64', 'aarch64', 's390x', 'ppc64le'],
    'staging': ['x86_64', 'aarch64', 's390x', 'ppc64le'],
}


def arch_entry(**changes):
    entry = {
        'name': 'x86_64',
        'cmdline': ['root=/dev/vda1', 'rd.plymouth=0'],
        'source': 'obs://Some:Project/images',
        'packages_file': 'My-Box.x86_64-System.json',
        'boxfiles': ['My-Box.x86_64-Kernel.tar.xz', 'My-Box.x86_64-System.qcow2'],
        'container': 'registry.example/my:latest',
        'use_initrd': True,
    }
    entry.update(changes)
    return {key: value for key, value in entry.items() if value is not None}


def box_entry(**changes):
    entry = {
        'name': 'mybox', 'mem_mb': '4G', 'processors': 2, 'console': 'hvc0',
        'arch': [arch_entry()],
    }
    entry.update(changes)
    return {key: value for key, value in entry.items() if value is not None}


def write_catalog(tmp_path, boxes, name='catalog.yml'):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({'box': boxes}))
    return str(path)


class TestPackagedCatalog:
    def test_lists_the_published_boxes(self):
        catalog = BoxCatalog(user_candidates=[])
        assert {name: catalog.get(name).arch_names for name in catalog.boxes} == PUBLISHED
        for box in catalog.boxes.values():
            assert (box.mem_mb, box.processors, box.console) == (8096, 4, 'hvc0')
            for arch in box.arches:
                assert arch.source.startswith('obs://Virtualization:Appliances:SelfContained:')
                assert arch.system_disk.endswith(f'.{arch.name}-System.qcow2')
                assert arch.kernel_tarball.endswith(f'.{arch.name}-Kernel.tar.xz')
                assert arch.use_initrd

    def test_tumbleweed_url_on_the_obs_server(self):
        arch = BoxCatalog(user_candidates=[]).get('tumbleweed').arch('x86_64')
        assert arch.url(OBS_DOWNLOAD_URL) == (
            'https://download.opensuse.org/repositories/'
            'Virtualization:/Appliances:/SelfContained:/tumbleweed/images/'
        )


class TestUserCatalog:
    def test_user_box_overrides_and_adds(self, tmp_path):
        user = write_catalog(tmp_path, [
            box_entry(name='leap', mem_mb='2G'), box_entry(name='mybox')
        ])
        catalog = BoxCatalog(user_candidates=[user])
        assert catalog.get('leap').mem_mb == 2048
        assert catalog.get('leap').origin == user
        assert catalog.get('mybox').processors == 2
        assert catalog.get('tumbleweed').origin == catalog.packaged

    def test_first_found_wins(self, tmp_path):
        first = write_catalog(tmp_path, [box_entry(name='one')], 'first.yml')
        second = write_catalog(tmp_path, [box_entry(name='two')], 'second.yml')
        missing = str(tmp_path / 'missing.yml')
        catalog = BoxCatalog(user_candidates=[missing, first, second])
        assert catalog.user_file == first
        assert 'one' in catalog.boxes and 'two' not in catalog.boxes

    def test_candidates_never_include_the_current_directory(self, monkeypatch, tmp_path):
        monkeypatch.setenv('KIWI_BOXED_PLUGIN_CFG', '/some/catalog.yml')
        monkeypatch.setenv('HOME', str(tmp_path))
        assert Defaults.get_user_catalog_candidates() == [
            '/some/catalog.yml',
            os.path.join(str(tmp_path), '.config/kiwi/kiwi_boxed_plugin.yml'),
            '/etc/kiwi_boxed_plugin.yml'
        ]

    def test_unknown_box_lists_known_ones(self):
        with pytest.raises(KiwiBoxNotFoundError, match="unknown box 'nope'; known boxes: tumbl"):
            BoxCatalog(user_candidates=[]).get('nope')

    def test_arch_not_offered(self):
        with pytest.raises(KiwiBoxArchNotFoundError, match="'leap' is not offered for aarch64"):
            BoxCatalog(user_candidates=[]).get('leap').arch('aarch64')


@pytest.mark.parametrize('source,expected', [
    ('obs://Virtualization:Appliances:SelfContained:leap/images',
     f'{OBS}/Virtualization:/Appliances:/SelfContained:/leap/images/'),
    ('obs://home:me:boxes/openSUSE_Tumbleweed', f'{OBS}/home:/me:/boxes/openSUSE_Tumbleweed/'),
    ('obs://A/sub/repo', f'{OBS}/A/sub/repo/'),
    ('https://boxes.example/dir', 'https://boxes.example/dir/'),
    ('https://boxes.example/dir/', 'https://boxes.example/dir/'),
    ('http://127.0.0.1:8080/boxes', 'http://127.0.0.1:8080/boxes/'),
    ('file:///var/cache/kiwi-plugins/debian-box', 'file:///var/cache/kiwi-plugins/debian-box/'),
    ('file://localhost/srv/boxes/', 'file:///srv/boxes/'),
    ('/srv/my boxes/$(reboot)', 'file:///srv/my%20boxes/%24%28reboot%29/'),
    ('/srv/boxes/../boxes', 'file:///srv/boxes/'),
])
def test_source_url(source, expected):
    assert source_url(source, OBS + '/') == expected


@pytest.mark.parametrize('source,problem', [
    ('', 'must be obs://'),
    ('boxes/here', 'must be obs://'),
    ('ftp://host/boxes', 'must be obs://'),
    ('obs://OnlyProject', 'must be obs://PROJECT/REPOSITORY'),
    ('obs://Project//repo', 'must be obs://PROJECT/REPOSITORY'),
    ('obs://Project/../repo', 'must be obs://PROJECT/REPOSITORY'),
    ('https:///path', 'https URL without a host'),
    ('https://host/path?x=1', 'query or fragment'),
    ('file://otherhost/path', 'file:///ABSOLUTE/PATH'),
])
def test_source_url_rejects(source, problem):
    with pytest.raises(ValueError, match=problem.replace('?', r'\?')):
        source_url(source, OBS)


@pytest.mark.parametrize('value,mib', [
    ('8096M', 8096), ('8G', 8192), ('8GB', 8192), ('512MiB', 512), ('2GiB', 2048),
    (8, 8192), ('4', 4096), ('1g', 1024), (' 16 M ', 16),
])
def test_parse_memory_mb(value, mib):
    assert parse_memory_mb(value) == mib


@pytest.mark.parametrize('value', ['0', '0M', 'lots', '-1G', '1T', None, '1.5G'])
def test_parse_memory_mb_rejects(value):
    with pytest.raises(ValueError):
        parse_memory_mb(value)


@pytest.mark.parametrize('boxes,message', [
    ('not a list', "expected a top level list 'box:'"),
    (['text'], 'box entry 1 is not a mapping'),
    ([box_entry(name=None)], "box entry 1 needs a 'name'"),
    ([box_entry(name='../evil')], "box entry 1 needs a 'name'"),
    ([box_entry(name='.hidden')], "box entry 1 needs a 'name'"),
    ([box_entry(), box_entry()], "box 'mybox' is listed twice"),
    ([box_entry(mem_mb='lots')], "box 'mybox', field 'mem_mb' must be a memory size"),
    ([box_entry(processors=-1)], "box 'mybox', field 'processors' must be a positive"),
    ([box_entry(processors='4')], "box 'mybox', field 'processors' must be a positive"),
    ([box_entry(console='hvc0; reboot')], "field 'console' must be a tty name"),
    ([box_entry(arch=[])], "field 'arch' must be a non-empty list"),
    ([box_entry(arch=[arch_entry(name='i386')])], "field 'arch' needs entries named one of"),
    ([box_entry(arch=[arch_entry(), arch_entry()])], "field 'arch' lists x86_64 twice"),
    ([box_entry(arch=[arch_entry(cmdline='root=/dev/vda1')])],
     r"field 'arch\[x86_64\].cmdline' must be a list"),
    ([box_entry(arch=[arch_entry(cmdline=['a b'])])], 'has an empty or spaced list item'),
    ([box_entry(arch=[arch_entry(cmdline=[''])])], 'has an empty or spaced list item'),
    ([box_entry(arch=[arch_entry(source=7)])], r"'arch\[x86_64\].source' must be a str"),
    ([box_entry(arch=[arch_entry(use_initrd='yes')])], r"'arch\[x86_64\].use_initrd' must be a"),
    ([box_entry(arch=[arch_entry(boxfiles=['../x.qcow2', 'k.tar.xz'])])],
     r"'arch\[x86_64\].boxfiles' must be plain file names"),
    ([box_entry(arch=[arch_entry(packages_file='sub/p.json')])], 'must be plain file names'),
    ([box_entry(arch=[arch_entry(boxfiles=['k.tar.xz'])])],
     r"'arch\[x86_64\].boxfiles' needs exactly one system disk \(\*.qcow2\)"),
    ([box_entry(arch=[arch_entry(boxfiles=['a.qcow2', 'b.qcow2', 'k.tar.xz'])])],
     'needs exactly one system disk'),
    ([box_entry(arch=[arch_entry(boxfiles=['a.qcow2'])])], 'needs exactly one kernel tarball'),
    ([box_entry(arch=[arch_entry(boxfiles=['a.qcow2', 'k.tar.xz', 'x.img', 'x.img'])])],
     r"'arch\[x86_64\]' names the file x.img twice in the box"),
    ([box_entry(arch=[arch_entry(source='relative/dir')])],
     r"'arch\[x86_64\].source' must be obs://"),
    ([box_entry(arch=[arch_entry(source=None)])], r"'arch\[x86_64\].source' must be obs://"),
    ([box_entry(arch=[arch_entry(boxfiles=[], container='')])],
     r"'arch\[x86_64\]' needs 'boxfiles' with a 'source', or a 'container'"),
    # what a hostile or mistaken catalog could do with each field
    ([box_entry(arch=[arch_entry(container='--volume=/:/host')])],
     r"'arch\[x86_64\].container' must be a full image reference .* not '--volume=/:/host'"),
    ([box_entry(arch=[arch_entry(container='-q')])], 'must be a full image reference'),
    ([box_entry(arch=[arch_entry(container='ubuntu:latest')])], 'must be a full image reference'),
    ([box_entry(arch=[arch_entry(container='registry.example/My/Box')])],
     'must be a full image reference'),
    ([box_entry(arch=[arch_entry(container='registry.example/box:tag;reboot')])],
     'must be a full image reference'),
    ([box_entry(arch=[arch_entry(container='-registry.example/box')])],
     'must be a full image reference'),
    ([box_entry(arch=[arch_entry(cmdline=['kiwi="system', 'build"'])])],
     r"'arch\[x86_64\].cmdline' must hold kernel arguments NAME or NAME=VALUE of printable "
     r"ASCII without '\"': 'kiwi=\"system'$"),
    ([box_entry(arch=[arch_entry(cmdline=['quiet"'])])], 'without \'"\''),
    ([box_entry(arch=[arch_entry(cmdline=['--'])])], 'must hold kernel arguments'),
    ([box_entry(arch=[arch_entry(cmdline=['root=/dev/vda1\x00'])])],
     'must hold kernel arguments'),
    ([box_entry(arch=[arch_entry(cmdline=['lang=Ü'])])], 'must hold kernel arguments'),
    ([box_entry(arch=[arch_entry(cmdline=['kiwi-no-halt'])])],
     r"'arch\[x86_64\].cmdline' must not set 'kiwi-no-halt': the job sets that word"),
    ([box_entry(arch=[arch_entry(cmdline=['ssh_key=_AAAAC3Nza_'])])], 'must not set'),
    ([box_entry(arch=[arch_entry(cmdline=['custom_mount=_/srv_'])])], 'must not set'),
    ([box_entry(arch=[arch_entry(cmdline=['host_kiwibundle=_u@10.0.2.2:/_'])])],
     'must not set'),
    ([box_entry(arch=[arch_entry(cmdline=['kiwi=x'])])], 'must not set'),
    ([box_entry(processors=True)], "field 'processors' must be a positive whole number"),
    ([box_entry(processors=4096)], "field 'processors' .* of at most 1024"),
    ([box_entry(processors=2.0)], "field 'processors' must be a positive"),
    ([box_entry(mem_mb=8096)], "field 'mem_mb' must be a memory size .* at most 1024G"),
    ([box_entry(mem_mb=True)], "field 'mem_mb' must be a memory size"),
    ([box_entry(mem_mb='٣G')], "field 'mem_mb' must be a memory size"),
    ([box_entry(console='hvc0 quiet')], "field 'console' must be a tty name"),
    ([box_entry(console='ttyé')], "field 'console' must be a tty name"),
    ([box_entry(console='a' * 33)], "field 'console' must be a tty name"),
    ([box_entry(console=['hvc0'])], "field 'console' must be a tty name"),
    ([box_entry(name='a' * 65)], "box entry 1 needs a 'name' of up to 64"),
    ([box_entry(name='box\nname')], "box entry 1 needs a 'name'"),
    ([box_entry(name='..')], "box entry 1 needs a 'name'"),
    ([box_entry(arch=[arch_entry(name=['x86_64'])])], "field 'arch' needs entries named"),
    ([box_entry(arch=[arch_entry(boxfiles=['..', 'a.qcow2', 'k.tar.xz'])])],
     'must be plain file names'),
    ([box_entry(arch=[arch_entry(boxfiles=['a\x00.qcow2', 'k.tar.xz'])])],
     'must be plain file names'),
    ([box_entry(arch=[arch_entry(boxfiles=['a?x=.qcow2', 'k.tar.xz'])])],
     'must be plain file names'),
    ([box_entry(arch=[arch_entry(packages_file='..')])], 'must be plain file names'),
    ([box_entry(arch=[arch_entry(packages_file='My-Box.x86_64-System.qcow2')])],
     r"'arch\[x86_64\]' names the file My-Box.x86_64-System.qcow2 twice in the box"),
    ([box_entry(arch=[arch_entry(packages_file='kernel.x86_64')])],
     'names the file kernel.x86_64 twice'),
    ([box_entry(arch=[arch_entry(), arch_entry(name='aarch64')])],
     r"'arch\[aarch64\]' names the file My-Box.x86_64-Kernel.tar.xz twice"),
    ([box_entry(arch=[arch_entry(source='/srv/boxes\n/x')])],
     r"'arch\[x86_64\].source' must not contain control characters"),
    ([box_entry(arch=[arch_entry(source='https://boxes.example/my boxes')])],
     'must be a URL of printable ASCII'),
    ([box_entry(arch=[arch_entry(source='https://boxes.example:http/dir')])],
     'is a https URL with an invalid port'),
    ([box_entry(arch=[arch_entry(source='javascript:alert(1)')])], 'must be obs://'),
    ([box_entry(arch=[arch_entry(allow_http='yes')])],
     r"'arch\[x86_64\].allow_http' must be a bool"),
])
def test_validation_names_file_box_and_field(tmp_path, boxes, message):
    path = tmp_path / 'catalog.yml'
    path.write_text(yaml.safe_dump({'box': boxes}))
    with pytest.raises(KiwiBoxCatalogError, match=message) as issue:
        load_catalog_file(str(path))
    assert str(issue.value).startswith(f'box catalog {path}')
    assert '\n' not in str(issue.value)


def test_container_only_arch_is_valid(tmp_path):
    path = write_catalog(tmp_path, [box_entry(arch=[arch_entry(boxfiles=[], source=None)])])
    arch = load_catalog_file(path)[0].arch('x86_64')
    assert (arch.boxfiles, arch.system_disk, arch.kernel_tarball) == ((), '', '')


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / 'catalog.yml'
    path.write_text('box:\n  - name: x\n   bad: [\n')
    with pytest.raises(KiwiBoxCatalogError, match=r'is not valid YAML at line \d+'):
        load_catalog_file(str(path))


def test_unreadable_catalog(tmp_path):
    with pytest.raises(KiwiBoxCatalogError, match='cannot read box catalog .*: No such file'):
        load_catalog_file(str(tmp_path / 'missing.yml'))


class TestObsDownloadUrl:
    def test_https_when_kiwi_has_its_plain_http_default(self, mocker):
        from kiwi.defaults import Defaults as KiwiDefaults
        runtime = mocker.patch('kiwi.runtime_config.RuntimeConfig')
        runtime.return_value.get_obs_download_server_url.return_value = \
            KiwiDefaults.get_obs_download_server_url()
        assert Defaults.get_obs_download_url() == OBS_DOWNLOAD_URL
        assert OBS_DOWNLOAD_URL.startswith('https://')

    def test_configured_server_wins(self, mocker):
        runtime = mocker.patch('kiwi.runtime_config.RuntimeConfig')
        runtime.return_value.get_obs_download_server_url.return_value = \
            'http://mirror.example/repositories'
        assert Defaults.get_obs_download_url() == 'http://mirror.example/repositories'


@pytest.mark.parametrize('reference', [
    'registry.opensuse.org/virtualization/appliances/selfcontained/tumbleweed/images/'
    'tumbleweed:latest',
    'localhost/kiwi-boxes/debian:latest',
    'localhost:5000/boxes/my_box__x-1.2:v1.0-rc_1',
    'registry.example:8443/box',
    'Registry.Example/box@sha256:' + 'a' * 64,
    'registry.example/box:1@sha256:' + '0' * 64,
])
def test_image_references_accepted(tmp_path, reference):
    path = write_catalog(tmp_path, [box_entry(arch=[arch_entry(container=reference)])])
    assert load_catalog_file(path)[0].arch('x86_64').container == reference


def test_kernel_arguments_accepted(tmp_path):
    cmdline = [
        'root=/dev/vda1', 'rw', 'panic=-1', 'console=ttyS0,115200n8', 'rd.plymouth=0',
        '8250.nr_uarts=1', "systemd.setenv=A='b'", 'hostname_suffix=x'
    ]
    path = write_catalog(tmp_path, [box_entry(arch=[arch_entry(cmdline=cmdline)])])
    assert load_catalog_file(path)[0].arch('x86_64').cmdline == tuple(cmdline)


def test_allow_http_is_read_and_off_by_default(tmp_path):
    path = write_catalog(tmp_path, [
        box_entry(name='plain', arch=[
            arch_entry(source='http://boxes.example/d', allow_http=True)
        ]),
        box_entry(name='safe'),
    ])
    boxes = {box.name: box.arch('x86_64').allow_http for box in load_catalog_file(path)}
    assert boxes == {'plain': True, 'safe': False}


def test_arches_of_a_box_share_its_cache_directory(tmp_path):
    arches = [arch_entry(), arch_entry(
        name='aarch64', packages_file='My-Box.aarch64-System.json',
        boxfiles=['My-Box.aarch64-Kernel.tar.xz', 'My-Box.aarch64-System.qcow2'])
    ]
    box = load_catalog_file(write_catalog(tmp_path, [box_entry(arch=arches)]))[0]
    assert box.arch('aarch64').cache_names == (
        'My-Box.aarch64-Kernel.tar.xz', 'My-Box.aarch64-System.qcow2',
        'My-Box.aarch64-System.json', 'kernel.aarch64', 'initrd.aarch64'
    )
    container_only = load_catalog_file(write_catalog(
        tmp_path, [box_entry(arch=[arch_entry(boxfiles=[], source=None)])], 'c.yml'
    ))[0]
    assert container_only.arch('x86_64').cache_names == ()


def test_hostile_packaged_catalog_copy_is_refused_whole(tmp_path):
    # one bad entry spoils the catalog: no box of it is half trusted
    packaged = yaml.safe_load(open(Defaults.get_packaged_catalog()))
    packaged['box'][1]['arch'][0]['container'] = '--privileged'
    path = tmp_path / 'catalog.yml'
    path.write_text(yaml.safe_dump(packaged))
    with pytest.raises(KiwiBoxCatalogError, match=(
        f"box catalog {path}: box 'leap', field 'arch.x86_64..container'"
    )):
        BoxCatalog(user_candidates=[str(path)])
