"""kiwi-ng system stackbuild: from the parsed command line to the image."""
import logging
from typing import Any, Dict, List, Optional

from kiwi_plugin_support.description import description_problem

from kiwi_stackbuild_plugin.exceptions import (
    KiwiStackDescriptionError, KiwiStashNameError, KiwiStashNotFoundError
)
from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.interruption import stopped_cleanly
from kiwi_stackbuild_plugin.kiwi_call import KiwiCall
from kiwi_stackbuild_plugin.leftovers import sweep_dead_runs
from kiwi_stackbuild_plugin.listing import stash_rows
from kiwi_stackbuild_plugin.options import require_root, tls_verify
from kiwi_stackbuild_plugin.reference import (
    RegistryLocation, StashReference, validate_registry
)
from kiwi_stackbuild_plugin.stack import Stacker, StackItem, check_target_free

log = logging.getLogger('kiwi')


def check_description(description: str, kiwi_file: str) -> None:
    """
    :param str kiwi_file: the --kiwi-file given to kiwi, '' for none
    :raises KiwiStackDescriptionError: unless description is a kiwi
        description this user can read
    """
    problem = description_problem(description, kiwi_file)
    if problem:
        raise KiwiStackDescriptionError(
            f'{problem}; --description takes the directory of a kiwi image description'
        )


def resolve(
    images: ContainerImages, references: List[StashReference],
    location: Optional[RegistryLocation]
) -> List[StackItem]:
    """
    The image id of each stash, pulled first from a registry if given

    :param str location: a registry location validate_registry returned,
        None to take the stashes from the local storage, where podman
        resolves their names
    """
    items = []
    for reference in references:
        if location:
            image = images.pull(reference.remote(location))
        else:
            local = reference.lookup()
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

    Everything that can be checked is checked, once, before anything
    is pulled or stacked.

    :param dict command_args: docopt's view of the stackbuild usage;
        its '--stash' list is what the user typed, in order (see the
        usage module)
    :param dict global_args: kiwi's global options, forwarded to kiwi
    """
    references = [StashReference.parse(name) for name in command_args['--stash']]
    registry = command_args.get('--from-registry')
    location = validate_registry(registry) if registry else None
    for reference in references:
        if location and reference.domain:
            raise KiwiStashNameError(
                f"--stash {reference} names a registry and --from-registry names "
                f"another: give the stash as {reference.name}{reference.suffix} with "
                "--from-registry, or drop --from-registry to use the local image"
            )
    description = command_args.get('--description') or ''
    if description:
        check_description(description, global_args.get('--kiwi-file') or '')
    call = KiwiCall(
        command_args['--target-dir'], command_args.get('<kiwi_command_args>') or [],
        global_args, description
    )
    check_target_free(call.root)
    require_root('system stackbuild')
    images = ContainerImages(
        command_args.get('--registry-auth-file'), tls_verify(command_args),
        global_args.get('--temp-dir')
    )
    with stopped_cleanly('system stackbuild'):
        sweep_dead_runs()
        Stacker(images).stack(resolve(images, references, location), call.root)
        call.run()
