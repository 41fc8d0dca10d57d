"""The stash listing: what podman knows about the stashes, as a table."""
from datetime import datetime, timezone
from typing import Any, Dict, List

from kiwi_plugin_support.text import human_size

from kiwi_stackbuild_plugin.defaults import StackbuildDefaults

HEADER = ('NAME', 'TAG', 'SIZE', 'CREATED', 'ARCH', 'DESCRIPTION')


def stash_rows(images: List[Dict[str, Any]]) -> List[tuple]:
    """
    One row per stash name and tag, newest first

    :param list images: 'podman images --format json' entries
    """
    local = StackbuildDefaults.local_registry + '/'
    rows = []
    for image in sorted(images, key=lambda image: image.get('Created') or 0, reverse=True):
        labels = image.get('Labels') or {}
        description = ' '.join(filter(None, (
            labels.get(StackbuildDefaults.label_name),
            labels.get(StackbuildDefaults.label_version),
        )))
        author = labels.get(StackbuildDefaults.label_author)
        if author:
            description += f' by {author}'
        created = datetime.fromtimestamp(
            image.get('Created') or 0, timezone.utc
        ).strftime('%Y-%m-%d %H:%M:%S UTC')
        for name in image.get('Names') or []:
            repository, _, tag = name.rpartition(':')
            if repository.startswith(local):
                repository = repository[len(local):]
            rows.append((
                repository, tag, human_size(image.get('Size') or 0), created,
                labels.get(StackbuildDefaults.label_arch, ''), description,
            ))
    return rows


def format_table(rows: List[tuple]) -> str:
    """
    Rows as aligned columns under the header
    """
    table = [HEADER] + rows
    widths = [max(len(str(row[column])) for row in table) for column in range(len(HEADER))]
    return '\n'.join(
        '  '.join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in table
    )
