"""
The staging dir of a box container: results moved over, the user's
entries kept, build/ only as build/image-root when asked, nothing
followed, the script's arguments.
"""
import os

import pytest

from kiwi_boxed_plugin import staging
from kiwi_boxed_plugin.staging import (
    StagingError,
    finish,
    main,
    move_results,
    parse_script_argv,
    script_argv,
    staging_entries,
)

NAME = 'kiwi-boxbuild-1.2-abc'


def write(path, text='x'):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


def read(path):
    with open(path) as handle:
        return handle.read()


@pytest.fixture
def target(tmp_path):
    target = tmp_path / 'target'
    write(str(target / 'keep.txt'), 'mine')
    write(str(target / 'image.tar.xz'), 'older')
    write(str(target / 'build' / 'mine'), 'mine too')
    stage = target / NAME
    write(str(stage / 'image.tar.xz'), 'new')
    write(str(stage / 'result.code'), '0\n')
    write(str(stage / 'build' / 'image-root' / 'etc' / 'hostname'), 'box')
    write(str(stage / 'build' / 'other'), 'kiwi work')
    write(str(stage / '.boxbuild.files' / '1' / 'key.asc'), 'secret')
    os.symlink('/etc/passwd', stage / 'planted')
    return str(target)


class TestEntries:
    def test_without_image_root(self):
        assert staging_entries(['b', 'build', '.boxbuild.files', 'a'], False) == ['a', 'b']

    def test_with_image_root(self):
        assert staging_entries(['build', 'a'], True) == ['a', 'build/image-root']

    def test_image_root_asked_without_build(self):
        assert staging_entries(['a'], True) == ['a']


class TestFinish:
    def test_results_over_the_user_kept(self, target):
        moved = finish(target, NAME, keep_image_root=False)
        assert moved == ['image.tar.xz', 'planted', 'result.code']
        assert sorted(os.listdir(target)) == [
            'build', 'image.tar.xz', 'keep.txt', 'planted', 'result.code'
        ]
        assert read(os.path.join(target, 'keep.txt')) == 'mine'
        assert read(os.path.join(target, 'image.tar.xz')) == 'new'
        # moved as the link it is, never followed
        assert os.readlink(os.path.join(target, 'planted')) == '/etc/passwd'
        assert os.listdir(os.path.join(target, 'build')) == ['mine']

    def test_image_root_kept(self, target):
        moved = finish(target, NAME, keep_image_root=True)
        assert 'build/image-root' in moved
        assert sorted(os.listdir(os.path.join(target, 'build'))) == ['image-root', 'mine']
        assert read(os.path.join(target, 'build/image-root/etc/hostname')) == 'box'
        assert not os.path.exists(os.path.join(target, NAME))

    def test_image_root_kept_where_the_target_has_no_build(self, tmp_path):
        target = str(tmp_path)
        write(os.path.join(target, NAME, 'build', 'image-root', 'x'))
        finish(target, NAME, keep_image_root=True)
        assert os.listdir(os.path.join(target, 'build', 'image-root')) == ['x']

    def test_a_directory_result_replaces_an_older_one(self, tmp_path):
        target = str(tmp_path)
        write(os.path.join(target, 'result-dir', 'old'))
        write(os.path.join(target, NAME, 'result-dir', 'new'))
        finish(target, NAME, False)
        assert os.listdir(os.path.join(target, 'result-dir')) == ['new']

    def test_gone_runs_dirs_removed(self, target):
        gone = 'kiwi-boxbuild-9.9-old'
        write(os.path.join(target, gone, 'build', 'x'))
        finish(target, '', False, [gone])
        assert not os.path.exists(os.path.join(target, gone))
        assert os.path.isdir(os.path.join(target, NAME))

    def test_only_staging_names_removed(self, target):
        with pytest.raises(StagingError, match='keep.txt is no staging dir name'):
            finish(target, '', False, ['keep.txt'])
        assert os.path.exists(os.path.join(target, 'keep.txt'))
        with pytest.raises(StagingError, match='no staging dir name'):
            finish(target, '../x', False)

    def test_missing_staging_dir(self, tmp_path):
        assert finish(str(tmp_path), NAME, True) == []

    def test_a_failed_move_is_reported_the_rest_done(self, target, mocker):
        real_rename = os.rename

        def rename(source, destination):
            if source.endswith('image.tar.xz'):
                raise PermissionError(13, 'Permission denied')
            real_rename(source, destination)
        mocker.patch('os.rename', side_effect=rename)
        with pytest.raises(StagingError, match='cannot move .*image.tar.xz.*Permission denied'):
            finish(target, NAME, False)
        assert read(os.path.join(target, 'result.code')) == '0\n'
        assert not os.path.exists(os.path.join(target, NAME))

    def test_move_results_keeps_the_staging_dir(self, target):
        move_results(os.path.join(target, NAME), target, False)
        assert sorted(os.listdir(os.path.join(target, NAME))) == ['.boxbuild.files', 'build']


class TestScript:
    def test_round_trip(self):
        argv = script_argv('/t', NAME, True, ['kiwi-boxbuild-1.1-x', 'kiwi-boxbuild-1.1-y'])
        assert argv == [
            '/t', '--move', NAME, '--keep-image-root', '--remove', 'kiwi-boxbuild-1.1-x',
            '--remove', 'kiwi-boxbuild-1.1-y'
        ]
        assert parse_script_argv(argv) == (
            '/t', NAME, True, ['kiwi-boxbuild-1.1-x', 'kiwi-boxbuild-1.1-y']
        )

    @pytest.mark.parametrize('argv', [[], ['/t', '--bogus'], ['/t', '--move']])
    def test_bad_arguments(self, argv):
        with pytest.raises(StagingError):
            parse_script_argv(argv)

    def test_main(self, target, capsys):
        assert main([target, '--move', NAME]) == 0
        assert read(os.path.join(target, 'image.tar.xz')) == 'new'
        assert main([target, '--remove', 'keep.txt']) == 1
        assert 'staging: keep.txt is no staging dir name' in capsys.readouterr().err

    def test_standalone(self):
        """
        The script runs in a box image with the standard library alone
        """
        with open(staging.__file__) as handle:
            imports = [
                line.split()[1] for line in handle
                if line.startswith(('import ', 'from '))
            ]
        assert set(imports) <= {'os', 're', 'shutil', 'stat', 'sys', 'typing'}
