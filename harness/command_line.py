"""
kiwi-ng command lines parsed the way kiwi parses them: docopt on kiwi's
global usage (options first), then on the command's own usage text.

Tests build the parsed arguments of a task with these, never as
hand-written copies of docopt's output, so that a changed usage text
shows in the tests.
"""
import importlib
from typing import Any, Dict, List, Sequence, Tuple

import docopt
import kiwi.cli

Parsed = Dict[str, Any]

TASK_MODULES = {
    ('system', 'boxbuild'): 'kiwi_boxed_plugin.tasks.system_boxbuild',
    ('system', 'stash'): 'kiwi_stackbuild_plugin.tasks.system_stash',
    ('system', 'stackbuild'): 'kiwi_stackbuild_plugin.tasks.system_stackbuild',
}
# the words of a command line that hold a command's own arguments
COMMAND_ARGS = '<args>'
BUILD_ARGS = '<kiwi_build_command_args>'


def parse_kiwi_call(argv: Sequence[str]) -> Tuple[Parsed, Parsed]:
    """
    A kiwi-ng call as kiwi parses it

    :param list argv: the words after 'kiwi-ng', e.g.
        ['--type', 'tbz', 'system', 'boxbuild', '--box', 'debian', '--', ...]
    :return: kiwi's global arguments and the command's arguments
    """
    # positional: docopt 0.6.2 (kiwi 9) and docopt-ng (kiwi 10) name
    # the help argument differently; options_first as kiwi's Cli does
    everything = docopt.docopt(kiwi.cli.__doc__, list(argv), True, None, True)
    service = next(name for name in ('system', 'image', 'result') if everything.get(name))
    command = everything['<command>']
    usage = importlib.import_module(TASK_MODULES[(service, command)]).__doc__
    command_args = docopt.docopt(usage, [service, command] + list(everything[COMMAND_ARGS]), True)
    global_args = {
        name: value for name, value in everything.items()
        if name not in ('<command>', COMMAND_ARGS)
    }
    return global_args, command_args


def option_words(options: Dict[str, Any]) -> List[str]:
    """
    Options as typed: True is a flag, a list repeats the option, None
    and False leave it out
    """
    words: List[str] = []
    for name, value in options.items():
        if value is True:
            words.append(name)
        elif isinstance(value, (list, tuple)):
            words += [f'{name}={item}' for item in value]
        elif value not in (None, False):
            words.append(f'{name}={value}')
    return words


def command_args(**given: Any) -> Parsed:
    """
    docopt's arguments of 'kiwi-ng system boxbuild' with the given
    options; --box defaults to debian, the kiwi build arguments come as
    '<kiwi_build_command_args>'
    """
    options = {'--box': 'debian', **given}
    # the usage wants kiwi's build arguments: a neutral pair by default
    build = list(options.pop(BUILD_ARGS, ['--description=/d', '--target-dir=/t']))
    return parse_kiwi_call(['system', 'boxbuild'] + option_words(options) + ['--'] + build)[1]


def global_args(**given: Any) -> Parsed:
    """
    kiwi's global arguments with the given options, as a task gets them
    """
    return parse_kiwi_call(option_words(given) + ['system', 'boxbuild', '--list-boxes'])[0]
