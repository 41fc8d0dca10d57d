"""Stash names, tags and digests: what a valid image reference is."""
import re
from dataclasses import dataclass
from typing import NewType, Optional

from kiwi_stackbuild_plugin.defaults import StackbuildDefaults
from kiwi_stackbuild_plugin.exceptions import KiwiStashNameError

# the grammar of the OCI distribution spec: lower-case path components
# separated by '/', each made of alphanumerics joined by '.', '_',
# '__' or runs of '-'
_COMPONENT = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'
_NAME = re.compile(rf'{_COMPONENT}(?:/{_COMPONENT})*')
_TAG = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}')
_DIGEST = re.compile(r'sha256:[a-f0-9]{64}')
# a registry host: has a '.', a port, or is localhost
_DOMAIN = re.compile(r'(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9.-]+:[0-9]+)')

# a registry location that validate_registry accepted and normalized,
# e.g. 'localhost:5000/stashes': the type says it was checked, so the
# references built on it need not check it again
RegistryLocation = NewType('RegistryLocation', str)


def is_valid_name(name: str) -> bool:
    return len(name) <= 255 and bool(_NAME.fullmatch(name))


def validate_name(name: str, hint: str = '') -> str:
    """
    Check a stash name against the image reference grammar

    :param str name: e.g. 'leap-base'
    :param str hint: what to do about an invalid name, appended
    :raises KiwiStashNameError: if the name is not valid
    :return: the name
    """
    if is_valid_name(name):
        return name
    reason = 'use lower case letters, digits, and . _ - between them'
    if name != name.lower():
        reason = 'upper case is not allowed in image names'
    elif not name:
        reason = 'it is empty'
    elif re.search(r'\s', name):
        reason = 'spaces are not allowed in image names'
    raise KiwiStashNameError(
        f"'{name}' is not a valid stash name: {reason}{hint}"
    )


def validate_tag(tag: str) -> str:
    """
    Check a stash tag

    :raises KiwiStashNameError: if the tag is not valid
    """
    if _TAG.fullmatch(tag):
        return tag
    raise KiwiStashNameError(
        f"'{tag}' is not a valid tag: use up to 128 letters, digits, "
        "'_', '.' and '-', not starting with '.' or '-'"
    )


def validate_registry(registry: str) -> RegistryLocation:
    """
    Check a registry location such as 'localhost:5000/stashes'

    :raises KiwiStashNameError: if it is not a registry location
    :return: the location without scheme and trailing '/'
    """
    location = registry.rstrip('/')
    for scheme in ('docker://', 'https://', 'http://'):
        if location.startswith(scheme):
            location = location[len(scheme):]
    domain, _, path = location.partition('/')
    if _DOMAIN.fullmatch(domain) and (not path or _NAME.fullmatch(path)):
        return RegistryLocation(location)
    raise KiwiStashNameError(
        f"'{registry}' is not a registry location: give HOST[:PORT][/PATH], "
        "e.g. localhost:5000/stashes"
    )


@dataclass(frozen=True)
class StashReference:
    """
    A stash as the user names it: [REGISTRY/]NAME, with :TAG or
    @sha256:DIGEST

    :param str name: repository name without registry
    :param str tag: the tag, unused when a digest pins the image
    :param str digest: 'sha256:...' or None
    :param str domain: the registry the user named, e.g. 'docker.io';
        '' for a short name
    """
    name: str
    tag: str = StackbuildDefaults.default_tag
    digest: Optional[str] = None
    domain: str = ''

    @classmethod
    def parse(cls, text: str) -> 'StashReference':
        """
        Parse and validate what the user typed

        :raises KiwiStashNameError: if any part is invalid
        """
        name, digest = text, None
        if '@' in text:
            name, digest = text.split('@', 1)
            if not _DIGEST.fullmatch(digest):
                raise KiwiStashNameError(
                    f"'{text}': a digest is written NAME@sha256:<64 hex digits>"
                )
        domain = ''
        first, slash, rest = name.partition('/')
        # as podman reads names: the first component is a registry when
        # it has a '.' or a port or is localhost
        if slash and _DOMAIN.fullmatch(first):
            domain, name = first, rest
        tag = StackbuildDefaults.default_tag
        last = name.rsplit('/', 1)[-1]
        if ':' in last:
            name, tag = name.rsplit(':', 1)
            validate_tag(tag)
        validate_name(name)
        if domain == StackbuildDefaults.local_registry:
            domain = ''
        return cls(name, tag, digest, domain)

    @property
    def suffix(self) -> str:
        return f'@{self.digest}' if self.digest else f':{self.tag}'

    def local_repository(self) -> str:
        """
        The fully qualified repository in the local storage, without
        tag or digest, e.g. 'localhost/leap-base'
        """
        return f'{StackbuildDefaults.local_registry}/{self.name}'

    def local(self) -> str:
        """
        The fully qualified reference in the local storage
        """
        return f'{self.local_repository()}{self.suffix}'

    def lookup(self) -> str:
        """
        The reference as podman resolves it among the local images: a
        short name as podman resolves short names (localhost/ first,
        then its unqualified-search registries), a name with a registry
        as it is
        """
        prefix = f'{self.domain}/' if self.domain else ''
        return f'{prefix}{self.name}{self.suffix}'

    def remote(self, location: RegistryLocation) -> str:
        """
        The fully qualified reference in the given registry

        :param str location: a location validate_registry returned
        """
        return f'{location}/{self.name}{self.suffix}'

    def __str__(self) -> str:
        prefix = f'{self.domain}/' if self.domain else ''
        return f'{prefix}{self.name}{self.suffix}'
