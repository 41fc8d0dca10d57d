"""
The box's entry in the user's box catalog, merged in beside the boxes
the catalog has already.
"""
import logging
import os
import tempfile
from typing import Any, Dict, Optional

import yaml

from kiwi_boxed_plugin.catalog import load_catalog_file

from box_builder.errors import BoxBuildError
from box_builder.recipe import Recipe

log = logging.getLogger('build-box')


def catalog_entry(recipe: Recipe, source: str) -> Dict[str, Any]:
    """
    The box's entry of kiwi_boxed_plugin.yml

    :param str source: the URL of the box directory, file://...
    """
    catalog = recipe.data['catalog']
    return {
        'name': catalog['name'],
        'mem_mb': catalog['mem_mb'],
        'processors': catalog['processors'],
        'console': catalog['console'],
        'arch': [{
            'name': recipe.arch,
            'cmdline': list(catalog['cmdline']),
            'source': source,
            'packages_file': recipe.packages_file,
            'boxfiles': recipe.published,
            'container': catalog['container'],
            'use_initrd': True,
        }],
    }


def merged_box(box: Dict[str, Any], entry: Dict[str, Any]) -> Dict[str, Any]:
    """
    A box of the catalog with the entry's architecture put in: the
    entry's settings, the box's other architectures kept in their place
    """
    arch = entry['arch'][0]
    known = list(box.get('arch') or [])

    def is_replaced(other: Any) -> bool:
        return isinstance(other, dict) and other.get('name') == arch['name']

    arches = [arch if is_replaced(other) else other for other in known]
    if not any(is_replaced(other) for other in known):
        arches.append(arch)
    return dict(entry, arch=arches)


def merge_catalog(data: Optional[Dict[str, Any]], entry: Dict[str, Any]) -> Dict[str, Any]:
    """
    Put a box entry of one architecture into a catalog: into the box of
    the same name beside its other architectures, or as a new box;
    everything else stays as it is

    :param dict data: the catalog as read, None if there is none
    :raises BoxBuildError: if the catalog is not a 'box:' list
    """
    merged = dict(data or {})
    boxes = merged.get('box', [])
    if not isinstance(boxes, list):
        raise BoxBuildError("the box catalog has no 'box:' list: fix it or pass --no-catalog")
    names = [box.get('name') if isinstance(box, dict) else None for box in boxes]
    if entry['name'] in names:
        place = names.index(entry['name'])
        merged['box'] = boxes[:place] + [merged_box(boxes[place], entry)] + boxes[place + 1:]
    else:
        merged['box'] = boxes + [entry]
    return merged


def user_catalog() -> str:
    """
    The catalog the plugin reads first: $KIWI_BOXED_PLUGIN_CFG, else
    the user's ~/.config/kiwi/kiwi_boxed_plugin.yml
    """
    return os.environ.get('KIWI_BOXED_PLUGIN_CFG') or os.path.expanduser(
        '~/.config/kiwi/kiwi_boxed_plugin.yml'
    )


def install_catalog_entry(path: str, recipe: Recipe, output: str) -> None:
    """
    Merge the box's entry into a user catalog, written atomically and
    checked with the plugin's own catalog reader

    :param str output: the box directory the entry points to
    :raises BoxBuildError: if the catalog is no valid YAML or no 'box:' list
    """
    data = None
    if os.path.exists(path):
        try:
            with open(path) as handle:
                data = yaml.safe_load(handle)
        except yaml.YAMLError:
            raise BoxBuildError(f'{path} is not valid YAML: fix it or pass --no-catalog')
    entry = catalog_entry(recipe, 'file://' + os.path.abspath(output))
    merged = merge_catalog(data, entry)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=directory)
    with os.fdopen(descriptor, 'w') as stream:
        # on the open file: the directory is the user's, who may have
        # put a link to any file in place of the name by now
        os.fchmod(stream.fileno(), 0o644)
        yaml.safe_dump(merged, stream, sort_keys=False)
    load_catalog_file(temporary)
    os.replace(temporary, path)
    log.info("box '%s' is in the catalog %s", entry['name'], path)
