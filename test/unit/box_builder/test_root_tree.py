"""
box_builder.root_tree: the box's root tree, built in a chroot
"""
import os
import stat

import pytest

from kiwi_boxed_plugin.agent import BOX_AGENT_DIR, BOX_AGENT_FILES, BOX_AGENT_UNIT

from box_builder import root_tree
from box_builder.programs import run
from box_builder.recipe import CONFORMANCE, load_recipe
from box_builder.root_tree import (
    APT_SOURCES, POLICY_RC, UNSAFE_IO, RootTreeBuilder, dpkg_filter,
)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def builder(tmp_path):
    rootfs = tmp_path / 'rootfs'
    rootfs.mkdir()
    return RootTreeBuilder(
        load_recipe(), 'http://m.example/debian', str(rootfs), str(tmp_path / 'debs')
    )


class TestDpkgFilter:
    def test_includes_follow_excludes(self):
        assert dpkg_filter(['/a/*', '/b/*'], ['/a/c']) == \
            'path-exclude=/a/*\npath-exclude=/b/*\npath-include=/a/c\n'


class TestInstallAgent:
    @pytest.fixture
    def sources(self, tmp_path, monkeypatch):
        """
        Stand-ins for the plugin's box side files: a program with an
        interpreter line, a module, the unit
        """
        directory = tmp_path / 'agent'
        directory.mkdir()
        (directory / 'kiwi_box_agent.py').write_text('#!/usr/bin/python3\nimport sys\n')
        (directory / 'kiwi_box_protocol.py').write_text('"""words"""\n')
        (directory / BOX_AGENT_UNIT).write_text('[Unit]\n')
        monkeypatch.setattr(root_tree, 'source_path', lambda name: str(directory / name))
        return directory

    def test_all_box_side_files_beside_each_other(self, builder, sources):
        os.makedirs(builder.path('etc/systemd/system'))
        builder.install_box_side()
        agent_dir = builder.path(BOX_AGENT_DIR)
        assert sorted(os.listdir(agent_dir)) == sorted(BOX_AGENT_FILES)
        for name in BOX_AGENT_FILES:
            with open(os.path.join(agent_dir, name)) as handle:
                assert handle.read() == (sources / name).read_text()
        assert mode_of(os.path.join(agent_dir, 'kiwi_box_agent.py')) == 0o755
        assert mode_of(os.path.join(agent_dir, 'kiwi_box_protocol.py')) == 0o644
        assert os.path.isfile(builder.path(f'etc/systemd/system/{BOX_AGENT_UNIT}'))
        for share in ('description', 'bundle', 'result'):
            assert os.path.isdir(builder.path(share))
        # nothing of the conformance flavour
        assert not os.path.exists(builder.path('usr/bin/kiwi-box-job'))
        assert not os.path.exists(builder.path('root/.ssh'))


class TestConformanceBoxSide:
    @pytest.fixture
    def builder(self, tmp_path, mocker):
        rootfs = tmp_path / 'rootfs'
        rootfs.mkdir()
        builder = RootTreeBuilder(
            load_recipe(flavour=CONFORMANCE), 'http://m.example/debian', str(rootfs),
            str(tmp_path / 'debs')
        )
        # ssh-keygen in the chroot, played by the host's with -f in the tree
        mocker.patch.object(
            builder, 'chroot', side_effect=lambda *argv: run(
                list(argv[:-1]) + [builder.path(argv[-1])]
            )
        )
        return builder

    def test_the_job_script_and_units_instead_of_the_agent(self, builder, mocker):
        bake = mocker.patch.object(builder, 'bake_root_key')
        builder.install_box_side()
        bake.assert_called_once_with()
        assert not os.path.exists(builder.path(BOX_AGENT_DIR))
        assert not os.path.exists(builder.path(f'etc/systemd/system/{BOX_AGENT_UNIT}'))
        assert mode_of(builder.path('usr/bin/kiwi-box-job')) == 0o755
        unit = builder.path('etc/systemd/system/kiwi-box-job.service')
        with open(unit) as handle:
            text = handle.read()
        assert 'After=network-online.target' in text
        assert 'Wants=network-online.target' in text
        assert 'KillMode=process' in text
        # root/ is there as well, for the files the flavour shares
        assert os.path.isfile(builder.path('etc/systemd/network/80-kiwi-box.network'))
        for share in ('description', 'bundle', 'result'):
            assert os.path.isdir(builder.path(share))

    def test_the_flavours_files_win_over_root(self, builder, mocker):
        mocker.patch.object(builder, 'bake_root_key')
        builder.install_box_side()
        with open(builder.path('etc/systemd/system/serial-getty@.service.d/kiwi-box.conf')) as \
                handle:
            text = handle.read()
        assert 'After=kiwi-box-job.service' in text
        assert 'kiwi-box-agent' not in text

    def test_a_baked_root_key_pair(self, builder):
        builder.install_box_side()
        assert mode_of(builder.path('root/.ssh')) == 0o700
        assert mode_of(builder.path('root/.ssh/id_rsa')) == 0o600
        with open(builder.path('root/.ssh/id_rsa.pub')) as handle:
            public = handle.read().split()
        assert public[0] == 'ssh-rsa'
        assert public[2] == 'kiwi@boxbuild'

    def test_each_build_bakes_its_own_key(self, builder, tmp_path):
        builder.install_box_side()
        with open(builder.path('root/.ssh/id_rsa.pub')) as handle:
            first = handle.read()
        for name in ('id_rsa', 'id_rsa.pub'):
            os.unlink(builder.path(f'root/.ssh/{name}'))
        builder.install_box_side()
        with open(builder.path('root/.ssh/id_rsa.pub')) as handle:
            assert handle.read() != first


