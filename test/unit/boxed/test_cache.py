import dataclasses
import hashlib
import io
import json
import logging
import os
import tarfile

import pytest

from kiwi_boxed_plugin.cache import (
    BoxCache,
    box_state,
    check_plain_http,
    file_state,
    needs_download,
    pick_boot_members,
)
from kiwi_boxed_plugin.catalog import Box, BoxArch
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxCacheError,
    KiwiBoxChecksumError,
    KiwiBoxDownloadError,
    KiwiBoxInsecureSourceError,
    KiwiBoxKernelError,
)

DISK = 'My-Box.x86_64-System.qcow2'
TARBALL = 'My-Box.x86_64-Kernel.tar.xz'
PACKAGES = 'My-Box.x86_64-System.packages'
BASE = 'https://boxes.example/images/'


def tarball(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:xz') as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_box(use_initrd=True, boxfiles=(TARBALL, DISK), packages=PACKAGES):
    arch = BoxArch(
        name='x86_64', cmdline=('root=/dev/vda1',), source=BASE, packages_file=packages,
        boxfiles=tuple(boxfiles), container='', use_initrd=use_initrd
    )
    return Box(name='mybox', mem_mb=4096, processors=2, console='hvc0',
               arches=(arch,), origin='test'), arch


class FakeFetcher:
    """
    Serves a box from memory and records what was asked for
    """
    def __init__(self, disk=b'disk-1' * 1000, kernel=b'kernel-1', initrd=b'initrd-1'):
        self.files = {}
        self.publish(disk, kernel, initrd)
        self.small = []
        self.downloads = []
        self.corrupt = set()

    def publish(self, disk=None, kernel=None, initrd=None):
        if disk is not None:
            self.files[DISK] = disk
        if kernel is not None:
            members = {'My-Box.x86_64-1.0.kernel': kernel}
            if initrd is not None:
                members['My-Box.x86_64-1.0.initrd'] = initrd
            self.files[TARBALL] = tarball(members)
        self.files[PACKAGES] = b'package list ' + self.files[DISK][:8]

    def read_small(self, url):
        self.small.append(url[len(BASE):])
        name = url[len(BASE):]
        if name.endswith('.sha256'):
            data = self.files[name[:-len('.sha256')]]
            return f'{hashlib.sha256(data).hexdigest()}  {name}\n'.encode()
        return self.files[name]

    def download(self, url, partial, sha256, label):
        name = url[len(BASE):]
        self.downloads.append(name)
        data = self.files[name]
        if name in self.corrupt:
            raise KiwiBoxChecksumError(f'{label} does not match')
        assert hashlib.sha256(data).hexdigest() == sha256
        with open(partial, 'wb') as handle:
            handle.write(data)


@pytest.fixture
def fetcher():
    return FakeFetcher()


@pytest.fixture
def cache(tmp_path, fetcher):
    return BoxCache(str(tmp_path / 'cache'), fetcher=fetcher, obs_download_url='unused')


@pytest.fixture
def cached(cache, fetcher):
    """
    The box, used once; the fetcher's records cleared
    """
    box, arch = make_box()
    with cache.use(box, arch):
        pass
    fetcher.small.clear()
    fetcher.downloads.clear()
    return box, arch


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


SIG = {'ino': 1, 'size': 10, 'mtime_ns': 5}


@pytest.mark.parametrize('recorded,current,state', [
    (SIG, None, 'absent'),
    (None, None, 'absent'),
    (None, SIG, 'unverified'),
    (SIG, dict(SIG), 'verified'),
    (dict(SIG, sha256='x'), dict(SIG), 'verified'),
    (SIG, dict(SIG, size=11), 'modified'),
    (SIG, dict(SIG, mtime_ns=6), 'modified'),
    (SIG, dict(SIG, ino=2), 'unverified'),
    (SIG, dict(SIG, ino=2, size=11), 'unverified'),
])
def test_file_state(recorded, current, state):
    assert file_state(recorded, current) == state


@pytest.mark.parametrize('states,state', [
    ({'t': 'absent', 'd': 'absent'}, 'absent'),
    ({'t': 'verified', 'd': 'verified'}, 'verified'),
    ({'t': 'verified', 'd': 'modified'}, 'modified'),
    ({'t': 'modified', 'd': 'verified'}, 'unverified'),
    ({'t': 'absent', 'd': 'modified'}, 'unverified'),
    ({'t': 'verified', 'd': 'absent'}, 'unverified'),
    ({'t': 'unverified', 'd': 'verified'}, 'unverified'),
    ({'t': 'verified', 'd': 'unverified'}, 'unverified'),
])
def test_box_state(states, state):
    assert box_state(states, 'd') == state


@pytest.mark.parametrize('state,recorded,published,disk,expected', [
    ('verified', 'a', 'a', True, False),
    ('verified', 'a', 'b', True, True),
    ('verified', 'a', 'a', False, False),
    ('modified', 'a', 'a', True, False),
    ('modified', 'a', 'b', True, True),
    ('modified', 'a', 'a', False, True),
    ('unverified', 'a', 'a', True, True),
    ('absent', '', 'a', False, True),
])
def test_needs_download(state, recorded, published, disk, expected):
    assert needs_download(state, recorded, published, disk) is expected


@pytest.mark.parametrize('names,use_initrd,picked', [
    (['B-1.kernel', 'B-1.initrd', 'B-1.md5'], True, ('B-1.kernel', 'B-1.initrd')),
    (['./dir/B.kernel', 'dir/B.initrd'], True, ('./dir/B.kernel', 'dir/B.initrd')),
    (['B.kernel', 'B.initrd'], False, ('B.kernel', '')),
    (['B.kernel'], False, ('B.kernel', '')),
])
def test_pick_boot_members(names, use_initrd, picked):
    assert pick_boot_members(names, use_initrd) == picked


@pytest.mark.parametrize('names,use_initrd,message', [
    ([], True, r'holds 0 \*.kernel files \(none\)'),
    (['a.kernel', 'b.kernel', 'x.initrd'], True, r'holds 2 \*.kernel files \(a.kernel, b.k'),
    (['a.kernel'], True, r'holds 0 \*.initrd files'),
    (['a.kernel.sig', 'a.initrd'], True, r'holds 0 \*.kernel'),
])
def test_pick_boot_members_rejects(names, use_initrd, message):
    with pytest.raises(KiwiBoxKernelError, match=message):
        pick_boot_members(names, use_initrd)


class TestRoot:
    def test_created_when_missing(self, tmp_path, monkeypatch):
        monkeypatch.setenv('KIWI_BOXED_CACHE_DIR', str(tmp_path / 'a' / 'b'))
        assert BoxCache().root == str(tmp_path / 'a' / 'b')
        assert os.path.isdir(tmp_path / 'a' / 'b')

    def test_tilde_in_variable(self, tmp_path, monkeypatch):
        monkeypatch.setenv('KIWI_BOXED_CACHE_DIR', '~/boxes')
        monkeypatch.setenv('HOME', str(tmp_path))
        assert BoxCache().root == str(tmp_path / 'boxes')

    def test_defaults_to_home(self, tmp_path, monkeypatch):
        monkeypatch.delenv('KIWI_BOXED_CACHE_DIR', raising=False)
        monkeypatch.setenv('HOME', str(tmp_path))
        assert BoxCache().root == str(tmp_path / '.kiwi_boxes')

    def test_cannot_be_created(self, tmp_path):
        (tmp_path / 'file').write_text('')
        with pytest.raises(KiwiBoxCacheError, match=(
            f'cannot create box cache directory {tmp_path}/file/cache: Not a directory: '
            'set KIWI_BOXED_CACHE_DIR'
        )):
            BoxCache(str(tmp_path / 'file' / 'cache'))

    def test_not_writable(self, tmp_path, mocker):
        mocker.patch('os.access', return_value=False)
        with pytest.raises(KiwiBoxCacheError, match=f'box cache {tmp_path} is not writable'):
            BoxCache(str(tmp_path))


class TestUse:
    def test_first_download(self, cache, fetcher):
        box, arch = make_box()
        assert cache.state(box, arch) == 'absent'
        with cache.use(box, arch) as files:
            assert read(files.kernel) == b'kernel-1'
            assert read(files.initrd) == b'initrd-1'
            assert read(files.system_disk) == fetcher.files[DISK]
            assert os.path.dirname(files.kernel) == files.temp_dir
            assert files.temp_dir.startswith(os.path.join(cache.root, '.tmp', 'mybox.x86_64.'))
            # the run's files are the cached files, not copies
            box_dir = os.path.join(cache.root, 'mybox')
            assert os.path.samefile(files.system_disk, os.path.join(box_dir, DISK))
            assert os.path.samefile(files.kernel, os.path.join(box_dir, 'kernel.x86_64'))
            assert os.path.samefile(files.initrd, os.path.join(box_dir, 'initrd.x86_64'))
        assert not os.path.exists(files.temp_dir)
        assert sorted(fetcher.downloads) == [TARBALL, DISK]
        assert read(os.path.join(box_dir, PACKAGES)) == fetcher.files[PACKAGES]
        assert cache.state(box, arch) == 'verified'

    def test_cached_run_fetches_only_checksums(self, cache, fetcher, mocker, cached):
        box, arch = cached
        extract = mocker.spy(BoxCache, '_extract')
        rehash = mocker.patch('kiwi_boxed_plugin.cache._sha256_of')
        with cache.use(box, arch) as files:
            assert read(files.system_disk) == fetcher.files[DISK]
        assert sorted(fetcher.small) == [TARBALL + '.sha256', DISK + '.sha256']
        assert fetcher.downloads == []
        assert not extract.called
        assert not rehash.called

    def test_no_update_check_fetches_nothing(self, cache, fetcher, cached):
        box, arch = cached
        fetcher.publish(disk=b'disk-2' * 1000)
        with cache.use(box, arch, update_check=False) as files:
            assert read(files.system_disk) == b'disk-1' * 1000
        assert (fetcher.small, fetcher.downloads) == ([], [])

    def test_no_update_check_still_verifies_first_download(self, cache, fetcher):
        box, arch = make_box()
        with cache.use(box, arch, update_check=False):
            pass
        assert sorted(fetcher.downloads) == [TARBALL, DISK]
        assert DISK + '.sha256' in fetcher.small

    def test_update_fetches_only_what_changed(self, cache, fetcher, cached):
        box, arch = cached
        fetcher.publish(disk=b'disk-2' * 1000)
        with cache.use(box, arch) as files:
            assert read(files.system_disk) == b'disk-2' * 1000
        assert fetcher.downloads == [DISK]
        assert read(os.path.join(cache.root, 'mybox', PACKAGES)) == b'package list disk-2di'

    def test_new_kernel_is_extracted_once(self, cache, fetcher, mocker, cached):
        box, arch = cached
        fetcher.publish(kernel=b'kernel-2', initrd=b'initrd-2')
        extract = mocker.spy(BoxCache, '_extract')
        for _ in range(2):
            with cache.use(box, arch) as files:
                assert read(files.kernel) == b'kernel-2'
                assert read(files.initrd) == b'initrd-2'
        assert extract.call_count == 1

    def test_deleted_kernel_is_extracted_again(self, cache, fetcher, cached):
        box, arch = cached
        os.unlink(os.path.join(cache.root, 'mybox', 'kernel.x86_64'))
        with cache.use(box, arch, update_check=False) as files:
            assert read(files.kernel) == b'kernel-1'

    def test_checksum_mismatch_keeps_previous_box(self, cache, fetcher, cached):
        box, arch = cached
        fetcher.publish(disk=b'disk-2' * 1000, kernel=b'kernel-2', initrd=b'initrd-2')
        fetcher.corrupt.add(DISK)
        with pytest.raises(KiwiBoxChecksumError):
            with cache.use(box, arch):
                pass
        assert cache.state(box, arch) == 'verified'
        with cache.use(box, arch, update_check=False) as files:
            assert read(files.system_disk) == b'disk-1' * 1000
            # the tarball fetched before the failure was not swapped in either
            assert read(files.kernel) == b'kernel-1'

    def test_unreachable_server_on_cached_box_fails(self, cache, fetcher, mocker, cached):
        box, arch = cached
        mocker.patch.object(fetcher, 'read_small', side_effect=KiwiBoxDownloadError('down'))
        with pytest.raises(KiwiBoxDownloadError, match=(
            '^down; the cached box is intact: --no-update-check builds with it$'
        )):
            with cache.use(box, arch):
                pass
        assert cache.state(box, arch) == 'verified'

    def test_unreachable_server_on_first_download_fails_as_is(self, cache, fetcher, mocker):
        box, arch = make_box()
        mocker.patch.object(fetcher, 'read_small', side_effect=KiwiBoxDownloadError('down'))
        with pytest.raises(KiwiBoxDownloadError, match='^down$'):
            with cache.use(box, arch):
                pass

    def test_running_build_keeps_its_files_through_an_update(self, cache, fetcher):
        box, arch = make_box()
        with cache.use(box, arch) as first:
            fetcher.publish(disk=b'disk-2' * 1000)
            with cache.use(box, arch) as second:
                assert read(second.system_disk) == b'disk-2' * 1000
            assert read(first.system_disk) == b'disk-1' * 1000
        assert cache.state(box, arch) == 'verified'

    def test_modified_disk_is_kept(self, cache, fetcher, caplog):
        box, arch = make_box()
        with cache.use(box, arch) as files:
            with open(files.system_disk, 'ab') as disk:
                disk.write(b'written by a --no-snapshot build')
        assert cache.state(box, arch) == 'modified'
        fetcher.downloads.clear()
        with cache.use(box, arch) as files:
            assert read(files.system_disk).endswith(b'--no-snapshot build')
        assert fetcher.downloads == []
        assert 'changed by a --no-snapshot build' in caplog.text

    def test_modified_disk_is_replaced_by_an_update(self, cache, fetcher):
        box, arch = make_box()
        with cache.use(box, arch) as files:
            with open(files.system_disk, 'ab') as disk:
                disk.write(b'local change')
        fetcher.publish(disk=b'disk-2' * 1000)
        with cache.use(box, arch) as files:
            assert read(files.system_disk) == b'disk-2' * 1000
        assert cache.state(box, arch) == 'verified'

    def test_replaced_file_is_verified_again(self, cache, fetcher, cached):
        box, arch = cached
        disk = os.path.join(cache.root, 'mybox', DISK)
        with open(disk + '.new', 'wb') as handle:
            handle.write(b'something else')
        os.replace(disk + '.new', disk)
        assert cache.state(box, arch) == 'unverified'
        with cache.use(box, arch, update_check=False) as files:
            assert read(files.system_disk) == fetcher.files[DISK]
        assert fetcher.downloads == [DISK]

    def test_upstream_cache_is_adopted_without_download(self, cache, fetcher, tmp_path):
        box, arch = make_box()
        box_dir = os.path.join(cache.root, 'mybox')
        os.makedirs(box_dir)
        for name in (DISK, TARBALL):
            with open(os.path.join(box_dir, name), 'wb') as handle:
                handle.write(fetcher.files[name])
        assert cache.state(box, arch) == 'unverified'
        with cache.use(box, arch, update_check=False):
            pass
        assert fetcher.downloads == []
        assert cache.state(box, arch) == 'verified'

    def test_damaged_record_means_unverified(self, cache, fetcher, cached):
        box, arch = cached
        with open(os.path.join(cache.root, 'mybox', '.x86_64.verified.json'), 'w') as handle:
            handle.write('{broken')
        assert cache.state(box, arch) == 'unverified'

    def test_record_holds_digests(self, cache, fetcher, cached):
        box, arch = cached
        with open(os.path.join(cache.root, 'mybox', '.x86_64.verified.json')) as handle:
            record = json.load(handle)
        assert record['files'][DISK]['sha256'] == hashlib.sha256(fetcher.files[DISK]).hexdigest()
        assert set(record['boot']) == {'tarball_sha256', 'kernel', 'initrd'}

    def test_box_without_initrd(self, cache, fetcher):
        box, arch = make_box(use_initrd=False)
        fetcher.publish(kernel=b'only-kernel')
        with cache.use(box, arch) as files:
            assert read(files.kernel) == b'only-kernel'
            assert files.initrd == ''

    def test_tarball_without_initrd_for_initrd_box(self, cache, fetcher):
        box, arch = make_box()
        fetcher.publish(kernel=b'only-kernel')
        with pytest.raises(KiwiBoxKernelError, match=r'holds 0 \*.initrd files'):
            with cache.use(box, arch):
                pass

    def test_broken_tarball(self, cache, fetcher):
        box, arch = make_box()
        fetcher.files[TARBALL] = b'not a tarball'
        with pytest.raises(KiwiBoxKernelError, match='cannot extract the kernel from'):
            with cache.use(box, arch):
                pass

    def test_container_only_box(self, cache):
        box, arch = make_box(boxfiles=())
        assert cache.state(box, arch) == 'container-only'
        with pytest.raises(KiwiBoxCacheError, match="'mybox' has no VM files for x86_64"):
            with cache.use(box, arch):
                pass

    def test_box_without_packages_file(self, cache, fetcher):
        box, arch = make_box(packages=None or '')
        with cache.use(box, arch):
            pass
        assert PACKAGES not in fetcher.small

    def test_missing_packages_file_only_warns(self, cache, fetcher, caplog):
        box, arch = make_box()
        del fetcher.files[PACKAGES]
        real = fetcher.read_small

        def without_packages(url):
            if url.endswith(PACKAGES):
                raise KiwiBoxDownloadError(f'{url} does not exist')
            return real(url)
        fetcher.read_small = without_packages
        with cache.use(box, arch):
            pass
        assert f'packages file {PACKAGES} not updated' in caplog.text

    def test_no_hard_links(self, cache, mocker):
        box, arch = make_box()
        mocker.patch('os.link', side_effect=OSError(1, 'Operation not permitted'))
        with pytest.raises(KiwiBoxCacheError, match='cannot hard link .* Operation not permitted'):
            with cache.use(box, arch):
                pass
        assert os.listdir(os.path.join(cache.root, '.tmp')) == []

    def test_stale_temp_dir_is_removed(self, cache, fetcher):
        box, arch = make_box()
        stale = os.path.join(cache.root, '.tmp', 'mybox.x86_64.dead')
        other = os.path.join(cache.root, '.tmp', 'otherbox.x86_64.dead')
        os.makedirs(stale)
        os.makedirs(other)
        with cache.use(box, arch) as files:
            with cache.use(box, arch):
                # a live build's dir survives the sweep of another use
                assert os.path.isdir(files.temp_dir)
        assert not os.path.exists(stale)
        assert os.path.isdir(other)

    def test_old_partials_are_dropped(self, cache, fetcher):
        box, arch = make_box()
        box_dir = os.path.join(cache.root, 'mybox')
        os.makedirs(box_dir)
        old = os.path.join(box_dir, f'.{DISK}.0123456789abcdef.part')
        with open(old, 'wb') as handle:
            handle.write(b'older upload')
        with cache.use(box, arch):
            pass
        assert not os.path.exists(old)
        assert not [name for name in os.listdir(box_dir) if name.endswith('.part')]


def http_box(source='http://boxes.example/images', allow_http=False, origin='/my/catalog.yml'):
    box, arch = make_box()
    arch = dataclasses.replace(arch, source=source, allow_http=allow_http)
    return dataclasses.replace(box, arches=(arch,), origin=origin), arch


class TestPlainHttp:
    @pytest.mark.parametrize('base', [
        BASE, 'file:///srv/boxes/', 'HTTPS://boxes.example/images/'
    ])
    def test_safe_sources_pass_quietly(self, base, caplog):
        box, arch = http_box()
        with caplog.at_level(logging.WARNING, logger='kiwi'):
            check_plain_http(box, arch, base)
        assert caplog.records == []

    def test_refused_without_opt_in(self):
        box, arch = http_box()
        with pytest.raises(KiwiBoxInsecureSourceError, match=(
            "^box 'mybox' .x86_64.: http://boxes.example/images/ is plain http, where anyone "
            "on the way could swap the box and its checksums: use an https source, or allow "
            "it with 'allow_http: true' in the box's entry of /my/catalog.yml$"
        )):
            check_plain_http(box, arch, 'http://boxes.example/images/')

    def test_obs_source_on_a_plain_http_server(self):
        box, arch = http_box(
            source='obs://Some:Project/images', origin=Defaults.get_packaged_catalog()
        )
        with pytest.raises(KiwiBoxInsecureSourceError, match=(
            "use an https 'obs: download_url' in kiwi's config, or allow it with "
            "'allow_http: true' in the box's entry of a user catalog$"
        )):
            check_plain_http(box, arch, 'http://mirror.example/Some:/Project/images/')

    def test_opt_in_warns_in_one_line(self, caplog):
        box, arch = http_box(allow_http=True)
        with caplog.at_level(logging.WARNING, logger='kiwi'):
            check_plain_http(box, arch, 'http://boxes.example/images/')
        assert [record.message for record in caplog.records] == [
            "box 'mybox' (x86_64): fetching over plain http from "
            'http://boxes.example/images/, as /my/catalog.yml allows'
        ]

    def test_refused_before_anything_is_fetched(self, cache, fetcher):
        box, arch = http_box()
        with pytest.raises(KiwiBoxInsecureSourceError):
            with cache.use(box, arch):
                pass
        assert (fetcher.small, fetcher.downloads) == ([], [])
        assert cache.state(box, arch) == 'absent'
