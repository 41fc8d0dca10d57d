"""
The box's root tree as podman's container image, for the plugin's
container mode (which passes its own command to our agent's box, so its
image sets none; a flavour may name an entry point).
"""
import json
import logging
import os
import subprocess
from typing import List

from box_builder.programs import run
from box_builder.recipe import Recipe

# the image label naming the recipe hash the image was imported from
CONTAINER_LABEL = 'org.kiwi-plugins.box-recipe'

log = logging.getLogger('build-box')


def image_recipe_hash(reference: str) -> str:
    """
    :return: the recipe hash label of the image in podman's store, or
        '' if the store lacks the image
    """
    inspect = subprocess.run(
        ['podman', 'image', 'inspect', '--format', '{{ index .Labels "%s" }}' % CONTAINER_LABEL,
         reference],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    return inspect.stdout.decode().strip() if inspect.returncode == 0 else ''


def import_container(output: str, recipe: Recipe, recipe_hash: str) -> None:
    """
    Import the root tree as the box's container image, unless podman
    has it already from this recipe
    """
    reference = recipe.data['catalog']['container']
    if image_recipe_hash(reference) == recipe_hash:
        log.info('container image %s is up to date', reference)
        return
    log.info('importing the container image %s', reference)
    run(['podman', 'import', '--arch', recipe.debian_arch] + image_changes(recipe, recipe_hash) + [
        os.path.join(output, recipe.rootfs_tarball), reference
    ])


def image_changes(recipe: Recipe, recipe_hash: str) -> List[str]:
    """
    The --change options of the import: the recipe hash label, and the
    recipe's entry point if it has one (a flavour whose container runs
    systemd: podman's systemd mode needs /sbin/init as the command)
    """
    changes = ['--change', f'LABEL {CONTAINER_LABEL}={recipe_hash}']
    entrypoint = recipe.data.get('container', {}).get('entrypoint')
    if entrypoint:
        changes += ['--change', f'ENTRYPOINT {json.dumps(list(entrypoint))}']
    return changes
