"""Bad input: one clear line, exit status 1, nothing of the user's lost."""
import os
import pwd
import subprocess

import pytest

from harness.podman import podman_json
from harness.stackbuild_kiwi import KIWI, RUNTIME_CONFIG, kiwi, write_description
from harness.unprivileged import kiwi_ng_for
from kiwi_plugin_support.host import free_port

pytestmark = pytest.mark.integration


def fails(*args: str, user: str = '') -> str:
    """
    Run kiwi-ng, expect exit status 1 without a traceback; return the
    error line

    :param str user: run as this user, with a kiwi-ng the user can run
    """
    prefix = []
    if user:
        account = pwd.getpwnam(user)
        prefix = ['setpriv', f'--reuid={account.pw_uid}', f'--regid={account.pw_gid}',
                  '--clear-groups']
    command = [kiwi_ng_for(user)] if user else KIWI
    result = subprocess.run(
        prefix + command + ['--config', RUNTIME_CONFIG] + list(args),
        capture_output=True, text=True, cwd='/'
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert 'Traceback' not in output, output
    errors = [line for line in output.splitlines() if 'ERROR' in line]
    assert len(errors) == 1, output
    return errors[0]


def image_ids() -> set:
    return {image['Id'] for image in podman_json('images', '--all', '--format', 'json')}


def test_root_missing(containers, tmp_path):
    message = fails('system', 'stash', '--root', str(tmp_path / 'nothing'))
    assert 'is not a directory' in message and '--root' in message


def test_root_without_description(containers, tmp_path):
    message = fails('system', 'stash', '--root', str(tmp_path))
    assert 'has no image/config.xml' in message


def test_image_name_that_is_no_image_reference(containers, small_root, mirror):
    write_description(os.path.join(small_root, 'image', 'config.xml'), mirror, name='My Image')
    before = image_ids()
    message = fails('system', 'stash', '--root', small_root)
    assert "'My Image' is not a valid stash name" in message
    assert '--container-name my-image' in message
    assert image_ids() == before


def test_container_name_with_upper_case(containers, small_root):
    message = fails('system', 'stash', '--root', small_root, '--container-name', 'Upper')
    assert 'upper case' in message


def test_invalid_tag(containers, small_root):
    message = fails('system', 'stash', '--root', small_root, '--tag', 'bad/tag')
    assert "'bad/tag' is not a valid tag" in message


def test_missing_auth_file(containers, small_root, tmp_path):
    message = fails('system', 'stash', '--root', small_root, '--push', 'localhost:5000/x',
                    '--registry-auth-file', str(tmp_path / 'auth.json'))
    assert 'auth file' in message and 'podman login' in message


def test_stash_that_does_not_exist(containers, small_root, tmp_path):
    kiwi('system', 'stash', '--root', small_root, '--container-name', 'bad-known')
    message = fails('system', 'stackbuild', '--stash', 'bad-unknown',
                    '--target-dir', str(tmp_path / 'target'))
    assert "no stash 'bad-unknown:latest'" in message and 'bad-known:latest' in message
    assert not os.path.exists(tmp_path / 'target' / 'build' / 'image-root')


def test_existing_image_root_is_kept(containers, small_root, tmp_path):
    kiwi('system', 'stash', '--root', small_root, '--container-name', 'bad-target')
    keep = tmp_path / 'target' / 'build' / 'image-root' / 'precious'
    keep.parent.mkdir(parents=True)
    keep.write_text('mine\n')
    message = fails('system', 'stackbuild', '--stash', 'bad-target',
                    '--target-dir', str(tmp_path / 'target'))
    assert 'exists and is kept' in message
    assert keep.read_text() == 'mine\n'
    assert os.listdir(tmp_path / 'target' / 'build') == ['image-root']


def test_unreachable_registry(containers, tmp_path):
    message = fails('system', 'stackbuild', '--stash', 'anything',
                    '--from-registry', f'127.0.0.1:{free_port()}/stashes',
                    '--target-dir', str(tmp_path / 'target'))
    assert 'cannot pull' in message
    assert not os.path.exists(tmp_path / 'target' / 'build' / 'image-root')


def test_pull_of_a_missing_stash(containers, registry, tmp_path):
    message = fails('system', 'stackbuild', '--stash', 'not-pushed',
                    '--from-registry', f'{registry}/stashes',
                    '--target-dir', str(tmp_path / 'target'))
    assert f'cannot pull {registry}/stashes/not-pushed:latest' in message


def test_kiwi_arguments_are_checked_first(containers, tmp_path):
    message = fails('system', 'stackbuild', '--stash', 'whatever',
                    '--target-dir', str(tmp_path / 'target'), '--', '--bogus')
    assert "'--bogus' is not an option of 'kiwi-ng system create'" in message


def test_not_root(containers, small_root, tmp_path):
    os.chmod(tmp_path, 0o755)
    message = fails('system', 'stackbuild', '--stash', 'whatever',
                    '--target-dir', str(tmp_path / 'target'), user='nobody')
    assert 'needs root' in message
    message = fails('system', 'stash', '--root', small_root, user='nobody')
    assert 'needs root' in message


def test_file_over_directory_is_a_conflict(containers, tmp_path, mirror):
    for name, make in (('bad-lower', 'dir'), ('bad-upper', 'file')):
        root = tmp_path / name
        write_description(str(root / 'image' / 'config.xml'), mirror, name=name)
        if make == 'dir':
            (root / 'thing').mkdir()
            (root / 'thing' / 'inside').write_text('x\n')
        else:
            (root / 'thing').write_text('a file\n')
        kiwi('system', 'stash', '--root', str(root))
    target = tmp_path / 'target'
    message = fails('system', 'stackbuild', '--stash', 'bad-lower', '--stash', 'bad-upper',
                    '--target-dir', str(target))
    assert '/thing (not a directory in bad-upper:latest)' in message
    # no half root: neither the root nor its staging directory is left
    assert os.listdir(target / 'build') == []


def test_target_dir_that_kiwi_cannot_handle(containers, tmp_path):
    message = fails('system', 'stackbuild', '--stash', 'whatever',
                    '--target-dir', str(tmp_path / 'a $(touch x) b'))
    assert 'holds characters kiwi cannot handle' in message
    assert os.listdir(tmp_path) == []
