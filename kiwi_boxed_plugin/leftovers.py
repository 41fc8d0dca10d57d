"""
What a boxbuild that was killed leaves behind, and its sweep by a later
run.

The helpers of a run die with it (a parent death signal), but a run
killed by SIGKILL removes nothing: its private runtime dir (sockets,
the sshfs key pair, the container job) stays in the temp dir and its
box container keeps running. Both carry the run's identity in their
name or label, so any later run can tell that their maker is gone and
remove them. (The box cache sweeps its own temp dirs, see cache.py;
the carried files of a target dir are replaced by the next run into
it, see host_files.py.)
"""
import logging
import os
import re
import shutil
import stat
import tempfile
from contextlib import contextmanager
from typing import Iterator, Optional

from kiwi_plugin_support.lifetime import run_alive, run_identity

log = logging.getLogger('kiwi')

# Names of what a run makes: kiwi-boxbuild-<pid>.<start time>-<random>
RUN_PREFIX = 'kiwi-boxbuild-'
RUN_NAME = re.compile(re.escape(RUN_PREFIX) + r'(\d+\.\d+)-\w+')


def run_name_prefix() -> str:
    """
    The start of the names of this run's dirs and containers
    """
    return f'{RUN_PREFIX}{run_identity()}-'


def maker_of(name: str) -> Optional[str]:
    """
    The identity of the run that made name, None for another name
    """
    match = RUN_NAME.fullmatch(name)
    return match.group(1) if match else None


def made_by_gone_run(name: str) -> bool:
    """
    Whether name is one a run made that runs no more
    """
    maker = maker_of(name)
    return maker is not None and not run_alive(maker)


@contextmanager
def run_dir() -> Iterator[str]:
    """
    A directory of this run only, in the system temp dir and named by
    the run, removed at the end; what killed runs left there is swept
    first
    """
    sweep_runtime_dirs(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix=run_name_prefix()) as directory:
        yield directory


def sweep_runtime_dirs(temp_root: str) -> None:
    """
    Remove the runtime dirs in temp_root of this user's runs that are
    gone; a name of another kind or owner, or anything but a directory,
    is left alone
    """
    try:
        names = os.listdir(temp_root)
    except OSError:
        return
    for name in names:
        if not made_by_gone_run(name):
            continue
        path = os.path.join(temp_root, name)
        try:
            status = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.geteuid():
            continue
        log.info(f'removing {path}, left by a boxbuild that was killed')
        shutil.rmtree(path, ignore_errors=True)
