"""kiwi-ng system stackbuild: from the parsed command line to the image."""
import glob
import logging
import os
import sys
from typing import Any, Dict, List, Optional

from kiwi_stackbuild_plugin.exceptions import (
    KiwiStackbuildError, KiwiStashNotFoundError
)
from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.kiwi_call import KiwiCall
from kiwi_stackbuild_plugin.listing import stash_rows
from kiwi_stackbuild_plugin.options import require_root, tls_verify, typed_values
from kiwi_stackbuild_plugin.reference import StashReference, validate_registry
from kiwi_stackbuild_plugin.stack import Stacker, StackItem, check_target_free

log = logging.getLogger('kiwi')


def stash_names(command_args: Dict[str, Any], argv: List[str]) -> List[str]:
    """
    The stashes in the order and number the user typed them

    :param list argv: the command line; when it is not the one docopt
        parsed (a programmatic call), docopt's list is used
    """
    typed = typed_values(argv, '--stash')
    parsed = command_args.get('--stash') or []
    return typed if typed and set(typed) == set(parsed) else list(parsed)


def check_description(description: Optional[str]) -> None:
    if not description:
        return
    if not glob.glob(os.path.join(description, 'config.xml')) and \
            not glob.glob(os.path.join(description, '*.kiwi')):
        raise KiwiStackbuildError(
            f"'{description}' is not a kiwi description: it has no config.xml "
            "or *.kiwi file"
        )


def resolve(
    images: ContainerImages, references: List[StashReference], registry: Optional[str]
) -> List[StackItem]:
    """
    The image id of each stash, pulled first from a registry if given
    """
    items = []
    for reference in references:
        if registry:
            image = images.pull(reference.remote(registry))
        else:
            local = reference.local()
            if not images.exists(local):
                known = sorted({f'{row[0]}:{row[1]}' for row in stash_rows(images.stashes())})
                raise KiwiStashNotFoundError(
                    f"no stash '{reference}': the stashes are "
                    f"{', '.join(known) if known else '(none)'}; "
                    "see 'kiwi-ng system stash --list'"
                )
            image = images.inspect(local)['Id']
        items.append(StackItem(str(reference), image))
    return items


def run_stackbuild(command_args: Dict[str, Any], global_args: Dict[str, Any]) -> None:
    """
    Stack the stashes into <target-dir>/build/image-root and build

    Everything that can be checked is checked before anything is
    pulled or stacked.

    :param dict command_args: docopt's view of the stackbuild usage
    :param dict global_args: kiwi's global options, forwarded to kiwi
    """
    references = [
        StashReference.parse(name) for name in stash_names(command_args, sys.argv)
    ]
    registry = command_args.get('--from-registry')
    if registry:
        validate_registry(registry)
    description = command_args.get('--description')
    check_description(description)
    call = KiwiCall(
        command_args['--target-dir'], command_args.get('<kiwi_command_args>') or [],
        global_args, description or ''
    )
    check_target_free(call.root)
    require_root('system stackbuild')
    images = ContainerImages(
        command_args.get('--registry-auth-file'), tls_verify(command_args),
        global_args.get('--temp-dir')
    )
    Stacker(images).stack(resolve(images, references, registry), call.root)
    call.run()
