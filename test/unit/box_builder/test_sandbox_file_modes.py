"""
The builder sets modes on the files it opened, never by path, and
writes no file through a link: a link put in a file's place (in a
user's catalog directory, or in the root tree) cannot make the build,
which runs as root, chmod or overwrite another file.
"""
import os
import stat
import tempfile

import pytest
import yaml

from kiwi_boxed_plugin.agent import BOX_AGENT_UNIT

from box_builder import catalog_merge, root_tree
from box_builder.catalog_merge import install_catalog_entry
from box_builder.errors import BoxBuildError
from box_builder.files import write_file
from box_builder.recipe import load_recipe
from box_builder.root_tree import RootTreeBuilder


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def victim(tmp_path):
    """
    A private file of the host that a planted link names
    """
    path = tmp_path / 'victim'
    path.write_text('box: []\n')
    path.chmod(0o600)
    return path


@pytest.fixture
def no_chmod_by_path(mocker):
    mocker.patch('os.chmod', side_effect=AssertionError('chmod by path'))


def test_the_catalog_mode_is_set_on_the_open_file(tmp_path, victim, mocker):
    catalog = tmp_path / 'config' / 'kiwi_boxed_plugin.yml'
    made, real_mkstemp, real_dump = [], tempfile.mkstemp, yaml.safe_dump

    def mkstemp(**options):
        made.append(real_mkstemp(**options))
        return made[-1]

    def dump_then_plant_a_link(*args, **options):
        # the owner of the catalog's directory swaps the temporary
        # name for a link while the builder writes
        real_dump(*args, **options)
        _, name = made[0]
        os.unlink(name)
        os.symlink(victim, name)

    mocker.patch.object(catalog_merge.tempfile, 'mkstemp', side_effect=mkstemp)
    mocker.patch.object(catalog_merge.yaml, 'safe_dump', side_effect=dump_then_plant_a_link)
    install_catalog_entry(str(catalog), load_recipe(), str(tmp_path / 'box'))
    assert mode_of(victim) == 0o600


def test_the_catalog_is_written_without_chmod_by_path(tmp_path, no_chmod_by_path):
    catalog = tmp_path / 'kiwi_boxed_plugin.yml'
    install_catalog_entry(str(catalog), load_recipe(), str(tmp_path / 'box'))
    assert mode_of(catalog) == 0o644


def test_write_file_sets_the_mode_on_the_open_file(tmp_path, no_chmod_by_path):
    path = tmp_path / 'usr' / 'sbin' / 'policy-rc.d'
    write_file(str(path), '#!/bin/sh\n', 0o755)
    assert mode_of(path) == 0o755


def test_write_file_writes_through_no_link(tmp_path, victim):
    link = tmp_path / 'machine-id'
    link.symlink_to(victim)
    with pytest.raises(BoxBuildError, match='machine-id is a symbolic link'):
        write_file(str(link), '', 0o644)
    assert victim.read_text() == 'box: []\n'
    assert mode_of(victim) == 0o600


def test_the_agent_files_get_their_modes_without_chmod_by_path(tmp_path, no_chmod_by_path):
    rootfs = tmp_path / 'rootfs'
    (rootfs / 'etc/systemd/system').mkdir(parents=True)
    builder = RootTreeBuilder(load_recipe(), 'http://m', str(rootfs), str(tmp_path / 'debs'))
    builder.install_agent()
    agent_dir = builder.path(root_tree.BOX_AGENT_DIR)
    assert mode_of(os.path.join(agent_dir, 'kiwi_box_agent.py')) == 0o755
    assert mode_of(os.path.join(agent_dir, 'kiwi_box_protocol.py')) == 0o644
    assert mode_of(builder.path(f'etc/systemd/system/{BOX_AGENT_UNIT}')) == 0o644
