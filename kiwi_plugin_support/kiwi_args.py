"""
Arguments forwarded to a kiwi command, checked against kiwi's own usage.

The plugins hand the arguments after '--' to 'kiwi-ng system build' or
'kiwi-ng system create', in a box or on the host. Checking them against
the usage of the installed kiwi up front turns a typo into one clear
line instead of a failure minutes into a build.
"""
import importlib
from functools import cached_property
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import docopt

from kiwi_plugin_support.exceptions import KiwiPluginArgumentError
from kiwi_plugin_support.tokens import TokenKind, walk_tokens
from kiwi_plugin_support.usage_text import options_of_usage


class KiwiCommandArgs:
    """
    The usage of one kiwi command, e.g. 'system build'

    :param str command: service and command, e.g. 'system create'
    """
    def __init__(self, command: str) -> None:
        self.command = command
        self.service, self.name = command.split()
        module = importlib.import_module(
            f'kiwi.tasks.{self.service}_{self.name}'
        )
        self.usage: str = module.__doc__ or ''

    @cached_property
    def options(self) -> Dict[str, bool]:
        """
        Options of the command, mapped to whether they take a value
        """
        return options_of_usage(self.usage)

    @property
    def option_names(self) -> List[str]:
        """
        Names of the options of the command, sorted
        """
        return sorted(self.options)

    def parse(
        self, tokens: Sequence[str], supplied: Sequence[str] = ()
    ) -> Dict[str, object]:
        """
        Check the arguments and return docopt's view of them

        :param list tokens: arguments as the user typed them
        :param list supplied: arguments the plugin adds itself,
            e.g. ['--root', '/path']; the user may not give these
        :raises KiwiPluginArgumentError: with one line saying what
            is wrong
        :return: docopt's dictionary of the combined arguments
        """
        reserved = [token for token in supplied if token.startswith('--')]
        # No option takes a value in this walk (empty map): every token
        # shaped like an option is checked, also one where a value would
        # go, so that '--target-dir --bogus' names the typo instead of
        # forwarding '--bogus' as a directory. '--' is checked too: kiwi
        # itself has no separator.
        for piece in walk_tokens(tokens, {}):
            if piece.kind is TokenKind.WORD:
                continue
            if piece.name in reserved:
                raise KiwiPluginArgumentError(
                    f"'{piece.name}' is set by the plugin for 'kiwi-ng "
                    f"{self.command}': remove it from the arguments after '--'"
                )
            if piece.name not in self.options:
                raise KiwiPluginArgumentError(
                    f"'{piece.name}' is not an option of 'kiwi-ng {self.command}': "
                    f"see 'kiwi-ng {self.command} --help'"
                )
        argv = [self.service, self.name] + list(tokens) + list(supplied)
        try:
            # help=False: a '--help' meant for kiwi must not make the
            # check print kiwi's usage and exit
            return docopt.docopt(self.usage, argv, False)
        except docopt.DocoptExit:
            raise KiwiPluginArgumentError(
                f"invalid arguments for 'kiwi-ng {self.command}': "
                f"{' '.join(tokens) or '(none)'}: "
                f"see 'kiwi-ng {self.command} --help'"
            )

    def values_of(self, tokens: Sequence[str], name: str) -> List[str]:
        """
        The values given to one option, in the order typed

        :param list tokens: arguments as the user typed them
        :param str name: an option taking a value, e.g. '--add-repo'
        """
        return [
            value for _, value, _ in self.option_pieces(tokens, [name])
            if value is not None
        ]

    def map_values(
        self, tokens: Sequence[str], names: Sequence[str],
        change: Callable[[str, str], str]
    ) -> List[str]:
        """
        The arguments with the values of the given options changed

        Both spellings, '--name=value' and '--name value', come out as
        '--name=value'; everything else stays as typed.

        :param list tokens: arguments as the user typed them
        :param list names: options taking a value, e.g. ['--signing-key']
        :param callable change: (name, value) -> new value
        """
        changed: List[str] = []
        for name, value, typed in self.option_pieces(tokens, names):
            if name and value is not None and self.options.get(name):
                changed.append(f'{name}={change(name, value)}')
            else:
                changed += typed
        return changed

    def without(self, tokens: Sequence[str], names: Sequence[str]) -> List[str]:
        """
        Drop the given options and their values from the arguments

        Works on the tokens as typed, so repeated options keep their
        order and count (docopt-ng can repeat values of '...' options).

        :param list tokens: arguments as the user typed them
        :param list names: options to drop, e.g. ['--target-dir']
        """
        return [
            token for name, _, typed in self.option_pieces(tokens, names)
            if not name for token in typed
        ]

    def option_pieces(
        self, tokens: Sequence[str], names: Sequence[str]
    ) -> Iterator[Tuple[str, Optional[str], List[str]]]:
        """
        The arguments as typed, in pieces of (name, value, typed tokens):
        an option of names with its value, given as '--name=value' or,
        if it takes one, as '--name value'; an option of names without a
        value (None); every other token alone, with name ''

        :param list tokens: arguments as the user typed them
        :param list names: the long options to find, e.g. ['--add-repo']
        :return: (name, value, typed tokens) per piece, in typed order
        """
        # Only the options asked for are in the walk's map: every other
        # token, an option or its value, comes out alone and as typed,
        # so the callers pass it on unchanged
        wanted = {name: self.options.get(name, False) for name in names}
        for piece in walk_tokens(tokens, wanted):
            if piece.kind is TokenKind.OPTION:
                yield piece.name, piece.value, list(piece.typed)
            else:
                yield '', None, list(piece.typed)
