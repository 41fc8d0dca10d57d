import pytest

from kiwi_stackbuild_plugin.exceptions import KiwiStashNameError
from kiwi_stackbuild_plugin.reference import (
    RegistryLocation, StashReference, is_valid_name, validate_name, validate_registry,
    validate_tag
)

DIGEST = 'sha256:' + 'ab' * 32


@pytest.mark.parametrize('name', [
    'a', 'leap-base', 'a.b_c', 'a__b', 'a---b', 'org/leap', 'x1/y2/z3', 'a' * 255,
])
def test_valid_names(name):
    assert validate_name(name) == name
    assert is_valid_name(name)


@pytest.mark.parametrize('name, reason', [
    ('Leap', 'upper case'),
    ('my image', 'spaces'),
    ('', 'empty'),
    ('-a', 'lower case letters'),
    ('a-', 'lower case letters'),
    ('a..b', 'lower case letters'),
    ('a//b', 'lower case letters'),
    ('a:b', 'lower case letters'),
    ('$(reboot)', 'lower case letters'),
    ('a' * 256, 'lower case letters'),
])
def test_invalid_names(name, reason):
    with pytest.raises(KiwiStashNameError, match=reason):
        validate_name(name)
    assert not is_valid_name(name)


def test_invalid_name_message_carries_the_hint():
    with pytest.raises(KiwiStashNameError, match=r"'A' is not .*: use --container-name x$"):
        validate_name('A', hint=': use --container-name x')


@pytest.mark.parametrize('tag', ['latest', 'v1.2', '_x', 'A-b_c.d', 'a' * 128])
def test_valid_tags(tag):
    assert validate_tag(tag) == tag


@pytest.mark.parametrize('tag', ['', '.x', '-x', 'a/b', 'a b', 'a' * 129, 'ä'])
def test_invalid_tags(tag):
    with pytest.raises(KiwiStashNameError, match='not a valid tag'):
        validate_tag(tag)


@pytest.mark.parametrize('registry, location', [
    ('localhost:5000/stashes', 'localhost:5000/stashes'),
    ('localhost', 'localhost'),
    ('registry.example.org/a/b/', 'registry.example.org/a/b'),
    ('docker://127.0.0.1:5000', '127.0.0.1:5000'),
    ('https://quay.io/org', 'quay.io/org'),
])
def test_valid_registries(registry, location):
    assert validate_registry(registry) == location


@pytest.mark.parametrize('registry', ['stashes', 'UPPER.example.org/Org', 'a b:1', '', ':5000'])
def test_invalid_registries(registry):
    with pytest.raises(KiwiStashNameError, match='is not a registry location'):
        validate_registry(registry)


@pytest.mark.parametrize('text, name, tag, digest', [
    ('base', 'base', 'latest', None),
    ('base:v1', 'base', 'v1', None),
    ('org/base:v1', 'org/base', 'v1', None),
    ('localhost/base:v2', 'base', 'v2', None),
    (f'base@{DIGEST}', 'base', 'latest', DIGEST),
])
def test_parse(text, name, tag, digest):
    assert StashReference.parse(text) == StashReference(name, tag, digest)


@pytest.mark.parametrize('text, domain, name, lookup', [
    # short names go to podman as typed: it resolves them
    ('base', '', 'base', 'base:latest'),
    ('library/debian:bookworm', '', 'library/debian', 'library/debian:bookworm'),
    ('localhost/base', '', 'base', 'base:latest'),
    ('docker.io/library/debian:bookworm', 'docker.io', 'library/debian',
     'docker.io/library/debian:bookworm'),
    ('localhost:5000/s/base:v1', 'localhost:5000', 's/base', 'localhost:5000/s/base:v1'),
    (f'quay.io/org/app@{DIGEST}', 'quay.io', 'org/app', f'quay.io/org/app@{DIGEST}'),
])
def test_parse_keeps_a_registry_for_podman(text, domain, name, lookup):
    reference = StashReference.parse(text)
    assert (reference.domain, reference.name, reference.lookup()) == (domain, name, lookup)
    assert str(reference) == lookup


@pytest.mark.parametrize('text', ['docker.io/', 'docker.io/UP', 'docker.io/a b'])
def test_parse_rejects_bad_names_after_a_registry(text):
    with pytest.raises(KiwiStashNameError):
        StashReference.parse(text)


@pytest.mark.parametrize('text, match', [
    ('Base', 'upper case'),
    ('base:', 'not a valid tag'),
    ('base@sha256:12', 'digest'),
    ('base@md5:' + 'a' * 32, 'digest'),
])
def test_parse_rejects(text, match):
    with pytest.raises(KiwiStashNameError, match=match):
        StashReference.parse(text)


def test_references():
    tagged = StashReference('base', 'v1')
    assert tagged.local() == 'localhost/base:v1'
    assert tagged.local_repository() == 'localhost/base'
    assert tagged.remote(validate_registry('docker://localhost:5000/s/')) == \
        'localhost:5000/s/base:v1'
    assert str(tagged) == 'base:v1'
    pinned = StashReference('base', digest=DIGEST)
    assert pinned.local() == f'localhost/base@{DIGEST}'
    assert pinned.local_repository() == 'localhost/base'
    assert pinned.remote(validate_registry('r.example.org')) == f'r.example.org/base@{DIGEST}'


def test_remote_takes_the_location_as_validated():
    # the location was checked where the user gave it: not again here
    assert StashReference('base').remote(RegistryLocation('checked:1/x')) == \
        'checked:1/x/base:latest'
