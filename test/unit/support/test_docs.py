import os
import re

import pytest

from kiwi_boxed_plugin.tasks import system_boxbuild
from kiwi_plugin_support.usage import options_of_usage
from kiwi_stackbuild_plugin.tasks import system_stackbuild, system_stash

DOC = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'doc', 'source', 'commands')


@pytest.mark.parametrize('module,page', [
    (system_boxbuild, 'system_boxbuild.rst'),
    (system_stash, 'system_stash.rst'),
    (system_stackbuild, 'system_stackbuild.rst'),
])
def test_man_page_documents_every_option(module, page):
    with open(os.path.join(DOC, page)) as handle:
        text = handle.read()
    documented = set(re.findall(r'^(--[\w-]+)', text, re.MULTILINE))
    options = {name for name in options_of_usage(module.__doc__) if len(name) > 2}
    options -= {'--help'}
    assert options - documented == set()
