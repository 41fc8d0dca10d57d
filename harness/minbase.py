"""
A Debian minbase root tree made with debootstrap, cached between runs.

The integration tests and bench.stash share it. It is built from the
apt mirror this host is configured with (never a mirror written into
the repository) and rebuilt when missing or when its recipe changed.
"""
import glob
import json
import os
import shutil
import subprocess
from typing import Dict, Iterator, List, Optional, Tuple

from harness.paths import TEST_STORE

CACHE_DIR = os.path.join(TEST_STORE, 'stackbuild')

# debootstrap's package set: the smallest root that still is Debian
VARIANT = 'minbase'


def _deb822_stanzas(text: str) -> Iterator[Dict[str, str]]:
    stanza: Dict[str, str] = {}
    key = ''
    for line in text.splitlines() + ['']:
        if line.startswith('#'):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza = {}
            continue
        if line[0] in ' \t' and key:
            stanza[key] += ' ' + line.strip()
            continue
        key, _, value = line.partition(':')
        stanza[key.strip().lower()] = value.strip()


def _sources() -> Iterator[Tuple[str, List[str], List[str]]]:
    """
    The host's deb sources as (uri, suites, components)
    """
    for path in sorted(glob.glob('/etc/apt/sources.list.d/*.sources')):
        with open(path) as handle:
            for stanza in _deb822_stanzas(handle.read()):
                if 'deb' not in stanza.get('types', '').split():
                    continue
                if stanza.get('enabled', 'yes').lower() == 'no':
                    continue
                for uri in stanza.get('uris', '').split():
                    yield uri, stanza.get('suites', '').split(), \
                        stanza.get('components', '').split()
    lists = ['/etc/apt/sources.list'] + sorted(glob.glob('/etc/apt/sources.list.d/*.list'))
    for path in lists:
        if not os.path.exists(path):
            continue
        with open(path) as handle:
            for line in handle:
                words = line.split('#', 1)[0].split()
                if words[:1] != ['deb']:
                    continue
                words = [word for word in words[1:] if not word.startswith('[')]
                if len(words) >= 3:
                    yield words[0], [words[1]], words[2:]


def host_suite() -> str:
    with open('/etc/os-release') as handle:
        for line in handle:
            if line.startswith('VERSION_CODENAME='):
                return line.split('=', 1)[1].strip().strip('"')
    raise RuntimeError('no VERSION_CODENAME in /etc/os-release')


def debian_mirror(suite: Optional[str] = None) -> str:
    """
    The URI of the host's configured mirror that carries the suite
    """
    suite = suite or host_suite()
    for uri, suites, components in _sources():
        if suite in suites and 'main' in components:
            return uri
    raise RuntimeError(f'no apt source for {suite} main in /etc/apt')


def minbase_root(merged_usr: bool = True) -> str:
    """
    Path of the cached minbase root, built on first use

    Built into a temporary directory and renamed into place, so an
    interrupted build never looks like a valid cache.

    :param bool merged_usr: /bin, /lib, /sbin as symlinks into /usr
        (Debian's default) or as directories of their own
    """
    suite = host_suite()
    recipe = {
        'suite': suite, 'variant': VARIANT, 'mirror': debian_mirror(suite),
        'merged_usr': merged_usr,
        'debootstrap': subprocess.run(
            ['debootstrap', '--version'], capture_output=True, text=True, check=True
        ).stdout.strip()
    }
    name = 'minbase' if merged_usr else 'minbase-split-usr'
    root = os.path.join(CACHE_DIR, name)
    stamp = os.path.join(CACHE_DIR, name + '.json')
    if os.path.isdir(root) and os.path.exists(stamp):
        with open(stamp) as handle:
            if json.load(handle) == recipe:
                return root
    os.makedirs(CACHE_DIR, exist_ok=True)
    for stale in (root, root + '.new'):
        if os.path.lexists(stale):
            shutil.rmtree(stale)
    if os.path.exists(stamp):
        os.unlink(stamp)
    layout = [] if merged_usr else ['--no-merged-usr']
    subprocess.run(
        ['debootstrap', f'--variant={VARIANT}'] + layout
        + [suite, root + '.new', recipe['mirror']],
        check=True, stdout=subprocess.DEVNULL
    )
    os.rename(root + '.new', root)
    with open(stamp, 'w') as handle:
        json.dump(recipe, handle)
    return root
