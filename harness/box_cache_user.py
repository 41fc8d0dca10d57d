"""
One boxbuild's use of the cache, as a process of its own.

    python -m harness.box_cache_user CATALOG CACHE_ROOT BOX   (in the repository root)

Prepares the box through BoxCache.use() and prints 'DIGEST <sha256>' of
the system disk it was lent; kiwi errors end it with exit 1 and one line.
kiwi's log lines go to stdout as well.
"""
import hashlib
import logging
import sys

from kiwi.exceptions import KiwiError

from kiwi_boxed_plugin.cache import BoxCache
from kiwi_boxed_plugin.catalog import BoxCatalog


def main() -> int:
    catalog_path, root, name = sys.argv[1:4]
    log = logging.getLogger('kiwi')
    log.setLevel(logging.INFO)
    if not log.handlers:
        log.addHandler(logging.StreamHandler(sys.stdout))
    box = BoxCatalog(user_candidates=[catalog_path]).get(name)
    try:
        with BoxCache(root).use(box, box.arches[0]) as files:
            with open(files.system_disk, 'rb') as disk:
                print('DIGEST', hashlib.sha256(disk.read()).hexdigest(), flush=True)
    except KiwiError as issue:
        print(f'{type(issue).__name__}: {issue}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
