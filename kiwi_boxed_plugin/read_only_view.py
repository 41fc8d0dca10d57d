"""
A program that sees one directory read-only: for a virtiofsd without a
read-only mode, which must still serve the description so that the box
cannot write into it (root in the box could remount its side writable,
so the host side decides).

unshare(1) gives the program a private mount namespace; there this
module bind mounts the directory onto itself, makes the bind read-only
and replaces itself with the program, which keeps the process id the
caller stops. The mounts live and die with the namespace: nothing to
undo, nothing left behind by a killed run, nothing seen by the host.

    unshare --mount --propagation private -- \\
        python3 .../read_only_view.py MOUNT DIR PROGRAM [ARG...]

It runs as a script, by its path, and uses the standard library only:
'python -m' would import from the current directory first.
"""
import os
import subprocess
import sys
from typing import List, Sequence


def read_only_view_argv(
    unshare: str, mount: str, directory: str, argv: Sequence[str]
) -> List[str]:
    """
    argv run with directory read-only

    :param str unshare: the path of unshare(1)
    :param str mount: the path of mount(8)
    """
    return [
        unshare, '--mount', '--propagation', 'private', '--',
        sys.executable, os.path.abspath(__file__), mount, directory
    ] + list(argv)


def view_mounts(mount: str, directory: str) -> List[List[str]]:
    """
    The bind of directory onto itself, then its remount read-only (the
    flag applies to a bind mount only by a remount)
    """
    return [
        [mount, '--bind', directory, directory],
        [mount, '-o', 'remount,bind,ro', directory],
    ]


def main(arguments: Sequence[str]) -> int:
    """
    Runs in the private namespace; what goes wrong, mount says on
    stderr, which is the helper's log
    """
    mount, directory, program = arguments[0], arguments[1], list(arguments[2:])
    for command in view_mounts(mount, directory):
        done = subprocess.run(command, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            return done.returncode
    os.execv(program[0], program)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
