"""Command line helpers shared by the stash and stackbuild commands."""
import os
from typing import Any, Dict, Optional

from kiwi_stackbuild_plugin.exceptions import KiwiStackPrivilegesError


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
