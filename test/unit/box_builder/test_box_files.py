"""
box_builder.box_files: the files a box is published as
"""
import os
import subprocess
import tarfile

import pytest

from box_builder import box_files
from box_builder.box_files import write_box_files, write_kernel_tarball, write_packages
from box_builder.errors import BoxBuildError
from box_builder.files import file_sha256
from box_builder.recipe import load_recipe


@pytest.fixture
def recipe():
    return load_recipe()


@pytest.fixture
def rootfs(tmp_path):
    boot = tmp_path / 'rootfs' / 'boot'
    boot.mkdir(parents=True)
    return boot.parent


class TestKernelTarball:
    def test_kernel_and_initrd_named_after_the_box_owned_by_root(self, rootfs, recipe, tmp_path):
        (rootfs / 'boot' / 'vmlinuz-6.1.0-9-amd64').write_bytes(b'kernel')
        (rootfs / 'boot' / 'initrd.img-6.1.0-9-amd64').write_bytes(b'initrd')
        path = str(tmp_path / 'kernel.tar.xz')
        write_kernel_tarball(str(rootfs), recipe, path)
        with tarfile.open(path) as tarball:
            members = {member.name: member for member in tarball.getmembers()}
            assert sorted(members) == [
                'Debian-Box.x86_64-6.1.0-9-amd64.initrd', 'Debian-Box.x86_64-6.1.0-9-amd64.kernel'
            ]
            kernel = members['Debian-Box.x86_64-6.1.0-9-amd64.kernel']
            assert (kernel.uid, kernel.gid, kernel.uname, kernel.gname) == (0, 0, 'root', 'root')
            assert tarball.extractfile(kernel).read() == b'kernel'

    @pytest.mark.parametrize('kernels', [[], ['6.1.0-9-amd64', '6.1.0-10-amd64']])
    def test_one_kernel_or_nothing(self, rootfs, recipe, tmp_path, kernels):
        for version in kernels:
            (rootfs / 'boot' / f'vmlinuz-{version}').write_bytes(b'kernel')
        with pytest.raises(BoxBuildError, match=f'one kernel in the box, found {len(kernels)}'):
            write_kernel_tarball(str(rootfs), recipe, str(tmp_path / 'kernel.tar.xz'))

    def test_no_initrd(self, rootfs, recipe, tmp_path):
        (rootfs / 'boot' / 'vmlinuz-6.1.0-9-amd64').write_bytes(b'kernel')
        with pytest.raises(BoxBuildError, match='the kernel 6.1.0-9-amd64 has no initrd'):
            write_kernel_tarball(str(rootfs), recipe, str(tmp_path / 'kernel.tar.xz'))


class TestPackages:
    def test_sorted_kiwi_packages_lines(self, tmp_path, mocker):
        run = mocker.patch.object(box_files, 'run', return_value=subprocess.CompletedProcess(
            [], 0, b'zstd|None|1.5|None|amd64|None|None\nbash|None|5.2|None|amd64|None|None\n'
        ))
        path = tmp_path / 'packages'
        write_packages('/rootfs', str(path))
        assert run.call_args.args[0][:3] == [
            'dpkg-query', '--admindir=/rootfs/var/lib/dpkg', '-W'
        ]
        assert path.read_text() == (
            'bash|None|5.2|None|amd64|None|None\nzstd|None|1.5|None|amd64|None|None\n'
        )


class TestWriteBoxFiles:
    def test_every_file_and_a_checksum_beside_the_published_ones(self, recipe, tmp_path, mocker):
        def writer(name):
            return lambda *args: open(os.path.join(tmp_path, name), 'w').write(name)
        mocker.patch.object(box_files, 'write_packages', side_effect=writer(recipe.packages_file))
        mocker.patch.object(
            box_files, 'write_kernel_tarball', side_effect=writer(recipe.kernel_tarball)
        )
        disk = mocker.patch.object(
            box_files, 'write_system_disk', side_effect=writer(recipe.system_disk)
        )
        mocker.patch.object(
            box_files, 'write_rootfs_tarball', side_effect=writer(recipe.rootfs_tarball)
        )
        write_box_files(recipe, '/rootfs', '/work', str(tmp_path))
        disk.assert_called_once_with(
            '/rootfs', 20, '/work', str(tmp_path / recipe.system_disk)
        )
        for name in recipe.published:
            assert (tmp_path / f'{name}.sha256').read_text() == \
                f'{file_sha256(str(tmp_path / name))}  {name}\n'
        assert not (tmp_path / f'{recipe.rootfs_tarball}.sha256').exists()


class TestConformanceBoxFiles:
    def test_the_public_half_of_the_baked_key_beside_the_box(self, tmp_path, mocker):
        recipe = load_recipe(flavour='conformance')
        for step in ('write_packages', 'write_kernel_tarball', 'write_system_disk',
                     'write_rootfs_tarball'):
            mocker.patch.object(box_files, step)
        mocker.patch.object(box_files, 'file_sha256', return_value='0' * 64)
        keys = tmp_path / 'rootfs' / 'root' / '.ssh'
        keys.mkdir(parents=True)
        (keys / 'id_rsa').write_text('PRIVATE')
        (keys / 'id_rsa.pub').write_text('ssh-rsa AAAA kiwi@boxbuild\n')
        output = tmp_path / 'box'
        output.mkdir()
        write_box_files(recipe, str(tmp_path / 'rootfs'), '/work', str(output))
        assert (output / 'Debian-Conformance-Box.x86_64-root_id_rsa.pub').read_text() == \
            'ssh-rsa AAAA kiwi@boxbuild\n'
        assert 'PRIVATE' not in [path.read_text() for path in output.iterdir()]
