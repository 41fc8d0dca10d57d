"""
box_builder.root_tree: the box's root tree, built in a chroot
"""
import os
import stat

import pytest

from kiwi_boxed_plugin.agent import BOX_AGENT_DIR, BOX_AGENT_FILES, BOX_AGENT_UNIT

from box_builder import root_tree
from box_builder.recipe import load_recipe
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
        builder.install_agent()
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
            'install_kiwi', 'install_agent', 'configure_services', 'clean_up_chroot',
            'finish_files', 'refuse_credentials',
        ):
            mocker.patch.object(
                builder, step, side_effect=lambda name=step: steps.append(name)
            )
        builder.build()
        assert steps == [
            'bootstrap', 'mount', 'prepare_chroot', 'install_packages',
            'carry_host_settings', 'install_kiwi', 'install_agent', 'configure_services',
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
