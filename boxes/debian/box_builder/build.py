"""
The build as a whole: nothing if the output holds the box of this
recipe hash already, else the root tree and the box files in fresh
directories beside the output, published in one rename.
"""
import logging
import os
import tempfile

from box_builder.box_files import write_box_files
from box_builder.emulation import user_emulation
from box_builder.files import write_file
from box_builder.mounts import remove_tree
from box_builder.publish import HASH_STAMP, publish, remove_leftovers, verify_box
from box_builder.recipe import AGENT, Recipe, load_recipe, recipe_hash
from box_builder.root_tree import RootTreeBuilder

log = logging.getLogger('build-box')


def build_box(recipe: Recipe, mirror: str, work: str, deb_cache: str, box_dir: str) -> None:
    """
    Build the box of a recipe into a box directory

    :param str mirror: Debian mirror URL
    :param str work: an empty directory on the output's file system
    :param str deb_cache: the package cache kept across builds
    :param str box_dir: where the box files go
    """
    rootfs = os.path.join(work, 'rootfs')
    with user_emulation(recipe.arch):
        RootTreeBuilder(recipe, mirror, rootfs, deb_cache).build()
    write_box_files(recipe, rootfs, work, box_dir)


def ensure_box(
    output: str, mirror: str, force: bool, flavour: str = AGENT, arch: str = ''
) -> Recipe:
    """
    Build the box unless the output holds it for this recipe already

    :param str output: the box link, an absolute path
    :param str mirror: Debian mirror URL
    :param bool force: build even if the box is up to date
    :param str flavour: the box's flavour, see recipe.FLAVOURS
    :param str arch: the box's architecture, '' for the recipe's default
    """
    recipe = load_recipe(flavour=flavour, arch=arch)
    digest = recipe_hash(mirror, flavour, arch)
    if not force and verify_box(output, recipe, digest):
        log.info('box %s is up to date (recipe %s)', output, digest[:12])
        return recipe
    parent = os.path.dirname(os.path.abspath(output))
    remove_leftovers(output)
    box_dir = os.path.join(parent, f'{os.path.basename(output)}.{digest[:16]}')
    os.makedirs(box_dir)
    work = tempfile.mkdtemp(prefix=f'.{os.path.basename(output)}.work-', dir=parent)
    try:
        build_box(recipe, mirror, work, f'{output}.debs', box_dir)
        write_file(os.path.join(box_dir, HASH_STAMP), digest + '\n')
    except BaseException:
        # a box directory without its stamp is no box: nothing half
        # built stays beside the output
        remove_tree(box_dir)
        raise
    finally:
        remove_tree(work)
    publish(box_dir, output)
    log.info('box %s built (recipe %s)', output, digest[:12])
    return recipe
