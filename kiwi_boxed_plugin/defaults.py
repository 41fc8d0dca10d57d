"""Defaults of the boxed plugin, in one place."""
import os
from typing import List


class Defaults:
    """
    Static defaults of the boxed plugin
    """
    @staticmethod
    def get_packaged_catalog() -> str:
        """
        The catalog of the published boxes that ships with the plugin
        """
        return os.path.join(os.path.dirname(__file__), 'kiwi_boxed_plugin.yml')

    @staticmethod
    def get_user_catalog_candidates() -> List[str]:
        """
        Where a user's catalog may be, first found wins

        There is deliberately no lookup in the current directory: a
        checked out project must not redirect where boxes come from.
        """
        candidates = []
        from_environment = os.environ.get('KIWI_BOXED_PLUGIN_CFG')
        if from_environment:
            candidates.append(from_environment)
        candidates += [
            os.path.expanduser('~/.config/kiwi/kiwi_boxed_plugin.yml'),
            '/etc/kiwi_boxed_plugin.yml'
        ]
        return candidates

    @staticmethod
    def get_cache_root() -> str:
        """
        Where downloaded boxes live: $KIWI_BOXED_CACHE_DIR or ~/.kiwi_boxes
        """
        return os.environ.get('KIWI_BOXED_CACHE_DIR') or os.path.expanduser(
            '~/.kiwi_boxes'
        )
