"""
What a docopt usage text says about its options.

kiwi's tasks and the plugins' tasks describe their command lines only
as docopt usage texts: this is the one place that reads options out
of such a text, for the checks of plugin arguments (usage) and of the
arguments forwarded to kiwi (kiwi_args) alike.
"""
import re
from typing import Dict, List


def usage_section(usage: str) -> str:
    """
    The 'usage:' part of a docopt text, which ends at the first empty
    line; the option descriptions after it repeat the names

    :param str usage: a task module's docstring
    :return: the text up to the first empty line
    """
    return usage.split('\n\n')[0]


def options_of_usage(usage: str) -> Dict[str, bool]:
    """
    The options named in the usage section of a docopt text, mapped to
    whether they take a value (written as --name=<value>)

    :param str usage: a task module's docstring
    :return: option name -> whether it takes a value
    """
    found: Dict[str, bool] = {}
    for name, value in re.findall(r'(?<![\w-])(--?[\w-]+)(=<)?', usage_section(usage)):
        found[name] = found.get(name, False) or bool(value)
    return found


def exclusive_groups_of_usage(usage: str) -> List[List[str]]:
    """
    The groups of options the usage lets a user pick only one of,
    written as [--a | --b | --c=<value>]

    :param str usage: a task module's docstring
    :return: the option names of each group, in the order written
    """
    groups = []
    for alternatives in re.findall(r'\[([^\[\]]*\|[^\[\]]*)\]', usage_section(usage)):
        groups.append([
            choice.strip().split('=', 1)[0] for choice in alternatives.split('|')
        ])
    return groups
