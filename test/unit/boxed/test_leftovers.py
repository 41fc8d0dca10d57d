import os
import tempfile

import pytest

from kiwi_boxed_plugin.leftovers import (
    made_by_gone_run,
    maker_of,
    run_name_prefix,
    sweep_runtime_dirs,
)
from kiwi_boxed_plugin.shares import private_runtime_dir
from kiwi_plugin_support.lifetime import run_identity

# the identity of a run that is gone: no process has that pid
GONE_RUN = '999999999.12345'


class TestNames:
    def test_this_runs_names(self):
        assert run_name_prefix() == f'kiwi-boxbuild-{run_identity()}-'
        assert maker_of(run_name_prefix() + 'abc_123') == run_identity()
        assert not made_by_gone_run(run_name_prefix() + 'abc')

    @pytest.mark.parametrize('name', [
        'kiwi-boxbuild-ab12cd34', 'kiwi-boxbuild-', 'other-1.2-x', 'kiwi-boxbuild-1.2-',
        'kiwi-boxbuild-1.2-x/y',
    ])
    def test_other_names(self, name):
        assert maker_of(name) is None and not made_by_gone_run(name)

    def test_gone_run(self):
        assert made_by_gone_run(f'kiwi-boxbuild-{GONE_RUN}-x1')


class TestSweep:
    def test_only_dirs_of_gone_runs(self, tmp_path, caplog):
        gone = tmp_path / f'kiwi-boxbuild-{GONE_RUN}-abc'
        (gone / 'shares').mkdir(parents=True)
        (gone / 'box_identity').write_text('private key')
        alive = tmp_path / f'{run_name_prefix()}def'
        alive.mkdir()
        older = tmp_path / 'kiwi-boxbuild-ab12cd34'
        older.mkdir()
        planted = tmp_path / f'kiwi-boxbuild-{GONE_RUN}-lnk'
        target = tmp_path / 'precious'
        target.mkdir()
        (target / 'file').write_text('keep')
        planted.symlink_to(target)
        sweep_runtime_dirs(str(tmp_path))
        assert not gone.exists()
        assert alive.is_dir() and older.is_dir()
        assert planted.is_symlink() and (target / 'file').read_text() == 'keep'
        assert f'removing {gone}, left by a boxbuild that was killed' in caplog.text

    def test_dir_of_another_user_is_left(self, tmp_path, mocker):
        gone = tmp_path / f'kiwi-boxbuild-{GONE_RUN}-abc'
        gone.mkdir()
        mocker.patch('os.geteuid', return_value=os.stat(gone).st_uid + 1)
        sweep_runtime_dirs(str(tmp_path))
        assert gone.is_dir()

    def test_missing_temp_root(self, tmp_path):
        sweep_runtime_dirs(str(tmp_path / 'none'))

    def test_private_runtime_dir_sweeps_first(self, tmp_path, monkeypatch):
        monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
        gone = tmp_path / f'kiwi-boxbuild-{GONE_RUN}-abc'
        gone.mkdir()
        with private_runtime_dir() as runtime_dir:
            assert not gone.exists()
            assert os.path.basename(runtime_dir).startswith(run_name_prefix())
            assert maker_of(os.path.basename(runtime_dir)) == run_identity()
            assert os.stat(runtime_dir).st_mode & 0o077 == 0
        assert not os.path.exists(runtime_dir)
