import fcntl
import json
import os

import pytest

from kiwi_stackbuild_plugin import leftovers as leftovers_module, run_journal
from kiwi_stackbuild_plugin.exceptions import KiwiStackJournalError
from kiwi_stackbuild_plugin.leftovers import journaled, sweep_dead_runs, undo
from kiwi_stackbuild_plugin.run_journal import Leftovers, RunJournal, boot_id


def killed(journal: RunJournal) -> None:
    """
    What SIGKILL does to the run of the journal: its lock goes
    """
    os.close(journal.handle)


def test_a_journal_lists_what_is_not_undone(journal_dir, monkeypatch):
    monkeypatch.setenv('CONTAINERS_STORAGE_CONF', '/s.conf')
    journal = RunJournal.started(journal_dir)
    assert os.stat(journal_dir).st_mode & 0o777 == 0o700
    assert os.stat(journal.path).st_mode & 0o777 == 0o600
    for event, value in [
        ('mount', 'a'), ('mount', 'a'), ('mount', 'b'), ('unmount', 'a'),
        ('directory', '/d1'), ('directory', '/d2'), ('removed', '/d1'), ('unmount', 'x'),
    ]:
        journal.note(event, value)
    # a run killed while writing leaves half a line
    os.write(journal.handle, b'{"mount": "c')
    assert journal.leftovers() == Leftovers('/s.conf', True, ['a', 'b'], ['/d2'])
    journal.close()
    assert os.listdir(journal_dir) == []


def test_a_journal_of_another_boot(journal_dir, monkeypatch):
    journal = RunJournal.started(journal_dir)
    monkeypatch.setattr(run_journal, 'boot_id', lambda: 'the next boot')
    assert journal.leftovers().same_boot is False
    journal.close()


def test_boot_id():
    assert len(boot_id()) == 36


@pytest.mark.parametrize('mode', [0o777, 0o770, 0o722])
def test_a_journal_directory_others_can_write_is_refused(journal_dir, mode):
    os.makedirs(journal_dir)
    os.chmod(journal_dir, mode)
    message = (
        f"^'{journal_dir}' keeps the journals of stash and stackbuild runs but is not a "
        'directory that only root can write: remove it and run again$'
    )
    with pytest.raises(KiwiStackJournalError, match=message):
        RunJournal.started(journal_dir)
    with pytest.raises(KiwiStackJournalError, match=message):
        list(RunJournal.of_dead_runs(journal_dir))


def test_a_symlink_as_journal_directory_is_refused(journal_dir, tmp_path):
    (tmp_path / 'elsewhere').mkdir(mode=0o700)
    os.symlink(tmp_path / 'elsewhere', journal_dir)
    with pytest.raises(KiwiStackJournalError):
        RunJournal.started(journal_dir)


def test_only_journals_of_dead_runs_are_taken(journal_dir):
    assert list(RunJournal.of_dead_runs(journal_dir)) == []
    alive = RunJournal.started(journal_dir)
    dead = RunJournal.started(journal_dir)
    killed(dead)
    open(os.path.join(journal_dir, 'not-a-journal'), 'w').close()
    taken = list(RunJournal.of_dead_runs(journal_dir))
    assert [journal.path for journal in taken] == [dead.path]
    # taken means locked: no second sweep takes it meanwhile
    assert list(RunJournal.of_dead_runs(journal_dir)) == []
    taken[0].close()
    alive.close()


def test_a_new_journal_that_a_sweep_took_is_made_again(journal_dir, mocker):
    lock = fcntl.flock
    swept = []

    def sweep_first(handle, operation):
        if not swept:
            swept.append(os.readlink(f'/proc/self/fd/{handle}'))
            os.unlink(swept[0])
        lock(handle, operation)
    mocker.patch.object(run_journal.fcntl, 'flock', side_effect=sweep_first)
    journal = RunJournal.started(journal_dir)
    assert journal.path != swept[0] and os.path.exists(journal.path)
    journal.close()


def test_directory_is_journaled_and_removed(journal_dir, tmp_path):
    journal = RunJournal.started(journal_dir)
    with journal.directory('kiwi-test-', str(tmp_path)) as path:
        assert os.path.dirname(path) == str(tmp_path)
        assert os.path.basename(path).startswith('kiwi-test-')
        assert os.stat(path).st_mode & 0o777 == 0o700
        (tmp_path / path / 'file').write_text('')
        assert journal.leftovers().directories == [path]
    assert not os.path.exists(path)
    assert journal.leftovers().directories == []
    journal.close()


@pytest.fixture
def unmounts(mocker):
    return mocker.patch.object(leftovers_module, 'unmount_left')


def test_undo(journal_dir, tmp_path, unmounts, monkeypatch):
    storage = tmp_path / 'storage.conf'
    storage.write_text('')
    monkeypatch.setenv('CONTAINERS_STORAGE_CONF', str(storage))
    journal = RunJournal.started(journal_dir)
    journal.note('mount', 'a')
    (tmp_path / 'left' / 'inside').mkdir(parents=True)
    journal.note('directory', str(tmp_path / 'left'))
    undo(journal)
    unmounts.assert_called_once_with('a', str(storage))
    assert not (tmp_path / 'left').exists()
    assert os.listdir(journal_dir) == []


@pytest.mark.parametrize('storage_gone, same_boot', [(True, True), (False, False)])
def test_undo_without_the_mounts_that_ended(
    storage_gone, same_boot, journal_dir, tmp_path, unmounts, monkeypatch
):
    storage = tmp_path / 'storage.conf'
    if not storage_gone:
        storage.write_text('')
    monkeypatch.setenv('CONTAINERS_STORAGE_CONF', str(storage))
    journal = RunJournal.started(journal_dir)
    journal.note('mount', 'a')
    journal.note('directory', str(tmp_path / 'left'))
    (tmp_path / 'left').mkdir()
    if not same_boot:
        monkeypatch.setattr(run_journal, 'boot_id', lambda: 'the next boot')
    undo(journal)
    unmounts.assert_not_called()
    assert not (tmp_path / 'left').exists()


def test_journaled_undoes_after_an_error(journal_dir, tmp_path, unmounts):
    with pytest.raises(RuntimeError):
        with journaled() as journal:
            assert os.path.dirname(journal.path) == journal_dir
            journal.note('mount', 'a')
            raise RuntimeError()
    unmounts.assert_called_once_with('a', os.environ.get('CONTAINERS_STORAGE_CONF', ''))
    assert os.listdir(journal_dir) == []


def test_sweep_dead_runs(journal_dir, tmp_path, unmounts, caplog):
    alive = RunJournal.started(journal_dir)
    alive.note('mount', 'alive')
    dead = RunJournal.started(journal_dir)
    dead.note('mount', 'dead')
    (tmp_path / 'staging').mkdir()
    dead.note('directory', str(tmp_path / 'staging'))
    killed(dead)
    sweep_dead_runs()
    unmounts.assert_called_once_with('dead', os.environ.get('CONTAINERS_STORAGE_CONF', ''))
    assert not (tmp_path / 'staging').exists()
    assert os.listdir(journal_dir) == [os.path.basename(alive.path)]
    assert 'Cleaning up after a run that was killed: 1 image mounts, directories ' \
        f'{tmp_path}/staging' in caplog.text
    alive.close()


def test_journal_lines_are_json(journal_dir):
    journal = RunJournal.started(journal_dir)
    journal.note('directory', '/a "b"\n')
    with open(journal.path) as handle:
        lines = [json.loads(line) for line in handle]
    assert lines[1] == {'directory': '/a "b"\n'}
    journal.close()
