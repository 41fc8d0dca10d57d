"""Sphinx configuration: the man pages of the three plugin commands."""
import os
import sys

sys.path.insert(0, os.path.abspath('../..'))
from kiwi_plugin_support.version import __version__  # noqa: E402

project = 'kiwi-plugins'
author = 'The kiwi-plugins authors'
copyright = '2026, The kiwi-plugins authors'
version = __version__
release = __version__
master_doc = 'index'
exclude_patterns = []

# kiwi's Help shows 'man 8 kiwi::system::<command>': the page names
# must match exactly
man_pages = [
    ('commands/system_boxbuild', 'kiwi::system::boxbuild',
     'build an image inside a box VM or container', [author], 8),
    ('commands/system_stash', 'kiwi::system::stash',
     'store a kiwi root tree as an OCI container image', [author], 8),
    ('commands/system_stackbuild', 'kiwi::system::stackbuild',
     'stack stashes into a root tree and build an image from it', [author], 8),
]
