"""
The package cache's pure parts: where it lives, what it keeps, which
addresses the proxy refuses, what it tidies, and its protocol word.
"""
import os
import socket

import pytest

from kiwi_boxed_plugin import package_cache
from kiwi_boxed_plugin.agent.kiwi_box_protocol import (
    BoxJob,
    ProtocolError,
    encode_job,
    is_job_word,
    parse_job,
)
from kiwi_boxed_plugin.exceptions import KiwiBoxPackageCacheError
from kiwi_boxed_plugin.package_cache import (
    UpstreamError,
    cached_entries,
    entry_name,
    is_cacheable,
    open_cache_dir,
    package_cache_dir,
    tidy,
    upstream_address,
)


class TestCacheDir:
    def test_in_the_box_cache_per_box_and_arch(self, monkeypatch):
        monkeypatch.delenv('KIWI_BOXED_PACKAGE_CACHE', raising=False)
        monkeypatch.setenv('KIWI_BOXED_CACHE_DIR', '/var/cache/boxes')
        assert package_cache_dir('debian', 'x86_64') == \
            '/var/cache/boxes/packages/debian/x86_64'

    def test_chosen_dir(self, monkeypatch):
        monkeypatch.setenv('KIWI_BOXED_PACKAGE_CACHE', '/srv/packages')
        assert package_cache_dir('debian', 'aarch64') == '/srv/packages/debian/aarch64'

    def test_off(self, monkeypatch):
        monkeypatch.setenv('KIWI_BOXED_PACKAGE_CACHE', 'off')
        assert package_cache_dir('debian', 'x86_64') == ''

    def test_unwritable_dir_is_one_line(self, tmp_path):
        locked = tmp_path / 'locked'
        locked.mkdir(mode=0o500)
        if os.access(locked, os.W_OK):
            pytest.skip('root writes anywhere')
        with pytest.raises(KiwiBoxPackageCacheError, match='KIWI_BOXED_PACKAGE_CACHE'):
            open_cache_dir(str(locked / 'cache'))


class TestWhatIsKept:
    @pytest.mark.parametrize('path', [
        '/debian/pool/main/h/hello/hello_2.10-3_amd64.deb',
        '/debian/pool/main/d/debian-installer/foo_1_amd64.udeb',
        '/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/9e0b5aab',
    ])
    def test_immutable_files(self, path):
        assert is_cacheable(path)

    @pytest.mark.parametrize('path', [
        '/debian/dists/bookworm/InRelease',
        '/debian/dists/bookworm/Release',
        '/debian/dists/bookworm/main/binary-amd64/Packages.xz',
        '/debian/pool/main/h/hello/hello_2.10-3.dsc',
        '/deb/',
    ])
    def test_everything_else_passes(self, path):
        assert not is_cacheable(path)

    def test_entries_are_named_by_the_whole_url(self):
        path = '/debian/pool/main/h/hello/hello_2.10-3_amd64.deb'
        assert entry_name('http://mirror.example' + path) != \
            entry_name('http://forger.example' + path)
        assert len(entry_name('http://x/y.deb')) == 64


class TestUpstreamAddress:
    def addresses(self, mocker, *ips):
        mocker.patch.object(package_cache.socket, 'getaddrinfo', return_value=[
            (socket.AF_INET6 if ':' in ip else socket.AF_INET, socket.SOCK_STREAM, 6, '',
             (ip, 80)) for ip in ips
        ])

    def test_outside_address(self, mocker):
        self.addresses(mocker, '192.0.2.7')
        assert upstream_address('mirror.example', 80, allow_loopback=False) == ('192.0.2.7', 80)

    @pytest.mark.parametrize(
        'ip', ['127.0.0.1', '127.1.2.3', '::1', '0.0.0.0', '::ffff:127.0.0.1', '::']
    )
    def test_loopback_refused_in_the_isolated_network(self, mocker, ip):
        self.addresses(mocker, ip)
        with pytest.raises(UpstreamError, match="host's loopback"):
            upstream_address('sneaky.example', 80, allow_loopback=False)

    def test_loopback_allowed_with_the_host_network(self, mocker):
        self.addresses(mocker, '127.0.0.1')
        assert upstream_address('localhost', 8080, allow_loopback=True) == ('127.0.0.1', 8080)

    def test_name_that_does_not_resolve(self, mocker):
        mocker.patch.object(
            package_cache.socket, 'getaddrinfo', side_effect=socket.gaierror('no name')
        )
        with pytest.raises(UpstreamError, match='cannot resolve nowhere.example'):
            upstream_address('nowhere.example', 80, allow_loopback=False)


class TestTidy:
    def test_removes_unused_entries_and_killed_parts(self, tmp_path):
        now = 100 * 86400
        for name, age in (('fresh', 3600), ('old', 31 * 86400),
                          ('x.1.2.part', 7200), ('y.1.2.part', 60)):
            path = tmp_path / name
            path.write_text('data')
            os.utime(path, (now - age, now - age))
        tidy(str(tmp_path), now)
        assert sorted(os.listdir(tmp_path)) == ['fresh', 'y.1.2.part']
        assert cached_entries(str(tmp_path)) == ['fresh']


class TestProtocolWord:
    def test_round_trip(self):
        job = BoxJob(('system', 'build'), package_proxy='http://10.0.2.2:40123')
        line = encode_job(job)
        assert 'kiwi_package_proxy=_http://10.0.2.2:40123_' in line
        assert parse_job(line) == job
        assert is_job_word('kiwi_package_proxy=_http://10.0.2.2:1_')

    @pytest.mark.parametrize('value', ['https://10.0.2.2:1', 'http://evil.example:80', 'x'])
    def test_only_an_address_and_port(self, value):
        with pytest.raises(ProtocolError, match='kiwi_package_proxy'):
            parse_job(f'kiwi_package_proxy=_{value}_ kiwi="system build"')
