import os
import shutil
import stat

import pytest

from kiwi_boxed_plugin.exceptions import KiwiBoxRequestError
from kiwi_boxed_plugin.host_files import (
    CarriedFile,
    carried_config,
    carried_files,
    carry_build_files,
    check_local_repositories,
    local_source_path,
)
from kiwi_plugin_support.kiwi_args import KiwiCommandArgs

CARRIED = '/bundle/.boxbuild.files'


@pytest.fixture(scope='module')
def build_args():
    return KiwiCommandArgs('system build')


class TestCarryBuildFiles:
    def test_host_files_become_carried_copies(self, build_args, tmp_path):
        key = tmp_path / 'release key "2".asc'
        key.write_text('KEY')
        other_key = tmp_path / 'other.asc'
        other_key.write_text('KEY')
        tokens, carried = carry_build_files(build_args, [
            '--signing-key', str(key), '--add-package=vim', f'--signing-key={other_key}'
        ])
        assert tokens == [
            f'--signing-key={CARRIED}/1/release_key__2_.asc', '--add-package=vim',
            f'--signing-key={CARRIED}/2/other.asc'
        ]
        assert carried == (
            CarriedFile(str(key), '1/release_key__2_.asc'),
            CarriedFile(str(other_key), '2/other.asc'),
        )

    def test_ca_cert_of_kiwi_10(self, build_args, tmp_path):
        if '--ca-cert' not in build_args.options:
            pytest.skip('kiwi 9.24 has no --ca-cert')
        cert = tmp_path / 'ca.pem'
        cert.write_text('CERT')
        tokens, carried = carry_build_files(build_args, ['--ca-cert', str(cert)])
        assert tokens == [f'--ca-cert={CARRIED}/1/ca.pem']

    def test_relative_path_is_the_callers(self, build_args, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / 'key.asc').write_text('KEY')
        _, carried = carry_build_files(build_args, ['--signing-key=key.asc'])
        assert carried == (CarriedFile(str(tmp_path / 'key.asc'), '1/key.asc'),)

    def test_no_host_file_stays_as_typed(self, build_args, tmp_path):
        # a file of the box, or user:password: kiwi in the box judges
        tokens = [
            '--signing-key=/usr/share/keyrings/in-the-box-only.gpg',
            '--add-repo-credentials', 'user:secret'
        ]
        changed, carried = carry_build_files(build_args, tokens)
        assert changed == [tokens[0], '--add-repo-credentials=user:secret']
        assert carried == ()

    def test_credentials_file_is_carried(self, build_args, tmp_path):
        credentials = tmp_path / 'credentials'
        credentials.write_text('user:secret\n')
        changed, carried = carry_build_files(
            build_args, ['--set-repo-credentials', str(credentials)]
        )
        assert changed == [f'--set-repo-credentials={CARRIED}/1/credentials']
        assert carried[0].host_path == str(credentials)

    def test_config(self, tmp_path):
        config = carried_config(str(tmp_path / 'kiwi.yml'))
        assert config.box_path == f'{CARRIED}/config/kiwi.yml'


class TestLocalRepositories:
    @pytest.mark.parametrize('source', ['{repo}', 'dir://{repo}', 'file://{repo}'])
    def test_host_directory_outside_the_shared_path(self, build_args, tmp_path, source):
        repo = tmp_path / 'repo'
        repo.mkdir()
        value = source.format(repo=repo) + ',rpm-md'
        with pytest.raises(KiwiBoxRequestError, match='--add-repo source .* --shared-path'):
            check_local_repositories(build_args, ['--add-repo', value], '')
        with pytest.raises(KiwiBoxRequestError, match='--set-repo source'):
            check_local_repositories(
                build_args, [f'--set-repo={value}'], str(tmp_path / 'elsewhere')
            )

    def test_below_the_shared_path(self, build_args, tmp_path):
        repo = tmp_path / 'repos' / 'one'
        repo.mkdir(parents=True)
        check_local_repositories(
            build_args, ['--add-repo', f'dir://{repo},rpm-md'], str(tmp_path / 'repos')
        )

    def test_remote_and_box_paths_pass(self, build_args):
        check_local_repositories(build_args, [
            '--add-repo', 'https://example.org/repo,rpm-md',
            '--add-repo', 'obs://Virtualization:Appliances:Builder/Debian_12,apt-deb',
            '--set-repo', '/no/such/dir/on/this/host,rpm-md',
        ], '')

    def test_local_source_path(self):
        assert local_source_path('dir:///srv/repo') == '/srv/repo'
        assert local_source_path('/srv/repo') == '/srv/repo'
        assert local_source_path('http://host/repo') == ''


