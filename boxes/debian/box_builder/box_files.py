"""
The files a box is published as, written from its root tree: the
package list, the kernel tarball, the system disk, the root tarball
for podman, and a checksum beside each file of the catalog entry.
"""
import glob
import os
import tarfile

from box_builder.disk import write_system_disk
from box_builder.errors import BoxBuildError
from box_builder.files import copy_file, file_sha256, sha256_line, write_file
from box_builder.programs import run
from box_builder.recipe import Recipe
from box_builder.root_tree import BAKED_KEY


def write_packages(rootfs: str, path: str) -> None:
    """
    The installed packages in the shape of a kiwi .packages file
    (name|epoch|version|release|arch|disturl|license), sorted
    """
    listing = run([
        'dpkg-query', f"--admindir={os.path.join(rootfs, 'var/lib/dpkg')}", '-W',
        '-f', '${Package}|None|${Version}|None|${Architecture}|None|None\n'
    ]).stdout.decode()
    write_file(path, ''.join(sorted(listing.splitlines(keepends=True))))


def write_kernel_tarball(rootfs: str, recipe: Recipe, path: str) -> None:
    """
    The box's one kernel and its initrd as <name>.<arch>-<version>.kernel
    and .initrd in a tarball, owned by root

    :raises BoxBuildError: unless the box has one kernel with an initrd
    """
    boot = os.path.join(rootfs, 'boot')
    kernels = sorted(glob.glob(os.path.join(boot, 'vmlinuz-*')))
    if len(kernels) != 1:
        raise BoxBuildError(f'expected one kernel in the box, found {len(kernels)}')
    version = os.path.basename(kernels[0])[len('vmlinuz-'):]
    initrd = os.path.join(boot, f'initrd.img-{version}')
    if not os.path.isfile(initrd):
        raise BoxBuildError(f'the kernel {version} has no initrd in the box')
    stem = f'{recipe.name}.{recipe.arch}-{version}'
    # the kernel and an initrd are compressed already: a fast
    # preset loses next to nothing
    with tarfile.open(path, 'w:xz', preset=1) as tarball:
        for source, name in ((kernels[0], f'{stem}.kernel'), (initrd, f'{stem}.initrd')):
            info = tarball.gettarinfo(source, name)
            info.uid = info.gid = 0
            info.uname = info.gname = 'root'
            with open(source, 'rb') as handle:
                tarball.addfile(info, handle)


def write_rootfs_tarball(rootfs: str, path: str) -> None:
    # the tar program keeps owners, xattrs, capabilities and ACLs
    run([
        'tar', '--numeric-owner', '--xattrs', "--xattrs-include=*", '--acls',
        '-C', rootfs, '-cf', path, '.'
    ])


def write_box_files(recipe: Recipe, rootfs: str, work: str, output: str) -> None:
    """
    Every file of the box into the output directory

    :param str rootfs: the finished root tree
    :param str work: scratch space on the output's file system
    :param str output: the box directory
    """
    write_packages(rootfs, os.path.join(output, recipe.packages_file))
    write_kernel_tarball(rootfs, recipe, os.path.join(output, recipe.kernel_tarball))
    write_system_disk(
        rootfs, recipe.data['box']['disk_size_gib'], work,
        os.path.join(output, recipe.system_disk)
    )
    write_rootfs_tarball(rootfs, os.path.join(output, recipe.rootfs_tarball))
    if recipe.baked_root_key:
        copy_file(
            os.path.join(rootfs, BAKED_KEY.lstrip('/') + '.pub'),
            os.path.join(output, recipe.root_public_key)
        )
    for name in recipe.published:
        write_file(
            os.path.join(output, name + '.sha256'),
            sha256_line(file_sha256(os.path.join(output, name)), name)
        )
