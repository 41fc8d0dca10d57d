"""The table printed by 'kiwi-ng system boxbuild --list-boxes'."""
import logging
from typing import Callable, List, Optional

from kiwi_boxed_plugin.catalog import Box, BoxArch, BoxCatalog
from kiwi_boxed_plugin.exceptions import KiwiBoxCacheError

log = logging.getLogger('kiwi')

# what the CACHED column says per arch; absent arches are left out
StateOf = Callable[[Box, BoxArch], str]


def cached_column(box: Box, state_of: Optional[StateOf]) -> str:
    """
    The cache state of each arch of a box that is in the cache, e.g.
    'x86_64:verified,aarch64:unverified'; '-' when none is, '?' when the
    cache cannot be read
    """
    if state_of is None:
        return '?'
    states = [(arch.name, state_of(box, arch)) for arch in box.arches]
    cached = [f'{name}:{state}' for name, state in states if state != 'absent']
    return ','.join(cached) or '-'


def box_list_lines(catalog: BoxCatalog, state_of: Optional[StateOf]) -> List[str]:
    """
    One line per box: name, arches, memory, cpus, cache state, catalog file

    :param state_of: the cache state of a box arch, None if the cache
        cannot be used
    """
    rows = [('BOX', 'ARCHES', 'MEMORY', 'CPUS', 'CACHED', 'FROM')]
    for box in catalog.boxes.values():
        rows.append((
            box.name, ','.join(box.arch_names), f'{box.mem_mb}M',
            str(box.processors or '-'), cached_column(box, state_of),
            'packaged' if box.origin == catalog.packaged else box.origin
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    return [
        '  '.join(
            [cell.ljust(width) for cell, width in zip(row, widths)] + [row[5]]
        ) for row in rows
    ]


def print_box_list() -> None:
    from kiwi_boxed_plugin.cache import BoxCache
    state_of: Optional[StateOf]
    try:
        state_of = BoxCache().state
    except KiwiBoxCacheError as issue:
        # the list is still worth showing without the cache column
        log.warning(f'cache state unknown: {issue}')
        state_of = None
    for line in box_list_lines(BoxCatalog(), state_of):
        print(line)
