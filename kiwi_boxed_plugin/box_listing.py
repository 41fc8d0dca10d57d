"""The table printed by 'kiwi-ng system boxbuild --list-boxes'."""
from typing import List

from kiwi_boxed_plugin.catalog import BoxCatalog


def box_list_lines(catalog: BoxCatalog) -> List[str]:
    """
    One line per box: name, arches, memory, cpus, catalog file
    """
    rows = [('BOX', 'ARCHES', 'MEMORY', 'CPUS', 'FROM')]
    for box in catalog.boxes.values():
        rows.append((
            box.name, ','.join(box.arch_names), f'{box.mem_mb}M',
            str(box.processors or '-'),
            'packaged' if box.origin == catalog.packaged else box.origin
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return [
        '  '.join(
            [cell.ljust(width) for cell, width in zip(row, widths)] + [row[4]]
        ) for row in rows
    ]


def print_box_list() -> None:
    for line in box_list_lines(BoxCatalog()):
        print(line)
