"""A boxbuild from the parsed command line to the build's result."""
from typing import Any, Dict

from kiwi_boxed_plugin.exceptions import KiwiBoxbuildError
from kiwi_plugin_support.kiwi_args import KiwiCommandArgs


def run_boxbuild(command_args: Dict[str, Any], global_args: Dict[str, Any]) -> None:
    KiwiCommandArgs('system build').parse(
        command_args['<kiwi_build_command_args>']
    )
    raise KiwiBoxbuildError('running a box is not implemented yet')
