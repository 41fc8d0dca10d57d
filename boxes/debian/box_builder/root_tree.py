"""
The box's root tree, built in a chroot: Debian's minbase from the
mirror, the recipe's packages and kernel, the host's settings, kiwi,
the box agent and its services, then the files tree of boxes/debian.
"""
import glob
import logging
import os
import subprocess
from typing import Sequence

from kiwi_boxed_plugin.agent import (
    BOX_AGENT_DIR, BOX_AGENT_FILES, BOX_AGENT_UNIT, source_path,
)

from box_builder.errors import BoxBuildError
from box_builder.files import copy_file, first_file_holding, read_file, write_file
from box_builder.host_settings import (
    HOST_CA_DIR, box_pip_conf, host_ca_certificates, host_credentials, host_pip_conf,
    pip_credentials, pip_settings, proxy_environment, without_credentials,
)
from box_builder.mounts import bind_mount, chroot_mounts
from box_builder.programs import run
from box_builder.recipe import Recipe

# nothing may start services in the chroot
POLICY_RC = 'usr/sbin/policy-rc.d'
# the box is thrown away if the build dies: dpkg need not fsync
UNSAFE_IO = 'etc/dpkg/dpkg.cfg.d/kiwi-box-build'
# the directories the agent mounts the job's shares on
SHARE_POINTS = ('description', 'bundle', 'result')
# the apt sources debootstrap writes, naming the mirror; its log names
# every URL it fetched
APT_SOURCES = 'etc/apt/sources.list'
BOOTSTRAP_LOG = 'var/log/bootstrap.log'
# root's baked key pair of a flavour that wants one
BAKED_KEY_DIR = 'root/.ssh'
BAKED_KEY = '/root/.ssh/id_rsa'
BAKED_KEY_COMMENT = 'kiwi@boxbuild'

log = logging.getLogger('build-box')


def dpkg_filter(excludes: Sequence[str], includes: Sequence[str]) -> str:
    """
    A dpkg configuration that leaves the excluded paths out of every
    package; includes win over excludes, so they follow them
    """
    return ''.join(
        [f'path-exclude={path}\n' for path in excludes]
        + [f'path-include={path}\n' for path in includes]
    )


