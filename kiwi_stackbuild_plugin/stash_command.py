"""kiwi-ng system stash: from the parsed command line to the stash."""
import logging
from typing import Any, Dict

from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.interruption import stopped_cleanly
from kiwi_stackbuild_plugin.leftovers import sweep_dead_runs
from kiwi_stackbuild_plugin.listing import format_table, stash_rows
from kiwi_stackbuild_plugin.options import require_root, tls_verify
from kiwi_stackbuild_plugin.reference import validate_registry
from kiwi_stackbuild_plugin.stash import Stash

log = logging.getLogger('kiwi')


def run_stash(command_args: Dict[str, Any], global_args: Dict[str, Any]) -> None:
    """
    Store a root tree as a stash, or list the stashes

    :param dict command_args: docopt's view of the stash usage
    :param dict global_args: kiwi's global options; --temp-dir takes
        the work files
    """
    temp_dir = global_args.get('--temp-dir')
    images = ContainerImages(
        command_args.get('--registry-auth-file'), tls_verify(command_args), temp_dir
    )
    if command_args.get('--list'):
        rows = stash_rows(images.stashes())
        print(format_table(rows) if rows else 'No stashes: create one with '
              "'kiwi-ng system stash --root DIR'")
        return
    push = command_args.get('--push')
    location = validate_registry(push) if push else None
    require_root('system stash')
    with stopped_cleanly('system stash'):
        sweep_dead_runs()
        result = Stash(images, temp_dir).store(
            command_args['--root'], command_args.get('--container-name'),
            command_args.get('--tag')
        )
        local = result.reference.local()
        if result.first:
            log.info(f'Stashed as {local} (image {result.image[:12]})')
        elif result.image:
            log.info(
                f'Stashed as {local} (image {result.image[:12]}): one layer with '
                f'{result.changed} changed and {result.deleted} deleted paths'
            )
        else:
            log.info(f'Nothing changed: {local} names the previous stash')
        if location:
            images.push(local, result.reference.remote(location))