class TestCarriedFiles:
    def test_copies_while_running_owner_only(self, tmp_path):
        target = tmp_path / 'target'
        target.mkdir()
        (target / 'keep.txt').write_text('mine')
        key = tmp_path / 'key.asc'
        key.write_text('KEY')
        copy = target / '.boxbuild.files' / '1' / 'key.asc'
        with carried_files(str(target), [CarriedFile(str(key), '1/key.asc')]):
            assert copy.read_text() == 'KEY'
            assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
        assert not (target / '.boxbuild.files').exists()
        assert (target / 'keep.txt').read_text() == 'mine'
        assert key.read_text() == 'KEY'

    def test_leftover_of_a_killed_run_is_replaced(self, tmp_path):
        stale = tmp_path / '.boxbuild.files' / '7'
        stale.mkdir(parents=True)
        (stale / 'old.asc').write_text('old')
        key = tmp_path / 'key.asc'
        key.write_text('KEY')
        with carried_files(str(tmp_path), [CarriedFile(str(key), '1/key.asc')]):
            assert os.listdir(tmp_path / '.boxbuild.files') == ['1']

    def test_leftover_removed_by_a_run_that_carries_nothing(self, tmp_path):
        """
        The credentials a killed run left do not wait for a run that
        carries files too
        """
        stale = tmp_path / '.boxbuild.files' / '1'
        stale.mkdir(parents=True)
        (stale / 'credentials').write_text('user:secret')
        with carried_files(str(tmp_path), []):
            assert not (tmp_path / '.boxbuild.files').exists()

    @pytest.fixture
    def elsewhere(self, tmp_path):
        """
        A directory of the host that a build's link points at
        """
        elsewhere = tmp_path / 'elsewhere'
        elsewhere.mkdir()
        (elsewhere / 'mine').write_text('mine')
        return elsewhere

    @pytest.mark.parametrize('leftover', ['dir link', 'link inside', 'file link'])
    def test_planted_link_is_removed_never_followed(self, tmp_path, elsewhere, leftover):
        """
        A build over virtiofs left links where the carried dir goes: the
        copies land in a fresh dir, nothing reaches what the links name
        """
        target = tmp_path / 'target'
        target.mkdir()
        carried = target / '.boxbuild.files'
        if leftover == 'dir link':
            carried.symlink_to(elsewhere)
        elif leftover == 'link inside':
            carried.mkdir()
            (carried / '1').symlink_to(elsewhere)
        else:
            carried.symlink_to(elsewhere / 'mine')
        key = tmp_path / 'key.asc'
        key.write_text('KEY')
        with carried_files(str(target), [CarriedFile(str(key), '1/key.asc')]):
            assert not carried.is_symlink() and not (carried / '1').is_symlink()
            assert (carried / '1' / 'key.asc').read_text() == 'KEY'
        assert sorted(os.listdir(elsewhere)) == ['mine']
        assert (elsewhere / 'mine').read_text() == 'mine'
        assert not os.path.lexists(carried)

    def test_link_planted_during_the_build_is_removed_as_a_link(self, tmp_path, elsewhere):
        key = tmp_path / 'key.asc'
        key.write_text('KEY')
        carried = tmp_path / '.boxbuild.files'
        with carried_files(str(tmp_path), [CarriedFile(str(key), '1/key.asc')]):
            shutil.rmtree(carried)
            carried.symlink_to(elsewhere)
        assert not os.path.lexists(carried)
        assert sorted(os.listdir(elsewhere)) == ['mine']

    def test_removed_on_error(self, tmp_path):
        key = tmp_path / 'key.asc'
        key.write_text('KEY')
        with pytest.raises(RuntimeError):
            with carried_files(str(tmp_path), [CarriedFile(str(key), '1/key.asc')]):
                raise RuntimeError('box failed')
        assert not (tmp_path / '.boxbuild.files').exists()

    def test_unreadable_file_is_one_line(self, tmp_path):
        with pytest.raises(KiwiBoxRequestError, match='cannot carry .*gone.asc into the box'):
            with carried_files(
                str(tmp_path), [CarriedFile(str(tmp_path / 'gone.asc'), '1/gone.asc')]
            ):
                pass
        assert not (tmp_path / '.boxbuild.files').exists()

    def test_nothing_to_carry_creates_nothing(self, tmp_path):
        with carried_files(str(tmp_path), []):
            pass
        assert os.listdir(tmp_path) == []


class TestRepositoryKeys:
    def test_local_keys_are_carried(self, build_args, tmp_path):
        key = tmp_path / 'repo.asc'
        key.write_text('KEY')
        value = (
            f'https://example.org/repo,rpm-md,alias,1,false,true,'
            f'{{file://{key};https://example.org/key.asc;dir:///no/such.asc}},,,false,baseurl'
        )
        changed, carried = carry_build_files(build_args, ['--add-repo', value])
        assert changed == [
            '--add-repo=https://example.org/repo,rpm-md,alias,1,false,true,'
            f'{{file://{CARRIED}/1/repo.asc;https://example.org/key.asc;dir:///no/such.asc}}'
            ',,,false,baseurl'
        ]
        assert carried == (CarriedFile(str(key), '1/repo.asc'),)

    def test_repository_without_keys_stays(self, build_args):
        value = 'https://example.org/repo,rpm-md,alias'
        assert carry_build_files(build_args, [f'--set-repo={value}']) == (
            [f'--set-repo={value}'], ()
        )
