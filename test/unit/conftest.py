"""
Fixtures of every unit suite.

Parsed command lines come from docopt and the real usage texts, the way
kiwi-ng hands them to a task (see harness.command_line): never
hand-written copies of docopt's output, which would hide a usage text
that changed.
"""
from typing import Callable

import pytest

from harness.command_line import Parsed, parse_kiwi_call


@pytest.fixture
def kiwi_call() -> Callable[..., tuple[Parsed, Parsed]]:
    """
    parse a kiwi-ng command line: kiwi_call('system', 'boxbuild', ...)
    returns (global_args, command_args)
    """
    return lambda *argv: parse_kiwi_call(argv)
