import errno
import hashlib
import logging

import pytest
import requests

from kiwi_boxed_plugin import fetch
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxChecksumError,
    KiwiBoxDiskFullError,
    KiwiBoxDownloadError,
    KiwiBoxRedirectError,
)
from kiwi_boxed_plugin.fetch import (
    Fetcher,
    connection_reason,
    content_range_start,
    parse_sha256_file,
    redirect_problem,
    retry_delays,
    status_problem,
)

URL = 'https://boxes.example/images/Box.qcow2'
DATA = bytes(range(256)) * 40
DIGEST = hashlib.sha256(DATA).hexdigest()


class FakeResponse:
    def __init__(self, status=200, body=b'', headers=None, fail_after=None, reason='OK'):
        self.status_code = status
        self.reason = reason
        self.body = body
        self.headers = {'Content-Length': str(len(body))} if headers is None else headers
        self.fail_after = fail_after
        self.closed = False

    def iter_content(self, chunk_size):
        for start in range(0, len(self.body), 1000):
            if self.fail_after is not None and start >= self.fail_after:
                raise requests.exceptions.ChunkedEncodingError('connection broken')
            yield self.body[start:start + 1000]

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()


@pytest.fixture
def session(mocker):
    session = mocker.Mock(headers={})
    mocker.patch('requests.Session', return_value=session)
    mocker.patch('kiwi_boxed_plugin.fetch.time.sleep')
    return session


def ranged(start, body=DATA, **changes):
    headers = {
        'Content-Length': str(len(body) - start),
        'Content-Range': f'bytes {start}-{len(body) - 1}/{len(body)}'
    }
    return FakeResponse(206, body[start:], headers, **changes)


def sent_ranges(session):
    return [call.kwargs['headers'].get('Range') for call in session.get.call_args_list]


@pytest.mark.parametrize('text,digest', [
    (f'{DIGEST}  Box.qcow2\n'.encode(), DIGEST),
    (DIGEST.upper().encode(), DIGEST),
    (f'\n {DIGEST}\n'.encode(), DIGEST),
])
def test_parse_sha256_file(text, digest):
    assert parse_sha256_file(text, URL) == digest


@pytest.mark.parametrize('text', [
    b'', b'<html><body>Not Found</body></html>', DIGEST[:-1].encode(), b'\xff\xfe' * 40,
    (DIGEST + 'a').encode(),
])
def test_parse_sha256_file_rejects(text):
    with pytest.raises(KiwiBoxChecksumError, match=f'{URL} holds no sha256 digest'):
        parse_sha256_file(text, URL)


def test_retry_delays_double():
    assert list(retry_delays(4, 0.5)) == [0.5, 1.0, 2.0, 4.0]
    assert list(retry_delays(0, 1)) == []


@pytest.mark.parametrize('status,reason,expected', [
    (200, 'OK', None),
    (206, 'Partial Content', None),
    (404, 'Not Found', f'{URL} does not exist (HTTP 404): check the box source in the catalog'),
    (403, 'Forbidden', f'{URL} is not accessible (HTTP 403 Forbidden)'),
    (401, 'Unauthorized', f'{URL} is not accessible (HTTP 401 Unauthorized)'),
    (500, 'Internal Server Error', f'{URL} answered HTTP 500 Internal Server Error'),
    (302, '', f'{URL} answered HTTP 302'),
])
def test_status_problem(status, reason, expected):
    assert status_problem(status, reason, URL) == expected


@pytest.mark.parametrize('header,start', [
    ('bytes 100-199/200', 100), ('bytes 0-9/*', 0), (' bytes 5-9/10 ', 5),
    ('', -1), ('bytes */200', -1), ('items 1-2/3', -1),
])
def test_content_range_start(header, start):
    assert content_range_start(header) == start


