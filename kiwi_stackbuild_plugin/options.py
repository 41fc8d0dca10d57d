"""Command line helpers shared by the stash and stackbuild commands."""
import os
from typing import Any, Dict, List, Optional, Sequence

from kiwi_stackbuild_plugin.exceptions import KiwiStackPrivilegesError

PASSTHROUGH_SEPARATOR = '--'


def typed_values(tokens: Sequence[str], option: str) -> List[str]:
    """
    The values of a repeatable option exactly as the user typed them

    docopt-ng can repeat values of a '...' option; the order and
    count of stashes matter, so they come from the typed arguments.
    Arguments after '--' belong to kiwi and are not looked at.

    :param list tokens: the command line, e.g. sys.argv
    :param str option: e.g. '--stash'
    """
    values: List[str] = []
    take_next = False
    for token in tokens:
        if take_next:
            values.append(token)
            take_next = False
        elif token == PASSTHROUGH_SEPARATOR:
            break
        elif token == option:
            take_next = True
        elif token.startswith(option + '='):
            values.append(token[len(option) + 1:])
    return values


def tls_verify(command_args: Dict[str, Any]) -> Optional[bool]:
    """
    --tls-verify / --no-tls-verify, None if neither was given
    """
    if command_args.get('--tls-verify'):
        return True
    if command_args.get('--no-tls-verify'):
        return False
    return None


def require_root(command: str) -> None:
    """
    :raises KiwiStackPrivilegesError: unless running as root
    """
    if os.geteuid() != 0:
        raise KiwiStackPrivilegesError(
            f"'kiwi-ng {command}' needs root permissions to keep the owners and "
            "devices of a root tree: run it as root, e.g. with sudo"
        )