class RootTreeBuilder:
    """
    Builds the root tree of a recipe's box

    :param Recipe recipe: what to build
    :param str mirror: Debian mirror URL
    :param str rootfs: where the tree goes; must not exist yet
    :param str deb_cache: the package cache kept across builds
    """
    def __init__(self, recipe: Recipe, mirror: str, rootfs: str, deb_cache: str) -> None:
        self.recipe = recipe
        self.mirror = mirror
        self.rootfs = rootfs
        self.deb_cache = deb_cache
        # the chroot's programs get the host's settings whole, with
        # their credentials: the environment is kept in no file
        self.environment = {
            'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            'HOME': '/root', 'LANG': 'C.UTF-8', 'DEBIAN_FRONTEND': 'noninteractive',
            **proxy_environment(os.environ)
        }

    def path(self, name: str) -> str:
        """
        :param str name: a path in the box, with or without leading slash
        :return: where it is in the root tree
        """
        return os.path.join(self.rootfs, name.lstrip('/'))

    def chroot(self, *argv: str) -> subprocess.CompletedProcess:
        return run(['chroot', self.rootfs] + list(argv), env=self.environment)

    def build(self) -> None:
        os.makedirs(os.path.join(self.deb_cache, 'partial'), exist_ok=True)
        self.bootstrap()
        with chroot_mounts(self.rootfs):
            self.prepare_chroot()
            self.install_packages()
            self.carry_host_settings()
            self.install_kiwi()
            self.install_box_side()
            self.configure_services()
            self.clean_up_chroot()
        self.finish_files()
        self.refuse_credentials()

    def bootstrap(self) -> None:
        box = self.recipe.data['box']
        log.info('debootstrap %s from %s', box['suite'], without_credentials(self.mirror))
        run([
            'debootstrap', '--variant=minbase', f'--arch={self.recipe.debian_arch}',
            f"--components={','.join(box['components'])}",
            f'--cache-dir={self.deb_cache}',
            box['suite'], self.rootfs, self.mirror
        ])

    def prepare_chroot(self) -> None:
        """
        The host's DNS, no services starting, fast dpkg, and the
        recipe's paths left out of every package
        """
        copy_file('/etc/resolv.conf', self.path('etc/resolv.conf'))
        write_file(self.path(POLICY_RC), '#!/bin/sh\nexit 101\n', 0o755)
        write_file(self.path(UNSAFE_IO), 'force-unsafe-io\n')
        dpkg = self.recipe.data['dpkg']
        write_file(
            self.path('etc/dpkg/dpkg.cfg.d/kiwi-box'),
            dpkg_filter(dpkg['path_exclude'], dpkg['path_include'])
        )

    def install_packages(self) -> None:
        """
        Configure the initrd, then install the packages and the kernel,
        whose initrd is built once, with the modules the box needs
        """
        modules = self.recipe.data['initramfs']['modules']
        write_file(
            self.path('etc/initramfs-tools/modules'),
            '# written by build-box from recipe.toml\n' + '\n'.join(modules) + '\n'
        )
        # 'most' would put every storage driver in; 'dep' cannot see
        # the box's hardware from a chroot
        write_file(self.path('etc/initramfs-tools/conf.d/kiwi-box.conf'), 'MODULES=list\n')
        packages = self.recipe.data['packages']['install'] + [self.recipe.kernel_package]
        log.info('installing %d packages and their dependencies', len(packages))
        self.chroot('apt-get', 'update', '-q')
        # the package cache of earlier builds is bind mounted: a rebuild
        # downloads only what changed
        archives = self.path('var/cache/apt/archives')
        with bind_mount(self.deb_cache, archives):
            self.chroot(
                'apt-get', 'install', '-q', '-y', '--no-install-recommends', *packages
            )
        # what debootstrap left in the box's own cache: not apt-get
        # clean, which would have emptied the shared cache above
        for deb in glob.glob(os.path.join(archives, '*.deb')):
            os.unlink(deb)

    def carry_host_settings(self) -> None:
        """
        The host's CA certificates, pip settings and proxy variables,
        so that pip and kiwi in the box reach what the host reaches;
        credentials only for the build's own pip, in its environment
        """
        for path in host_ca_certificates():
            copy_file(path, self.path(os.path.join(HOST_CA_DIR, os.path.basename(path))))
        self.chroot('update-ca-certificates')
        settings = pip_settings(
            host_pip_conf(os.environ), os.environ, lambda path: os.path.exists(self.path(path))
        )
        write_file(self.path('etc/pip.conf'), box_pip_conf(settings))
        self.environment.update(pip_credentials(settings))
        proxies = proxy_environment(os.environ)
        if proxies:
            environment = self.path('etc/environment')
            before = read_file(environment).decode() if os.path.exists(environment) else ''
            write_file(environment, before + ''.join(
                f'{name}={without_credentials(value)}\n' for name, value in proxies.items()
            ))

    def install_kiwi(self) -> None:
        """
        kiwi from PyPI into a venv of its own, /opt/kiwi
        """
        requirements = self.recipe.data['kiwi']['requirements']
        log.info('installing %s', ', '.join(requirements))
        self.chroot('python3', '-m', 'venv', '/opt/kiwi')
        self.chroot(
            '/opt/kiwi/bin/pip', 'install', '--no-cache-dir', '--progress-bar', 'off',
            *requirements
        )
        os.symlink('/opt/kiwi/bin/kiwi-ng', self.path('usr/local/bin/kiwi-ng'))

    def install_box_side(self) -> None:
        """
        What runs the host's jobs: our agent, or the flavour's files
        tree (its units must be there before they are enabled) and,
        if the flavour wants it, root's baked key pair; and the mount
        points of the job's shares
        """
        if self.recipe.runs_agent:
            self.install_agent()
        else:
            self.copy_files_trees()
        if self.recipe.baked_root_key:
            self.bake_root_key()
        for directory in SHARE_POINTS:
            os.makedirs(self.path(directory), exist_ok=True)

    def bake_root_key(self) -> None:
        """
        An ssh key pair of root's made now, the same in every copy of
        the box (the published boxes' way of authenticating their sshfs
        mounts; a flavour reproduces it on purpose)
        """
        log.info('making the baked ssh key pair of root')
        os.makedirs(self.path(BAKED_KEY_DIR), mode=0o700, exist_ok=True)
        os.chmod(self.path(BAKED_KEY_DIR), 0o700)
        self.chroot(
            'ssh-keygen', '-q', '-t', 'rsa', '-b', '3072', '-N', '', '-C', BAKED_KEY_COMMENT,
            '-f', BAKED_KEY
        )

    def install_agent(self) -> None:
        """
        The box side of the plugin beside each other in BOX_AGENT_DIR
        (the agent imports the protocol module from there), its unit,
        and the mount points of the job's shares
        """
        agent_dir = self.path(BOX_AGENT_DIR)
        os.makedirs(agent_dir, exist_ok=True)
        for name in BOX_AGENT_FILES:
            content = read_file(source_path(name))
            # a file with an interpreter line is a program, the rest
            # are modules
            write_file(
                os.path.join(agent_dir, name), content,
                0o755 if content.startswith(b'#!') else 0o644
            )
        copy_file(
            source_path(BOX_AGENT_UNIT), self.path(f'etc/systemd/system/{BOX_AGENT_UNIT}')
        )

    def configure_services(self) -> None:
        services = self.recipe.data['services']
        self.chroot('systemctl', 'enable', *services['enable'])
        self.chroot('systemctl', 'mask', *services['mask'])

    def clean_up_chroot(self) -> None:
        """
        Remove what only the build needed: a mirror's credentials too
        """
        sources = read_file(self.path(APT_SOURCES)).decode()
        write_file(
            self.path(APT_SOURCES), sources.replace(self.mirror, without_credentials(self.mirror))
        )
        if os.path.lexists(self.path(BOOTSTRAP_LOG)):
            os.unlink(self.path(BOOTSTRAP_LOG))
        # apt's indexes are stale by the time the box runs
        for path in glob.glob(self.path('var/lib/apt/lists/*_*')) + glob.glob(
            self.path('var/cache/apt/*.bin')
        ):
            os.unlink(path)
        os.unlink(self.path(UNSAFE_IO))
        os.unlink(self.path(POLICY_RC))

    def copy_files_trees(self) -> None:
        """
        Copy root/ and the flavour's files tree over the tree, in
        this order, so that the flavour's files win
        """
        for tree in self.recipe.files_trees:
            # a file of the tree replaces a link in its place, never
            # writes through it
            run(['cp', '-a', '--remove-destination', '--', tree + '/.', self.rootfs])

    def finish_files(self) -> None:
        """
        Copy the files trees over the tree, last so that they win
        (resolv.conf); empty the machine id so that every boot of the
        box gets its own
        """
        self.copy_files_trees()
        write_file(self.path('etc/machine-id'), '')
        write_file(
            self.path('etc/fstab'), '# the kernel command line mounts the root read-write\n'
        )

    def refuse_credentials(self) -> None:
        """
        The last check before the tree becomes the box: no file holds
        a credential of the host's settings (a program's log of the
        URLs it fetched, say)

        :raises BoxBuildError: naming the first file that does
        """
        credentials = host_credentials(self.mirror, os.environ)
        if not credentials:
            return
        found = first_file_holding(self.rootfs, [secret.encode() for secret in credentials])
        if found:
            raise BoxBuildError(
                f'/{os.path.relpath(found, self.rootfs)} of the box holds a credential of the '
                f"host's pip, proxy or mirror settings, so the box is not published: build "
                f'it without credentials in them'
            )
