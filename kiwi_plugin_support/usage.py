"""
Friendly command line errors for plugin tasks.

kiwi parses a task's docopt usage before the task class exists
(kiwi.app.App builds a plain CliTask first), and it prints the whole
usage text with exit status 1 for --help as well as for bad input.
We want ``--help`` to exit 0 and bad input to end in one line that
says what is wrong and what to do. The only hook kiwi leaves for that
is docopt's ``extras`` function, which kiwi itself replaces: docopt
calls it with the parsed argument vector before it matches the usage
pattern. We wrap it once, and act only for the usages registered here;
every other kiwi command keeps kiwi's behaviour.
"""
import logging
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import docopt

from kiwi_plugin_support.kiwi_args import KiwiCommandArgs
from kiwi_plugin_support.tokens import (
    PASSTHROUGH_SEPARATOR, TokenKind, option_name, walk_tokens
)
from kiwi_plugin_support.usage_text import exclusive_groups_of_usage, options_of_usage

__all__ = [
    'CommandUsage', 'PASSTHROUGH_SEPARATOR', 'exclusive_groups_of_usage',
    'options_of_usage', 'register'
]

log = logging.getLogger('kiwi')


@dataclass(frozen=True)
class CommandUsage:
    """
    A registered task usage

    :param str usage: the task module's docstring
    :param str command: the command words, e.g. 'system boxbuild'
    :param str passthrough_to: the kiwi command that receives the
        arguments after '--', e.g. 'system build', or '' if none
    """
    usage: str
    command: str
    passthrough_to: str = ''

    @property
    def options(self) -> Dict[str, bool]:
        """
        Options of the command, mapped to whether they take a value
        """
        return options_of_usage(self.usage)

    def see_help(self) -> str:
        """
        The hint that ends most error lines
        """
        return f"see 'kiwi-ng {self.command} --help'"

    def diagnose(self, tokens: List[str]) -> Optional[str]:
        """
        Find what is wrong with the given command arguments

        :param list tokens: the arguments after the command words
        :return: one line describing the problem, None if they parse
        """
        passthrough = False
        strays: List[str] = []
        for piece in walk_tokens(tokens, self.options):
            if piece.kind is TokenKind.SEPARATOR:
                # what follows is kiwi's: the task checks it with
                # kiwi_args when it runs
                passthrough = True
                break
            if piece.kind is TokenKind.WORD:
                strays.extend(piece.typed)
                continue
            if piece.kind is TokenKind.OPTION:
                continue
            # an unknown option: maybe one meant for kiwi
            name = piece.name
            if self.passthrough_to and _is_kiwi_option(self.passthrough_to, name):
                return (
                    f"'{name}' is an option of 'kiwi-ng {self.passthrough_to}':"
                    f" put it after '--', e.g. 'kiwi-ng {self.command}"
                    f" ... -- {name} ...'"
                )
            return (
                f"unknown option '{name}' for 'kiwi-ng {self.command}': "
                f"{self.see_help()}"
            )
        if _parses(self, tokens):
            return None
        if self.passthrough_to and not passthrough:
            if _parses(self, tokens + [PASSTHROUGH_SEPARATOR, '--placeholder']):
                return (
                    f"missing '-- <arguments of kiwi-ng {self.passthrough_to}>'"
                    f" after the options of 'kiwi-ng {self.command}': "
                    f"{self.see_help()}"
                )
            if strays:
                return (
                    f"unexpected argument '{strays[0]}': arguments for "
                    f"'kiwi-ng {self.passthrough_to}' go after '--'"
                )
        given = {option_name(token) for token in tokens}
        for group in exclusive_groups_of_usage(self.usage):
            clash = [name for name in group if name in given]
            if len(clash) > 1:
                return (
                    f"{' and '.join(clash)} exclude each other: choose one"
                )
        return (
            f"invalid arguments for 'kiwi-ng {self.command}': {self.see_help()}"
        )


_registered: Dict[str, CommandUsage] = {}
_checking = False


def register(usage: str, command: str, passthrough_to: str = '') -> None:
    """
    Register a task usage for friendly help and errors

    :param str usage: the task module's docstring
    :param str command: the command words, e.g. 'system stash'
    :param str passthrough_to: kiwi command receiving args after '--'
    """
    _registered[usage] = CommandUsage(usage, command, passthrough_to)
    _install_hook()


def _install_hook() -> None:
    current = docopt.extras
    if getattr(current, 'kiwi_plugin_hook', False):
        return

    def extras(help_: Any, version: Any, options: Any, doc: str) -> None:
        command = _registered.get(doc)
        if command is None or _checking:
            return current(help_, version, options, doc)
        tokens = _tokens_of(options)
        if help_ and _help_requested(tokens):
            print(doc.strip('\n'))
            sys.exit(0)
        # docopt's first two tokens are the service and the command
        problem = command.diagnose(tokens[2:])
        if problem:
            log.error(problem)
            sys.exit(1)
    extras.kiwi_plugin_hook = True  # type: ignore[attr-defined]
    docopt.extras = extras  # type: ignore[assignment]


def _help_requested(tokens: List[str]) -> bool:
    """
    Whether the command's own options ask for help

    :param list tokens: the arguments, as _tokens_of gives them
    :return: True for '-h' or '--help' before '--'
    """
    # Each token counts alone (empty map): a user who typed '--help'
    # wants the help, even where a value would go ('--box --help')
    for piece in walk_tokens(tokens, {}):
        if piece.kind is TokenKind.SEPARATOR:
            # a '--help' after it is meant for kiwi
            return False
        if piece.name in ('-h', '--help') and piece.value is None:
            return True
    return False


def _tokens_of(parsed: List[Any]) -> List[str]:
    """
    Turn docopt's parsed argument vector back into argument strings

    Both docopt 0.6.2 (kiwi 9) and docopt-ng (kiwi 10) hand extras a
    list of Option and Argument objects in command line order.
    """
    tokens: List[str] = []
    for item in parsed:
        if isinstance(item, docopt.Option):
            tokens.append(str(item.name))
            if item.argcount and isinstance(item.value, str):
                tokens.append(item.value)
        else:
            tokens.append(str(item.value))
    return tokens


def _parses(command: CommandUsage, tokens: List[str]) -> bool:
    global _checking
    service, name = command.command.split()
    _checking = True
    try:
        docopt.docopt(command.usage, [service, name] + tokens, False)
        return True
    except docopt.DocoptExit:
        return False
    finally:
        _checking = False


def _is_kiwi_option(kiwi_command: str, name: str) -> bool:
    """
    Whether name is an option of the kiwi command, e.g. 'system build'
    """
    return name in KiwiCommandArgs(kiwi_command).option_names
