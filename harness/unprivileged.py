"""
The unprivileged user of the suites: a throw-away account, and a
kiwi-ng with this project that such a user can run.

The test venv may live where only root may enter (/root, or tox's
.tox, which tox creates with mode 0700), so a venv of the system python
is kept in the test store, with kiwi and a fresh (not editable)
install of this checkout. Every suite that runs kiwi-ng as another
user takes it from here.
"""
import os
import pwd
import shutil
import subprocess
from contextlib import contextmanager
from typing import Iterator

from harness.paths import KIWI_NG, REPOSITORY, TEST_STORE

STORE = os.path.join(TEST_STORE, 'unprivileged')


@contextmanager
def throwaway_user(name: str) -> Iterator[pwd.struct_passwd]:
    """
    A user with a home and nothing else, created if missing and
    removed with its home at the end
    """
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(['useradd', '--create-home', '--shell', '/bin/sh', name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(['userdel', '--remove', name], check=False)


def runs_as(user: str, argv: list) -> bool:
    try:
        return subprocess.run(
            argv, user=user, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd='/'
        ).returncode == 0
    except PermissionError:
        return False


def kiwi_ng_for(user: str) -> str:
    """
    The test's kiwi-ng if the user can run it, else one of a venv in
    the test store with this checkout installed afresh
    """
    if runs_as(user, [KIWI_NG, '--version']):
        return KIWI_NG
    venv = os.path.join(STORE, 'venv')
    pip = os.path.join(venv, 'bin', 'pip')
    if not os.path.exists(pip):
        os.makedirs(STORE, exist_ok=True)
        os.chmod(STORE, 0o755)
        subprocess.run(['/usr/bin/python3', '-m', 'venv', venv], check=True)
        subprocess.run([pip, 'install', '--quiet', 'kiwi>=10,<11'], check=True)
    # installed from a copy: building in the checkout would leave build/ there
    source = os.path.join(STORE, 'source')
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(REPOSITORY, source, ignore=shutil.ignore_patterns(
        '.git', '.tox', '.venv', 'test', 'boxes', 'harness', 'bench', 'build', 'dist',
        '*.egg-info', '__pycache__'
    ))
    subprocess.run(
        [pip, 'install', '--quiet', '--no-deps', '--force-reinstall', source], check=True
    )
    shutil.rmtree(source)
    kiwi_ng = os.path.join(venv, 'bin', 'kiwi-ng')
    assert runs_as(user, [kiwi_ng, '--version']), f'{kiwi_ng} does not run as {user}'
    return kiwi_ng
