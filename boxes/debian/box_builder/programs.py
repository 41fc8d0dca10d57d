"""
Running the external programs of the build.
"""
import logging
import subprocess
from typing import Any, Sequence

from box_builder.errors import BoxBuildError

log = logging.getLogger('build-box')


def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """
    Run a program; a failure ends the build with its last words

    :param list argv: the program and its arguments, never a shell line
    :param kwargs: passed on to subprocess.run (env, say)
    :return: the finished process, its output in stdout
    :raises BoxBuildError: if the program is missing or fails
    """
    log.debug('run: %s', ' '.join(argv))
    try:
        done = subprocess.run(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs
        )
    except FileNotFoundError:
        raise BoxBuildError(f'{argv[0]} is not installed: see .ci/apt-packages/box.txt')
    if done.returncode != 0:
        output = done.stdout.decode('utf-8', 'replace').strip().splitlines()
        raise BoxBuildError(
            f"{argv[0]} failed with exit code {done.returncode}: "
            + (' | '.join(output[-3:]) if output else '(no output)')
        )
    return done
