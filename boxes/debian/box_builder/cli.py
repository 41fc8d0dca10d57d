"""
The command line of build-box: options, logging, root check, and the
steps in order (build under the lock, container image, catalog).
"""
import argparse
import logging
import os
import signal
import sys
from types import FrameType
from typing import Optional, Sequence

from box_builder.apt_sources import host_mirror
from box_builder.build import ensure_box
from box_builder.catalog_merge import install_catalog_entry, user_catalog
from box_builder.container_image import import_container
from box_builder.errors import BoxBuildError
from box_builder.publish import build_lock, read_recipe_hash
from box_builder.recipe import AGENT, CONFORMANCE, FLAVOURS, Recipe, load_recipe

DEFAULT_OUTPUT = '/var/cache/kiwi-plugins/debian-box'
# where each flavour's box goes unless --output says otherwise
DEFAULT_OUTPUTS = {
    AGENT: DEFAULT_OUTPUT,
    CONFORMANCE: '/var/cache/kiwi-plugins/debian-conformance-box',
}

log = logging.getLogger('build-box')


def default_output(recipe: Recipe) -> str:
    """
    Where a box goes unless --output says otherwise: the flavour's
    directory, with the architecture appended for another than the
    recipe's default
    """
    output = DEFAULT_OUTPUTS[recipe.flavour]
    return f'{output}-{recipe.arch}' if recipe.other_arch else output


def leave_through_cleanup(number: int, frame: Optional[FrameType]) -> None:
    """
    End the build on a signal through its cleanup, which a second
    signal (a CI runner's kill after its own) must not cut short
    """
    signal.signal(number, signal.SIG_IGN)
    sys.exit(128 + number)


def parse_options(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='build-box', description='Build the Debian box of boxes/debian/recipe.toml'
    )
    parser.add_argument(
        '--flavour', choices=FLAVOURS, default=AGENT,
        help='agent: the box running our agent (default); conformance: a box whose box '
        'side behaves as the published boxes\' does'
    )
    parser.add_argument(
        '--output', default='',
        help='box directory (a link; default: '
        + ', '.join(f'{path} for {name}' for name, path in DEFAULT_OUTPUTS.items()) + ')'
    )
    catalog = parser.add_mutually_exclusive_group()
    catalog.add_argument(
        '--catalog', default='',
        help='catalog file to add the box to (default: $KIWI_BOXED_PLUGIN_CFG or '
        '~/.config/kiwi/kiwi_boxed_plugin.yml)'
    )
    catalog.add_argument('--no-catalog', action='store_true', help='leave the catalog alone')
    parser.add_argument(
        '--no-container', action='store_true', help='do not import the container image'
    )
    parser.add_argument(
        '--arch', default='',
        help='the box\'s architecture, kiwi\'s name or Debian\'s (aarch64 or arm64; default: '
        'the recipe\'s, x86_64); another than the host\'s is built through qemu-user'
    )
    parser.add_argument('--mirror', default='', help='Debian mirror (default: the host\'s)')
    parser.add_argument('--force', action='store_true', help='rebuild even if up to date')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """
    Build the box if need be, import its container image and add it to
    the catalog

    :param list argv: the arguments, sys.argv[1:] if None
    :return: the exit code: 0, or 1 after a one-line error
    """
    options = parse_options(argv)
    logging.basicConfig(
        level=logging.INFO, format='build-box: %(relativeCreated)6.0f ms: %(message)s'
    )
    try:
        if os.geteuid() != 0:
            raise BoxBuildError('building the box needs root (debootstrap, chroot)')
        recipe = load_recipe(flavour=options.flavour, arch=options.arch)
        output = os.path.abspath(options.output or default_output(recipe))
        # a terminated build must leave through its cleanup (mounts,
        # binfmt handler)
        signal.signal(signal.SIGTERM, leave_through_cleanup)
        with build_lock(output):
            ensure_box(
                output, options.mirror.rstrip('/') or host_mirror(recipe), options.force,
                options.flavour, recipe.arch
            )
        if not options.no_container:
            import_container(output, recipe, read_recipe_hash(output))
        if not options.no_catalog:
            install_catalog_entry(options.catalog or user_catalog(), recipe, output)
    except BoxBuildError as issue:
        log.error('%s', issue)
        return 1
    return 0
