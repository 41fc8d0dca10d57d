"""
Where box files may come from, against real servers on 127.0.0.1 and
127.0.0.2 (another host): https verified against a test CA, redirects to
mirrors, and a plain http source only where the catalog entry allows it.
"""
import hashlib
import logging

import pytest

from harness.boxserver import BoxTree, serving
from harness.tls import make_certificates
from kiwi_boxed_plugin.cache import BoxCache
from kiwi_boxed_plugin.catalog import BoxCatalog
from kiwi_boxed_plugin.exceptions import KiwiBoxInsecureSourceError, KiwiBoxRedirectError
from kiwi_boxed_plugin.fetch import Fetcher

pytestmark = pytest.mark.integration

BOX = BoxTree()
DISK = [bytes([n]) * 65536 for n in range(16)]            # 1 MiB
HOSTILE_DISK = [bytes([n]) * 65536 for n in range(100, 116)]
SOURCE_HOST = '127.0.0.1'
OTHER_HOST = '127.0.0.2'


def digest(blocks):
    return hashlib.sha256(b''.join(blocks)).hexdigest()


@pytest.fixture(scope='module')
def certificates(tmp_path_factory):
    return make_certificates(str(tmp_path_factory.mktemp('tls')), [SOURCE_HOST, OTHER_HOST])


@pytest.fixture
def trusted(certificates, monkeypatch):
    # the client trusts the test CA as it would a company CA
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', certificates.ca)
    return certificates.server_context()


@pytest.fixture
def source(tmp_path, trusted):
    """
    The box source: https on 127.0.0.1
    """
    BOX.write(str(tmp_path / 'source'), DISK)
    with serving(str(tmp_path / 'source'), SOURCE_HOST, trusted) as server:
        yield server


@pytest.fixture
def hostile_tree(tmp_path):
    """
    Another box, with .sha256 files that match it, as a mirror or a
    man in the middle would publish it
    """
    BOX.write(str(tmp_path / 'hostile'), HOSTILE_DISK, kernel=b'evil')
    return str(tmp_path / 'hostile')


def fetch_box(tmp_path, source_url, allow_http=False):
    """
    One use of the box from source_url; the system disk's digest
    """
    catalog = BOX.catalog(str(tmp_path / 'catalog.yml'), 'mybox', source_url, allow_http)
    box = BoxCatalog(user_candidates=[catalog]).get('mybox')
    cache = BoxCache(str(tmp_path / 'cache'), fetcher=Fetcher(retries=0))
    with cache.use(box, box.arch('x86_64')) as files:
        with open(files.system_disk, 'rb') as disk:
            return hashlib.sha256(disk.read()).hexdigest()


def cache_state(tmp_path):
    box = BoxCatalog(user_candidates=[str(tmp_path / 'catalog.yml')]).get('mybox')
    return BoxCache(str(tmp_path / 'cache')).state(box, box.arch('x86_64'))


def test_https_source_is_fetched_quietly(tmp_path, source, caplog):
    with caplog.at_level(logging.WARNING, logger='kiwi'):
        assert fetch_box(tmp_path, source.url) == digest(DISK)
    assert caplog.records == []


def test_box_file_may_come_from_a_mirror(tmp_path, source, trusted):
    with serving(source.root, OTHER_HOST, trusted) as mirror:
        source.redirect_to = mirror.url
        source.faults['/' + BOX.disk] = 'redirect'
        assert fetch_box(tmp_path, source.url) == digest(DISK)
        assert mirror.requests == ['/' + BOX.disk]


def test_checksum_is_not_taken_from_another_host(tmp_path, source, trusted, hostile_tree):
    # the mirror serves a box and the digest that vouches for it
    with serving(hostile_tree, OTHER_HOST, trusted) as mirror:
        source.redirect_to = mirror.url
        for name in (BOX.disk, BOX.disk + '.sha256'):
            source.faults['/' + name] = 'redirect'
        with pytest.raises(KiwiBoxRedirectError) as refused:
            fetch_box(tmp_path, source.url)
        assert mirror.requests == []
    assert str(refused.value) == (
        f'{source.url}/{BOX.disk}.sha256 redirects to another host '
        f'({OTHER_HOST}:{mirror.port}): the checksums that vouch for a box are only taken '
        'from its source; check the box source'
    )
    assert cache_state(tmp_path) == 'absent'


def test_no_downgrade_to_plain_http(tmp_path, source, hostile_tree):
    with serving(hostile_tree, OTHER_HOST) as plain:
        source.redirect_to = plain.url
        source.faults['/' + BOX.disk] = 'redirect'
        with pytest.raises(KiwiBoxRedirectError, match=(
            f'^{source.url}/{BOX.disk} redirects to plain http '
            fr'\({plain.url}/{BOX.disk}\), where anyone on the way could swap the file'
        )):
            fetch_box(tmp_path, source.url)
        assert plain.requests == []
    assert cache_state(tmp_path) == 'absent'


def test_plain_http_source_needs_the_catalog_to_allow_it(tmp_path):
    BOX.write(str(tmp_path / 'tree'), DISK)
    with serving(str(tmp_path / 'tree')) as plain:
        with pytest.raises(KiwiBoxInsecureSourceError) as refused:
            fetch_box(tmp_path, plain.url)
        assert plain.requests == []
    message = str(refused.value)
    assert message.startswith(f"box 'mybox' (x86_64): {plain.url}/ is plain http")
    assert message.endswith(
        f"allow it with 'allow_http: true' in the box's entry of {tmp_path}/catalog.yml"
    )
    assert '\n' not in message


def test_plain_http_allowed_by_the_catalog_warns_once(tmp_path, caplog):
    BOX.write(str(tmp_path / 'tree'), DISK)
    with serving(str(tmp_path / 'tree')) as plain:
        with caplog.at_level(logging.WARNING, logger='kiwi'):
            assert fetch_box(tmp_path, plain.url, allow_http=True) == digest(DISK)
    assert [record.message for record in caplog.records] == [
        f"box 'mybox' (x86_64): fetching over plain http from {plain.url}/, "
        f'as {tmp_path}/catalog.yml allows'
    ]
