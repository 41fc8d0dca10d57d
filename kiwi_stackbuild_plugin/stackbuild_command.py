"""kiwi-ng system stackbuild: from the parsed command line to the image."""
from typing import Any, Dict

from kiwi_stackbuild_plugin.exceptions import KiwiStackbuildError


def run_stackbuild(command_args: Dict[str, Any], global_args: Dict[str, Any]) -> None:
    raise KiwiStackbuildError('stackbuild is not implemented yet')
