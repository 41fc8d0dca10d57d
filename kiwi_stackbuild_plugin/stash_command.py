"""kiwi-ng system stash: from the parsed command line to the stash."""
from typing import Any, Dict

from kiwi_stackbuild_plugin.exceptions import KiwiStashError


def run_stash(command_args: Dict[str, Any], global_args: Dict[str, Any]) -> None:
    raise KiwiStashError('stash is not implemented yet')