@pytest.mark.parametrize('issue,reason', [
    (requests.ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /x "
        "(Caused by NewConnectionError('<urllib3.connection.HTTPConnection object>: "
        "Failed to establish a new connection: [Errno 111] Connection refused'))"),
     'Connection refused'),
    (requests.ConnectionError("Failed to resolve 'x' ([Errno -2] Name or service not known)"),
     'Name or service not known'),
    (requests.Timeout('Read timed out. (read timeout=60)'), 'timed out'),
    (requests.exceptions.ChunkedEncodingError(
        "('Connection broken: IncompleteRead(1048576 bytes read, 524288 more expected)')"),
     'the connection closed before the end of the file'),
    (requests.exceptions.ContentDecodingError('bad gzip'), 'ContentDecodingError'),
])
def test_connection_reason(issue, reason):
    assert connection_reason(issue) == reason


class TestDownloadHttp:
    def test_fresh_download(self, session, tmp_path):
        session.get.return_value = FakeResponse(200, DATA)
        partial = tmp_path / 'box.part'
        Fetcher(retries=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA
        assert sent_ranges(session) == [None]
        assert session.get.call_args.kwargs['stream'] is True
        assert session.get.call_args.kwargs['timeout'] == (15.0, 60.0)
        assert session.headers == {'Accept-Encoding': 'identity'}

    def test_chunked_without_length(self, session, tmp_path):
        session.get.return_value = FakeResponse(200, DATA, headers={})
        partial = tmp_path / 'box.part'
        Fetcher(retries=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA

    def test_drop_then_resume_with_range(self, session, tmp_path):
        session.get.side_effect = [FakeResponse(200, DATA, fail_after=3000), ranged(3000)]
        partial = tmp_path / 'box.part'
        Fetcher(retries=2, backoff=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA
        assert sent_ranges(session) == [None, 'bytes=3000-']
        fetch.time.sleep.assert_called_once_with(0)

    def test_short_body_counts_as_drop(self, session, tmp_path):
        short = FakeResponse(200, DATA[:500], headers={'Content-Length': str(len(DATA))})
        session.get.side_effect = [short, ranged(500)]
        partial = tmp_path / 'box.part'
        Fetcher(retries=1, backoff=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA

    def test_resume_partial_of_an_earlier_run(self, session, tmp_path):
        partial = tmp_path / 'box.part'
        partial.write_bytes(DATA[:4000])
        session.get.return_value = ranged(4000)
        Fetcher(retries=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA
        assert sent_ranges(session) == ['bytes=4000-']

    def test_server_ignoring_range_sends_all_again(self, session, tmp_path):
        partial = tmp_path / 'box.part'
        partial.write_bytes(DATA[:4000])
        session.get.return_value = FakeResponse(200, DATA)
        Fetcher(retries=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA

    @pytest.mark.parametrize('refusal', [
        FakeResponse(416, headers={'Content-Range': 'bytes */10'}),
        ranged(10),
    ])
    def test_refused_resume_starts_over(self, session, tmp_path, refusal):
        partial = tmp_path / 'box.part'
        partial.write_bytes(b'x' * 4000)
        session.get.side_effect = [refusal, FakeResponse(200, DATA)]
        Fetcher(retries=1, backoff=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA
        assert sent_ranges(session) == ['bytes=4000-', None]

    def test_stale_resumed_bytes_get_one_clean_download(self, session, tmp_path):
        partial = tmp_path / 'box.part'
        partial.write_bytes(b'y' * 4000)
        session.get.side_effect = [ranged(4000), FakeResponse(200, DATA)]
        Fetcher(retries=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA
        assert sent_ranges(session) == ['bytes=4000-', None]

    def test_checksum_mismatch_removes_partial(self, session, tmp_path):
        session.get.return_value = FakeResponse(200, DATA[:-1] + b'!')
        partial = tmp_path / 'box.part'
        with pytest.raises(KiwiBoxChecksumError, match=(
            f'Box.qcow2 from {URL} does not match its published sha256 .*'
            'the cached box is left as it was'
        )):
            Fetcher(retries=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert not partial.exists()
        assert session.get.call_count == 1

    def test_not_found_is_not_retried(self, session, tmp_path):
        session.get.return_value = FakeResponse(
            404, b'<html>gone</html>', {'Content-Type': 'text/html'}, reason='Not Found'
        )
        with pytest.raises(KiwiBoxDownloadError, match=f'{URL} does not exist .HTTP 404.'):
            Fetcher(retries=3).download(URL, str(tmp_path / 'p'), DIGEST, 'Box.qcow2')
        assert session.get.call_count == 1
        assert not (tmp_path / 'p').exists()

    def test_html_page_is_never_saved(self, session, tmp_path):
        session.get.return_value = FakeResponse(
            200, b'<html>login</html>', {'Content-Type': 'text/html; charset=utf-8'}
        )
        with pytest.raises(KiwiBoxDownloadError, match='answered with an HTML page'):
            Fetcher(retries=3).download(URL, str(tmp_path / 'p'), DIGEST, 'Box.qcow2')
        assert not (tmp_path / 'p').exists()

    def test_busy_server_is_retried(self, session, tmp_path):
        session.get.side_effect = [
            FakeResponse(503, reason='Service Unavailable'), FakeResponse(200, DATA)
        ]
        partial = tmp_path / 'box.part'
        Fetcher(retries=1, backoff=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA

    def test_gives_up_naming_url_and_reason(self, session, tmp_path, caplog):
        session.get.side_effect = requests.ConnectionError(
            'Failed to establish a new connection: [Errno 111] Connection refused'
        )
        with caplog.at_level(logging.WARNING, logger='kiwi'):
            with pytest.raises(KiwiBoxDownloadError, match=(
                f'cannot fetch {URL}: Connection refused .gave up after 3 attempts.'
            )):
                Fetcher(retries=2, backoff=1.5).download(URL, str(tmp_path / 'p'), DIGEST, 'B')
        assert [call.args[0] for call in fetch.time.sleep.call_args_list] == [1.5, 3.0]
        assert 'retrying in 1.5s' in caplog.text

    def test_no_room_for_announced_size(self, session, tmp_path, mocker):
        session.get.return_value = FakeResponse(200, DATA)
        mocker.patch('os.statvfs', return_value=mocker.Mock(f_bavail=1, f_frsize=4096))
        with pytest.raises(KiwiBoxDiskFullError, match='Box.qcow2 needs 0 MiB but .* has 0 MiB'):
            Fetcher(retries=0).download(URL, str(tmp_path / 'p'), DIGEST, 'Box.qcow2')

    def test_disk_full_while_writing_removes_partial(self, session, tmp_path, mocker):
        session.get.return_value = FakeResponse(200, DATA)
        full = OSError(errno.ENOSPC, 'No space left on device')
        real_open = open

        def failing_open(path, mode='r', *args, **kwargs):
            handle = real_open(path, mode, *args, **kwargs)
            if mode == 'ab':
                handle.write(b'partial')
                handle.flush()
                mocker.patch.object(handle, 'write', side_effect=full)
            return handle
        mocker.patch('builtins.open', failing_open)
        partial = tmp_path / 'box.part'
        with pytest.raises(KiwiBoxDiskFullError, match=f'no space left in {tmp_path} for Box'):
            Fetcher(retries=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert not partial.exists()


class TestDownloadFile:
    def test_local_file_with_spaces_in_path(self, tmp_path):
        source = tmp_path / 'my boxes $(x)' / 'Box.qcow2'
        source.parent.mkdir()
        source.write_bytes(DATA)
        partial = tmp_path / 'box.part'
        url = 'file://' + str(source).replace(' ', '%20').replace('$', '%24') \
            .replace('(', '%28').replace(')', '%29')
        Fetcher().download(url, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA

    def test_local_resume(self, tmp_path):
        source = tmp_path / 'Box.qcow2'
        source.write_bytes(DATA)
        partial = tmp_path / 'box.part'
        partial.write_bytes(DATA[:1234])
        Fetcher().download(f'file://{source}', str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA

    def test_local_partial_longer_than_source_starts_over(self, tmp_path):
        source = tmp_path / 'Box.qcow2'
        source.write_bytes(DATA)
        partial = tmp_path / 'box.part'
        partial.write_bytes(DATA + b'more')
        Fetcher().download(f'file://{source}', str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA

    def test_missing_local_file(self, tmp_path):
        with pytest.raises(KiwiBoxDownloadError, match='cannot read file:///nowhere/B: No such'):
            Fetcher().download('file:///nowhere/B', str(tmp_path / 'p'), DIGEST, 'B')


class TestReadSmall:
    def test_http(self, session):
        session.get.return_value = FakeResponse(200, b'abc')
        assert Fetcher().read_small(URL + '.sha256') == b'abc'

    def test_file(self, tmp_path):
        (tmp_path / 'B.sha256').write_bytes(b'digest')
        assert Fetcher().read_small(f'file://{tmp_path}/B.sha256') == b'digest'

    def test_too_big(self, session, mocker):
        mocker.patch(
            'kiwi_boxed_plugin.defaults.Defaults.get_small_file_limit', return_value=10
        )
        session.get.return_value = FakeResponse(200, DATA)
        with pytest.raises(KiwiBoxDownloadError, match='is larger than 0 MiB'):
            Fetcher().read_small(URL)

    def test_timeout_is_retried(self, session):
        session.get.side_effect = [requests.Timeout('read timed out'), FakeResponse(200, b'ok')]
        assert Fetcher(backoff=0).read_small(URL) == b'ok'


@pytest.mark.parametrize('size,text', [
    (0, '0 B'), (1023, '1023 B'), (1536, '1.5 KiB'), (3 << 20, '3.0 MiB'),
    ((5 << 30) // 4, '1.2 GiB'), (3 << 40, '3072.0 GiB'),
])
def test_human_size(size, text):
    assert fetch.human_size(size) == text


class TestProgress:
    def test_log_lines_without_terminal(self, caplog, mocker):
        mocker.patch('sys.stderr.isatty', return_value=False)
        with caplog.at_level(logging.INFO, logger='kiwi'):
            progress = fetch._Progress('Box.qcow2', 100 << 20, 0)
            for done in range(0, (100 << 20) + 1, 1 << 20):
                progress.update(done)
            progress.finish()
        lines = [record.message for record in caplog.records]
        assert lines[0] == 'Box.qcow2: 0 B of 100.0 MiB'
        assert lines[-1] == 'Box.qcow2: 100.0 MiB of 100.0 MiB'
        assert len(lines) == 11

    def test_small_files_are_quiet(self, caplog, mocker):
        mocker.patch('sys.stderr.isatty', return_value=False)
        with caplog.at_level(logging.INFO, logger='kiwi'):
            progress = fetch._Progress('Box.sha256', 100, 0)
            progress.update(100)
        assert caplog.records == []

    def test_log_lines_for_unknown_size(self, caplog, mocker):
        mocker.patch('sys.stderr.isatty', return_value=False)
        with caplog.at_level(logging.INFO, logger='kiwi'):
            progress = fetch._Progress('Box.qcow2', None, 0)
            progress.update(100 << 20)
            progress.update(300 << 20)
        assert [record.message for record in caplog.records] == [
            'Box.qcow2: 0 B', 'Box.qcow2: 300.0 MiB'
        ]

    def test_bar_on_terminal(self, mocker):
        mocker.patch('sys.stderr.isatty', return_value=True)
        bar_class = mocker.patch('progressbar.ProgressBar')
        progress = fetch._Progress('Box.qcow2', 1000, 10)
        progress.update(500)
        progress.finish()
        assert bar_class.call_args.kwargs['max_value'] == 1000
        bar = bar_class.return_value
        assert [call.args[0] for call in bar.update.call_args_list] == [10, 500]
        bar.finish.assert_called_once_with()

    @pytest.mark.parametrize('total,widgets', [
        (8 << 20, {'Percentage', 'DataSize', 'Bar', 'FileTransferSpeed', 'ETA'}),
        (None, {'DataSize', 'FileTransferSpeed', 'Timer'}),
    ])
    def test_bar_shows_size_rate_and_eta(self, mocker, total, widgets):
        mocker.patch('sys.stderr.isatty', return_value=True)
        bar_class = mocker.patch('progressbar.ProgressBar')
        fetch._Progress('Box.qcow2', total, 0)
        shown = bar_class.call_args.kwargs['widgets']
        assert shown[0] == 'Box.qcow2 '
        assert {type(widget).__name__ for widget in shown if not isinstance(widget, str)} \
            == widgets


@pytest.mark.parametrize('present,bundle', [
    ({'/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/ca-bundle.pem'},
     '/etc/ssl/certs/ca-certificates.crt'),
    ({'/etc/ssl/ca-bundle.pem'}, '/etc/ssl/ca-bundle.pem'),
    ({'/etc/pki/tls/certs/ca-bundle.crt'}, '/etc/pki/tls/certs/ca-bundle.crt'),
    (set(), None),
])
def test_system_ca_bundle(mocker, session, present, bundle):
    mocker.patch('os.path.isfile', side_effect=lambda path: path in present)
    assert Defaults.get_ca_bundle() == bundle
    session.get.return_value = FakeResponse(200, b'x')
    Fetcher().read_small(URL)
    assert session.verify == (bundle or True)


MIRROR = 'https://mirror.example/pub/Box.qcow2'


def moved(location, status=302):
    return FakeResponse(status, headers={'Location': location}, reason='Found')


def asked(session):
    return [call.args[0] for call in session.get.call_args_list]


@pytest.mark.parametrize('current,target,same_host,problem', [
    (URL, MIRROR, False, None),
    ('http://boxes.example/B', 'http://mirror.example/B', False, None),
    ('http://boxes.example/B', 'https://mirror.example/B', False, None),
    (URL, 'https://BOXES.example/other/B.sha256', True, None),
    (URL, 'https://boxes.example:443/B.sha256', True, None),
    ('http://boxes.example/B', 'https://boxes.example/B', True, None),
    (URL, 'http://boxes.example/images/Box.qcow2', False,
     f'{URL} redirects to plain http (http://boxes.example/images/Box.qcow2), where anyone '
     'on the way could swap the file: refused; check the box source'),
    (URL, MIRROR, True,
     f'{URL} redirects to another host (mirror.example): the checksums that vouch for a '
     'box are only taken from its source; check the box source'),
    (URL, 'https://boxes.example:8443/B.sha256', True, 'another host'),
    ('http://boxes.example:8080/B', 'https://boxes.example/B', True, 'another host'),
    (URL, 'file:///etc/passwd', False, 'which is no http(s) URL'),
    (URL, 'ftp://boxes.example/B', False, 'which is no http(s) URL'),
    (URL, 'https:///B', False, 'which is no http(s) URL'),
    (URL, 'https://mirror.example:99999/B', False, 'which is no http(s) URL'),
    (URL, 'https://boxes.example:x/B.sha256', True, 'which is no http(s) URL'),
])
def test_redirect_problem(current, target, same_host, problem):
    found = redirect_problem(current, current, target, same_host)
    if problem is None:
        assert found is None
    else:
        assert problem in found


def test_checksum_may_not_leave_the_source_host_in_two_hops():
    hop = 'https://boxes.example/moved/Box.qcow2.sha256'
    assert redirect_problem(URL, hop, 'https://mirror.example/B.sha256', True) == (
        f'{URL} redirects to another host (mirror.example): the checksums that vouch for a '
        'box are only taken from its source; check the box source'
    )


class TestRedirects:
    def test_box_file_from_a_mirror(self, session, tmp_path):
        session.get.side_effect = [moved(MIRROR), FakeResponse(200, DATA)]
        partial = tmp_path / 'box.part'
        Fetcher(retries=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA
        assert asked(session) == [URL, MIRROR]
        assert all(not call.kwargs['allow_redirects'] for call in session.get.call_args_list)

    def test_resume_range_goes_to_the_mirror_too(self, session, tmp_path):
        partial = tmp_path / 'box.part'
        partial.write_bytes(DATA[:4000])
        session.get.side_effect = [moved('/mirrored/Box.qcow2', 307), ranged(4000)]
        Fetcher(retries=0).download(URL, str(partial), DIGEST, 'Box.qcow2')
        assert partial.read_bytes() == DATA
        assert asked(session) == [URL, 'https://boxes.example/mirrored/Box.qcow2']
        assert sent_ranges(session) == ['bytes=4000-', 'bytes=4000-']

    def test_downgrade_to_http_is_refused(self, session, tmp_path):
        session.get.side_effect = [moved(MIRROR), moved('http://mirror.example/Box.qcow2')]
        with pytest.raises(KiwiBoxRedirectError, match=(
            f'^{MIRROR} redirects to plain http .http://mirror.example/Box.qcow2.'
        )):
            Fetcher(retries=3).download(URL, str(tmp_path / 'p'), DIGEST, 'Box.qcow2')
        assert session.get.call_count == 2
        assert not (tmp_path / 'p').exists()

    def test_checksum_stays_on_the_source_host(self, session):
        session.get.side_effect = [moved(MIRROR + '.sha256')]
        with pytest.raises(KiwiBoxRedirectError, match=(
            f'^{URL}.sha256 redirects to another host .mirror.example.'
        )):
            Fetcher(retries=3).read_small(URL + '.sha256')
        assert asked(session) == [URL + '.sha256']

    def test_scheme_relative_location_is_another_host(self, session):
        session.get.side_effect = [moved('//mirror.example/B.sha256')]
        with pytest.raises(KiwiBoxRedirectError, match='redirects to another host .mirror'):
            Fetcher().read_small(URL + '.sha256')

    def test_checksum_moved_on_the_same_host(self, session):
        session.get.side_effect = [moved('../v2/Box.qcow2.sha256', 301), FakeResponse(200, b'd')]
        assert Fetcher().read_small(URL + '.sha256') == b'd'
        assert asked(session)[1] == 'https://boxes.example/v2/Box.qcow2.sha256'

    def test_redirect_loop_ends(self, session, tmp_path):
        session.get.side_effect = lambda url, **kwargs: moved(url)
        with pytest.raises(KiwiBoxRedirectError, match=f'^{URL} redirects more than 10 times'):
            Fetcher(retries=3).download(URL, str(tmp_path / 'p'), DIGEST, 'Box.qcow2')
        assert session.get.call_count == 11

    def test_answer_of_the_mirror_is_named(self, session, tmp_path):
        session.get.side_effect = [moved(MIRROR), FakeResponse(404, reason='Not Found')]
        with pytest.raises(KiwiBoxDownloadError, match=f'^{MIRROR} does not exist .HTTP 404.'):
            Fetcher(retries=0).download(URL, str(tmp_path / 'p'), DIGEST, 'Box.qcow2')

    def test_redirect_without_location_is_an_answer(self, session, tmp_path):
        session.get.return_value = FakeResponse(302, headers={}, reason='Found')
        with pytest.raises(KiwiBoxDownloadError, match=f'^{URL} answered HTTP 302 Found$'):
            Fetcher(retries=0).download(URL, str(tmp_path / 'p'), DIGEST, 'Box.qcow2')
