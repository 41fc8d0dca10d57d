"""The kiwi run on a stacked root: rebuild it, or build a description on top."""
import logging
import os
import re
import subprocess
import sys
from typing import Any, Dict, List, Sequence

from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError
from kiwi_plugin_support.host import find_program
from kiwi_plugin_support.kiwi_args import KiwiCommandArgs

from kiwi_stackbuild_plugin.exceptions import KiwiStackKiwiError, KiwiStackPathError
from kiwi_stackbuild_plugin.interruption import dies_with_parent

log = logging.getLogger('kiwi')

# kiwi's global options that mean the same for the nested kiwi run,
# mapped to whether they take a value. Log options stay with the outer
# run: two writers on one log file would garble it.
FORWARDED_GLOBALS = {
    '--profile': True,
    '--setenv': True,
    '--shared-cache-dir': True,
    '--temp-dir': True,
    '--target-arch': True,
    '--type': True,
    '--debug': False,
    '--debug-run-scripts-in-screen': False,
    '--color-output': False,
    '--config': True,
    '--kiwi-file': True,
}


# kiwi joins some paths into bash command lines unquoted (the tbz
# builder does so with the target directory): a space breaks the build
# and '$(...)' would run. Only characters a shell takes literally pass.
_SHELL_LITERAL = re.compile(r'[A-Za-z0-9_@%+=:,./-]+')


def check_shell_literal(path: str, option: str) -> None:
    """
    :raises KiwiStackPathError: if kiwi could not use path safely
    """
    if not _SHELL_LITERAL.fullmatch(path):
        raise KiwiStackPathError(
            f"{option} '{path}' holds characters kiwi cannot handle (spaces, quotes, "
            "$ and the like): use a path of letters, digits and . _ - / only"
        )


def global_options(global_args: Dict[str, Any]) -> List[str]:
    """
    The global options of this kiwi run to hand to the nested one

    :param dict global_args: kiwi's parsed global options
    """
    options: List[str] = []
    for name, takes_value in FORWARDED_GLOBALS.items():
        value = global_args.get(name)
        if not value:
            continue
        if not takes_value:
            options.append(name)
            continue
        for item in value if isinstance(value, list) else [value]:
            options.append(f'{name}={item}')
    return options


# kiwi's apt bootstrap unpacks every essential package with
# 'dpkg-deb --fsys-tarfile | tar -x' into the root, which for a build on
# top is the stacked root. A merged-/usr Debian root (what debootstrap and
# the official images make) has /bin, /sbin, /lib and /lib64 as symlinks
# into /usr, and GNU tar replaces a symlink where the archive holds a
# directory by a real directory: the four become directories with second
# copies of the essential packages' files. The bootstrap itself passes;
# then apt installs usrmerge in the root, whose convert-usrmerge finds
# both /lib/x86_64-linux-gnu/libselinux.so.1 and
# /usr/lib/x86_64-linux-gnu/libselinux.so.1 and stops, and kiwi's system
# install fails. --keep-directory-symlink makes tar go through such
# links, as dpkg does. GNU tar reads options from TAR_OPTIONS, which
# reaches the tar of kiwi's 'bash -c' pipeline (kiwi sets PATH there,
# not the environment).
KEEP_DIRECTORY_LINKS = '--keep-directory-symlink'


def build_environment(environment: Dict[str, str]) -> Dict[str, str]:
    """
    The environment of a kiwi build on top of a stacked root: the
    given one, with tar keeping the directory symlinks of the root

    :param dict environment: e.g. os.environ; not changed
    """
    # appended as it is: tar splits TAR_OPTIONS itself, quotes included
    options = environment.get('TAR_OPTIONS', '').strip()
    if KEEP_DIRECTORY_LINKS not in options.split():
        options = f'{options} {KEEP_DIRECTORY_LINKS}'.strip()
    return dict(environment, TAR_OPTIONS=options)


def kiwi_executable() -> List[str]:
    """
    The kiwi-ng of the installation that runs this plugin
    """
    beside = os.path.join(os.path.dirname(sys.executable), 'kiwi-ng')
    if os.access(beside, os.X_OK):
        return [beside]
    try:
        return [find_program('kiwi-ng', 'kiwi', 'for the build of the stacked root')]
    except KiwiPluginToolMissingError:
        # kiwi is importable, as it runs this plugin: its entry point
        # serves where no kiwi-ng script was installed
        return [sys.executable, '-c', 'from kiwi.kiwi import main; main()']


class KiwiCall:
    """
    A validated kiwi command line for the stacked root

    :param str target_dir: where the image goes
    :param list passthrough: arguments the user gave after '--'
    :param dict global_args: kiwi's parsed global options
    :param str description: build this description on top, or None to
        rebuild the image from the description stored in the root
    """
    def __init__(
        self, target_dir: str, passthrough: Sequence[str],
        global_args: Dict[str, Any], description: str = ''
    ) -> None:
        self.target_dir = os.path.abspath(target_dir)
        self.root = os.path.join(self.target_dir, 'build', 'image-root')
        self.description = os.path.abspath(description) if description else ''
        check_shell_literal(self.target_dir, '--target-dir')
        if self.description:
            check_shell_literal(self.description, '--description')
            self.command = 'system build'
            supplied = [
                '--description', self.description,
                '--target-dir', self.target_dir, '--allow-existing-root'
            ]
        else:
            self.command = 'system create'
            supplied = ['--root', self.root, '--target-dir', self.target_dir]
        # raises before anything is pulled or stacked
        KiwiCommandArgs(self.command).parse(passthrough, supplied=supplied)
        self.argv = kiwi_executable() + global_options(global_args) \
            + self.command.split() + list(passthrough) + supplied

    def run(self) -> None:
        """
        Run kiwi with its output on this terminal

        :raises KiwiStackKiwiError: if kiwi fails
        """
        log.info(f'Running kiwi-ng {self.command} on {self.root}')
        # not kiwi's Command: Command.run and Command.call catch the
        # output in pipes, and kiwi's progress belongs on this terminal
        # as it comes, which a child that inherits stdout and stderr has.
        # kiwi unmounts what it mounted in the root on Ctrl-C, not on
        # SIGTERM
        environment = build_environment(dict(os.environ)) if self.description else None
        code = subprocess.run(
            dies_with_parent(self.argv, 'INT'), env=environment
        ).returncode
        if code != 0:
            raise KiwiStackKiwiError(
                f"'kiwi-ng {self.command}' failed with exit code {code} (its output is "
                f"above); the stacked root stays in {self.root}"
            )
