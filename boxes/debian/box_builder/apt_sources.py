"""
The Debian mirror to build from: the first one that the host's apt
sources name for the recipe's suite.
"""
import glob
import os
import re
from typing import Dict, List, Sequence, Tuple

from box_builder.errors import BoxBuildError
from box_builder.files import read_file
from box_builder.recipe import Recipe

# (URI, suites, components) of one 'deb' entry
AptSource = Tuple[str, List[str], List[str]]


def parse_apt_sources(text: str, deb822: bool) -> List[AptSource]:
    """
    The 'deb' entries of an apt sources file

    :param str text: the file's content
    :param bool deb822: the file is a '.sources' file in deb822 format
    :return: (URI, suites, components) per entry and URI
    """
    if deb822:
        return parse_deb822_sources(text)
    entries = []
    for line in text.splitlines():
        # options in brackets ([arch=amd64 signed-by=...]) are no words
        words = re.sub(r'\[[^\]]*\]', ' ', line.split('#', 1)[0]).split()
        if len(words) >= 3 and words[0] == 'deb':
            entries.append((words[1], [words[2]], words[3:]))
    return entries


def parse_deb822_sources(text: str) -> List[AptSource]:
    """
    The enabled 'deb' entries of a '.sources' file, one per URI

    :param str text: the file's content: stanzas of fields, blank
        lines between them
    """
    entries = []
    for stanza in re.split(r'\n\s*\n', text):
        fields: Dict[str, str] = {}
        key = ''
        for line in stanza.splitlines():
            if line.startswith('#') or not line.strip():
                continue
            # an indented line continues the field before it
            if line[0].isspace() and key:
                fields[key] += ' ' + line.strip()
                continue
            key, _, value = line.partition(':')
            key = key.strip().lower()
            fields[key] = value.strip()
        if 'deb' not in fields.get('types', '').split():
            continue
        if fields.get('enabled', 'yes').lower() in ('no', 'false', '0'):
            continue
        for uri in fields.get('uris', '').split():
            entries.append(
                (uri, fields.get('suites', '').split(), fields.get('components', '').split())
            )
    return entries


def choose_mirror(entries: Sequence[AptSource], suite: str, component: str) -> str:
    """
    The first mirror that carries the suite and component

    :raises BoxBuildError: if none does
    """
    for uri, suites, components in entries:
        if suite in suites and component in components:
            return uri.rstrip('/')
    raise BoxBuildError(
        f"no apt source of this host carries '{suite} {component}': add one to "
        f"/etc/apt/sources.list.d/ or pass --mirror URL"
    )


def host_apt_sources(apt_dir: str = '/etc/apt') -> List[str]:
    """
    The host's apt sources files in the order apt reads them: the
    one-line sources.list first, then sources.list.d/
    """
    parts = os.path.join(apt_dir, 'sources.list.d')
    return [os.path.join(apt_dir, 'sources.list')] + sorted(
        glob.glob(os.path.join(parts, '*.list')) + glob.glob(os.path.join(parts, '*.sources'))
    )


def host_mirror(recipe: Recipe, apt_dir: str = '/etc/apt') -> str:
    """
    The host's Debian mirror for the recipe's suite

    :raises BoxBuildError: if the host's apt sources name none
    """
    entries = []
    for path in host_apt_sources(apt_dir):
        if os.path.isfile(path):
            entries += parse_apt_sources(read_file(path).decode(), path.endswith('.sources'))
    return choose_mirror(entries, recipe.data['box']['suite'], 'main')