class TestChrootPreparation:
    def test_build_only_files_come_and_go(self, builder, mocker):
        mocker.patch.object(root_tree, 'copy_file')
        builder.prepare_chroot()
        assert mode_of(builder.path(POLICY_RC)) == 0o755
        assert os.path.isfile(builder.path(UNSAFE_IO))
        with open(builder.path('etc/dpkg/dpkg.cfg.d/kiwi-box')) as handle:
            assert handle.readline() == 'path-exclude=/usr/share/doc/*\n'
        stale = [builder.path('var/lib/apt/lists/deb_dists_x'), builder.path('var/cache/apt/p.bin')]
        kept = builder.path('var/lib/apt/lists/lock')
        for path in stale + [kept, builder.path(APT_SOURCES)]:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, 'w').close()
        builder.clean_up_chroot()
        for path in stale + [builder.path(POLICY_RC), builder.path(UNSAFE_IO)]:
            assert not os.path.exists(path)
        assert os.path.exists(kept)


class TestBuild:
    def test_steps_in_order_with_the_kernel_file_systems_mounted(self, builder, mocker):
        steps = []
        mounted = mocker.patch.object(root_tree, 'chroot_mounts')
        mounted.return_value.__enter__.side_effect = lambda: steps.append('mount')
        mounted.return_value.__exit__.side_effect = lambda *issue: steps.append('unmount')
        for step in (
            'bootstrap', 'prepare_chroot', 'install_packages', 'carry_host_settings',
            'install_kiwi', 'install_box_side', 'configure_services', 'clean_up_chroot',
            'finish_files', 'refuse_credentials',
        ):
            mocker.patch.object(
                builder, step, side_effect=lambda name=step: steps.append(name)
            )
        builder.build()
        assert steps == [
            'bootstrap', 'mount', 'prepare_chroot', 'install_packages',
            'carry_host_settings', 'install_kiwi', 'install_box_side', 'configure_services',
            'clean_up_chroot', 'unmount', 'finish_files', 'refuse_credentials',
        ]
        assert os.path.isdir(os.path.join(builder.deb_cache, 'partial'))

    def test_chroot_runs_with_a_clean_environment_and_the_hosts_proxies(
        self, tmp_path, mocker, monkeypatch
    ):
        monkeypatch.setenv('https_proxy', 'http://p:3128')
        monkeypatch.setenv('SECRET', 'x')
        run = mocker.patch.object(root_tree, 'run')
        builder = RootTreeBuilder(load_recipe(), 'http://m', str(tmp_path), str(tmp_path))
        builder.chroot('apt-get', 'update')
        argv, = run.call_args.args
        assert argv == ['chroot', str(tmp_path), 'apt-get', 'update']
        environment = run.call_args.kwargs['env']
        assert environment['https_proxy'] == 'http://p:3128'
        assert environment['DEBIAN_FRONTEND'] == 'noninteractive'
        assert 'SECRET' not in environment


class TestArchitectures:
    @pytest.fixture
    def arm_builder(self, tmp_path):
        rootfs = tmp_path / 'rootfs'
        rootfs.mkdir()
        return RootTreeBuilder(
            load_recipe(arch='aarch64'), 'http://m.example/debian', str(rootfs),
            str(tmp_path / 'debs')
        )

    def test_debootstrap_of_the_debian_arch(self, arm_builder, mocker):
        run = mocker.patch.object(root_tree, 'run')
        arm_builder.bootstrap()
        argv, = run.call_args.args
        assert argv[0] == 'debootstrap'
        assert [word for word in argv if word.startswith('--arch=')] == ['--arch=arm64']

    @pytest.mark.parametrize('arch, kernel', [
        ('x86_64', 'linux-image-amd64'), ('aarch64', 'linux-image-arm64'),
    ])
    def test_the_arch_kernel_is_installed_last(self, tmp_path, mocker, arch, kernel):
        rootfs = tmp_path / 'rootfs'
        rootfs.mkdir()
        builder = RootTreeBuilder(
            load_recipe(arch=arch), 'http://m', str(rootfs), str(tmp_path / 'debs')
        )
        chroot = mocker.patch.object(builder, 'chroot')
        mocker.patch.object(root_tree, 'bind_mount')
        builder.install_packages()
        install = chroot.call_args_list[-1].args
        assert install[:2] == ('apt-get', 'install')
        assert install[-1] == kernel
        assert not [name for name in install[:-1] if name.startswith('linux-image-')]
        # the initrd configuration is in place before
        assert (rootfs / 'etc/initramfs-tools/conf.d/kiwi-box.conf').exists()
