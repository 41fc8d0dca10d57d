"""
Fetch one box file from an http(s):// or file:// URL.

A box file is streamed into a partial file that the caller names (inside
the cache, so the caller's rename into place is atomic), its sha256 is
computed in the same pass, and it only counts as fetched when the digest
matches the published one. Interrupted transfers are resumed with HTTP
Range, on the next attempt or on the next run.

Redirects are followed one hop at a time, each hop checked: never from
https to plain http, and the small files (the .sha256 files that vouch
for a box, the packages list) never to another host, so a mirror that
serves a box file cannot also serve the digest it is checked against.
"""
import errno
import hashlib
import logging
import os
import re
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Callable, Iterator, List, Optional, Tuple, TypeVar
from urllib.parse import SplitResult, urljoin, urlsplit
from urllib.request import url2pathname

from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxChecksumError,
    KiwiBoxDiskFullError,
    KiwiBoxDownloadError,
    KiwiBoxRedirectError,
)

log = logging.getLogger('kiwi')

T = TypeVar('T')

# answers worth another attempt: the server or a proxy is busy or broken
# for a moment; everything else (404, 403, ...) will not get better
RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)

# answers that send the client elsewhere: followed by hand, hop by hop
REDIRECT_STATUS = (301, 302, 303, 307, 308)
# what a download server and its mirror network need, with room to spare
MAX_REDIRECTS = 10

DEFAULT_PORTS = {'http': 80, 'https': 443}


CLOSED_EARLY = 'the connection closed before the end of the file'


class TransientError(Exception):
    """
    A failed attempt that a retry may fix (not a KiwiError: it never
    leaves this module)
    """


def parse_sha256_file(text: bytes, url: str) -> str:
    """
    The digest of a published .sha256 file: its first field

    :raises KiwiBoxChecksumError: if that is not a sha256 hex digest
    """
    fields = text.split()
    digest = fields[0].decode('ascii', 'replace').lower() if fields else ''
    if not re.fullmatch(r'[0-9a-f]{64}', digest):
        raise KiwiBoxChecksumError(
            f'{url} holds no sha256 digest: check the box source'
        )
    return digest


def retry_delays(retries: int, backoff: float) -> Iterator[float]:
    """
    The waits before each retry: backoff, doubled every time
    """
    for attempt in range(retries):
        yield backoff * (2 ** attempt)


def status_problem(status: int, reason: str, url: str) -> Optional[str]:
    """
    None for a usable answer, else what the HTTP status means for the user
    """
    if status in (200, 206):
        return None
    if status == 404:
        return f'{url} does not exist (HTTP 404): check the box source in the catalog'
    if status in (401, 403):
        return f'{url} is not accessible (HTTP {status} {reason})'
    return f'{url} answered HTTP {status} {reason}'.rstrip()


def redirect_problem(origin: str, current: str, target: str, same_host: bool) -> Optional[str]:
    """
    None if the redirect from current to target may be followed, else why not

    :param str origin: the URL first asked for
    :param bool same_host: the file must come from the host of origin
    """
    to = urlsplit(target)
    if to.scheme not in DEFAULT_PORTS or not to.hostname or not _has_valid_port(to):
        return f'{current} redirects to {target}, which is no http(s) URL: check the box source'
    if urlsplit(current).scheme == 'https' and to.scheme == 'http':
        return (
            f'{current} redirects to plain http ({target}), where anyone on the way '
            'could swap the file: refused; check the box source'
        )
    if same_host and not is_same_host(urlsplit(origin), to):
        return (
            f'{origin} redirects to another host ({to.netloc}): the checksums that '
            'vouch for a box are only taken from its source; check the box source'
        )
    return None


def _has_valid_port(parts: SplitResult) -> bool:
    try:
        parts.port
    except ValueError:
        return False
    return True


def is_same_host(origin: SplitResult, target: SplitResult) -> bool:
    """
    Whether target is served by the host and port of origin; a move from
    http to https on the default ports is the same host made safer
    """
    if origin.hostname != target.hostname:
        return False
    if origin.scheme == 'http' and target.scheme == 'https' and \
            origin.port is None and target.port is None:
        return True
    return (origin.port or DEFAULT_PORTS[origin.scheme]) == \
        (target.port or DEFAULT_PORTS[target.scheme])


def content_range_start(header: str) -> int:
    """
    The first byte of a 'Content-Range: bytes A-B/N' header, -1 if unreadable
    """
    match = re.fullmatch(r'\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*', header or '')
    return int(match.group(1)) if match else -1


def connection_reason(issue: Exception) -> str:
    """
    The root cause of a requests/urllib3 error in a few words

    requests nests the OS error several levels deep in a long text;
    the errno text is what tells the user something.
    """
    text = str(issue)
    match = re.search(r'\[Errno -?\d+\] ([^\'")\]]+)', text)
    if match:
        return match.group(1).strip()
    if 'timed out' in text.lower():
        return 'timed out'
    if 'IncompleteRead' in text or 'Connection broken' in text:
        return CLOSED_EARLY
    return type(issue).__name__


def human_size(size: int) -> str:
    """
    A byte count for people: 512 B, 1.5 KiB, 3.0 MiB, 1.2 GiB
    """
    value = float(size)
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if value < 1024 or unit == 'GiB':
            return f'{size} B' if unit == 'B' else f'{value:.1f} {unit}'
        value /= 1024
    return ''


class _Progress:
    """
    Progress of one transfer: a progressbar2 bar with size, rate and ETA
    on a terminal; otherwise a log line per tenth (per 256 MiB when the
    size is unknown), and none for files too small to take a while
    """
    QUIET_BELOW = 64 << 20

    def __init__(self, label: str, total: Optional[int], done: int) -> None:
        self.label = label
        self.total = total
        self.next_report = done
        self.bar: Any = None
        if sys.stderr.isatty():
            import progressbar
            known = [
                progressbar.Percentage(), ' of ', progressbar.DataSize('max_value'), ' ',
                progressbar.Bar(), ' ', progressbar.FileTransferSpeed(), ' ',
                progressbar.ETA()
            ]
            unknown = [
                progressbar.DataSize(), ' ', progressbar.FileTransferSpeed(), ' ',
                progressbar.Timer()
            ]
            self.bar = progressbar.ProgressBar(
                max_value=total if total else progressbar.UnknownLength,
                widgets=[f'{label} '] + (known if total else unknown), fd=sys.stderr,
                is_terminal=True
            )
            self.bar.start()
            self.bar.update(done)
        elif total is not None and total < self.QUIET_BELOW:
            self.next_report = total + 1
        else:
            self._log(done)

    def update(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done)
        elif done >= self.next_report:
            self._log(done)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.finish()

    def _log(self, done: int) -> None:
        if self.total:
            log.info(f'{self.label}: {human_size(done)} of {human_size(self.total)}')
            self.next_report = done + self.total // 10
        else:
            log.info(f'{self.label}: {human_size(done)}')
            self.next_report = done + (256 << 20)


class _Sink:
    """
    Writes and hashes each chunk in two worker threads while the next
    chunk is read: the transfer then takes as long as the slowest of
    network, disk and sha256, not their sum (socket reads, file writes and
    hashlib all release the GIL). At most two chunks are in flight.
    """
    def __init__(self, handle: IO[bytes], hasher: Any) -> None:
        self.handle = handle
        self.hasher = hasher
        self.writer = ThreadPoolExecutor(max_workers=1)
        self.digester = ThreadPoolExecutor(max_workers=1)
        self.pending: List[Tuple[Future, Future]] = []

    def put(self, chunk: bytes) -> None:
        if len(self.pending) >= 2:
            self._wait(self.pending.pop(0))
        self.pending.append((
            self.writer.submit(self.handle.write, chunk),
            self.digester.submit(self.hasher.update, chunk)
        ))

    def close(self) -> None:
        """
        Wait until every chunk put is written and hashed

        Both workers finish their queues even when one failed, so on a
        network error the file and the hash hold the same bytes for the
        retry that resumes.
        """
        try:
            while self.pending:
                self._wait(self.pending.pop(0))
        finally:
            self.writer.shutdown()
            self.digester.shutdown()

    @staticmethod
    def _wait(futures: Tuple[Future, Future]) -> None:
        for future in futures:
            future.result()


class _Partial:
    """
    A partial file and the sha256 of the bytes it holds so far

    Bytes kept from an earlier run are hashed once when it is opened;
    after that the hash grows with every chunk written.
    """
    def __init__(self, path: str, chunk_size: int) -> None:
        self.path = path
        self.hasher = hashlib.sha256()
        self.resumed = False
        if os.path.exists(path):
            with open(path, 'rb') as kept:
                for chunk in iter(lambda: kept.read(chunk_size), b''):
                    self.hasher.update(chunk)
            self.resumed = self.size() > 0

    def size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def restart(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.hasher = hashlib.sha256()
        self.resumed = False


class Fetcher:
    """
    Fetches files from http://, https:// and file:// URLs

    :param tuple timeouts: seconds to connect, seconds of read silence
    :param int retries: retries after a failed attempt
    :param float backoff: seconds before the first retry, then doubled
    """
    def __init__(
        self, timeouts: Optional[Tuple[float, float]] = None,
        retries: Optional[int] = None, backoff: Optional[float] = None
    ) -> None:
        self.timeouts = timeouts or Defaults.get_download_timeouts()
        self.retries = Defaults.get_download_retries() if retries is None else retries
        self.backoff = Defaults.get_download_backoff() if backoff is None else backoff
        self.chunk_size = Defaults.get_download_chunk_size()
        self._session: Any = None

    def read_small(self, url: str) -> bytes:
        """
        The whole content of a small file (.sha256, packages list), from
        the host of url itself (redirects to another host are refused)

        :raises KiwiBoxDownloadError: if it cannot be fetched or is too big
        :raises KiwiBoxRedirectError: if it is redirected elsewhere
        """
        limit = Defaults.get_small_file_limit()

        def attempt() -> bytes:
            data = bytearray()
            if url.startswith('file:'):
                with self._open_local(url) as handle:
                    data += handle.read(limit + 1)
            else:
                with self._get(url, {}, same_host=True) as response:
                    for chunk in response.iter_content(chunk_size=65536):
                        data += chunk
                        if len(data) > limit:
                            break
            if len(data) > limit:
                raise KiwiBoxDownloadError(
                    f'{url} is larger than {limit >> 20} MiB: check the box source'
                )
            return bytes(data)
        return self._with_retries(url, attempt)

    def download(self, url: str, partial: str, sha256: str, label: str) -> None:
        """
        Stream a file into partial and verify it against its sha256

        Bytes already in partial are kept and only the rest is requested
        (HTTP Range); a server that ignores the range sends the whole file
        again; a partial that is already complete is not fetched again.
        On success partial holds the verified file; after a checksum
        mismatch it is removed; after any other failure it is kept so the
        next run resumes.

        :param str url: http(s):// or file:// URL of the file
        :param str partial: path of the partial file, in the cache
        :param str sha256: the published digest
        :param str label: name of the file for progress and messages
        :raises KiwiBoxDownloadError: if the file cannot be fetched
        :raises KiwiBoxRedirectError: if it is redirected from https to http
        :raises KiwiBoxChecksumError: if its digest differs from sha256
        :raises KiwiBoxDiskFullError: if the cache has no room for it
        """
        target = _Partial(partial, self.chunk_size)
        if target.hasher.hexdigest() == sha256:
            # fetched and verified by a run that failed on another file
            return
        self._with_retries(url, lambda: self._transfer(url, target, label))
        if target.hasher.hexdigest() != sha256 and target.resumed:
            # the kept bytes may stem from an older upload: one clean try
            log.warning(f'{label}: checksum mismatch after resuming, downloading it again')
            target.restart()
            self._with_retries(url, lambda: self._transfer(url, target, label))
        digest = target.hasher.hexdigest()
        if digest != sha256:
            target.restart()
            raise KiwiBoxChecksumError(
                f'{label} from {url} does not match its published sha256 '
                f'(got {digest[:16]}..., expected {sha256[:16]}...); '
                'the cached box is left as it was'
            )

    def _transfer(self, url: str, target: '_Partial', label: str) -> None:
        """
        One attempt: append the missing bytes to target
        """
        offset = target.size()
        if url.startswith('file:'):
            source: Any = self._open_local(url)
            total: Optional[int] = os.fstat(source.fileno()).st_size
            if offset > (total or 0):
                offset = 0
            source.seek(offset)
            chunks: Any = iter(lambda: source.read(self.chunk_size), b'')
        else:
            source = self._get(url, {'Range': f'bytes={offset}-'} if offset else {})
            if source.status_code == 416 or source.status_code == 206 and \
                    content_range_start(source.headers.get('Content-Range', '')) != offset:
                # the kept bytes do not fit this file: start over
                source.close()
                target.restart()
                raise TransientError('the server refused to resume, starting over')
            if source.status_code == 200:
                offset = 0
            length = source.headers.get('Content-Length', '')
            total = offset + int(length) if length.isdigit() else None
            chunks = source.iter_content(chunk_size=self.chunk_size)
        with source:
            if offset != target.size():
                target.restart()
            if total is not None:
                self._check_room(target.path, total - offset, label)
            self._stream(chunks, target, label, total)
        if total is not None and target.size() < total:
            raise TransientError(CLOSED_EARLY)

    def _stream(
        self, chunks: Any, target: '_Partial', label: str, total: Optional[int]
    ) -> None:
        done = target.size()
        progress = _Progress(label, total, done)
        try:
            with open(target.path, 'ab') as handle:
                sink = _Sink(handle, target.hasher)
                try:
                    for chunk in chunks:
                        sink.put(chunk)
                        done += len(chunk)
                        progress.update(done)
                finally:
                    sink.close()
        except OSError as issue:
            if issue.errno in (errno.ENOSPC, errno.EDQUOT):
                target.restart()
                raise KiwiBoxDiskFullError(
                    f'no space left in {os.path.dirname(target.path)} for {label}: '
                    'free some space or point KIWI_BOXED_CACHE_DIR elsewhere'
                )
            raise
        finally:
            progress.finish()

    @staticmethod
    def _check_room(partial: str, needed: int, label: str) -> None:
        stat = os.statvfs(os.path.dirname(partial) or '.')
        free = stat.f_bavail * stat.f_frsize
        if needed > free:
            raise KiwiBoxDiskFullError(
                f'{label} needs {needed >> 20} MiB but {os.path.dirname(partial)} '
                f'has {free >> 20} MiB free: free some space or point '
                'KIWI_BOXED_CACHE_DIR elsewhere'
            )

    def _with_retries(self, url: str, attempt: Callable[[], T]) -> T:
        delays = retry_delays(self.retries, self.backoff)
        while True:
            try:
                return attempt()
            except TransientError as issue:
                reason = str(issue)
            except Exception as issue:
                if not _is_network_error(issue):
                    raise
                reason = connection_reason(issue)
            delay = next(delays, None)
            if delay is None:
                raise KiwiBoxDownloadError(
                    f'cannot fetch {url}: {reason} (gave up after '
                    f'{self.retries + 1} attempts)'
                )
            log.warning(f'fetching {url}: {reason}; retrying in {delay:g}s')
            time.sleep(delay)

    def _get(self, url: str, headers: dict, same_host: bool = False) -> Any:
        """
        The answer to a GET of url, after the redirects that may be followed

        :param bool same_host: redirects must stay on the host of url
        """
        if self._session is None:
            import requests
            self._session = requests.Session()
            # $REQUESTS_CA_BUNDLE and $CURL_CA_BUNDLE still take precedence
            self._session.verify = Defaults.get_ca_bundle() or True
            # resumed ranges count bytes of the file as stored: no
            # content coding may stand between them
            self._session.headers['Accept-Encoding'] = 'identity'
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            response = self._session.get(
                current, headers=headers, stream=True, timeout=self.timeouts,
                allow_redirects=False
            )
            location = response.headers.get('Location', '')
            if response.status_code not in REDIRECT_STATUS or not location:
                break
            response.close()
            target = urljoin(current, location)
            problem = redirect_problem(url, current, target, same_host)
            if problem:
                raise KiwiBoxRedirectError(problem)
            log.debug(f'{current} redirects to {target}')
            current = target
        else:
            raise KiwiBoxRedirectError(
                f'{url} redirects more than {MAX_REDIRECTS} times: check the box source'
            )
        if response.status_code == 416:
            # for the caller: the kept bytes do not fit the file
            return response
        problem = status_problem(response.status_code, response.reason or '', current)
        if problem:
            response.close()
            if response.status_code in RETRY_STATUS:
                raise TransientError(problem)
            raise KiwiBoxDownloadError(problem)
        if response.headers.get('Content-Type', '').startswith('text/html'):
            response.close()
            raise KiwiBoxDownloadError(
                f'{current} answered with an HTML page instead of the file: '
                'check the box source in the catalog'
            )
        return response

    @staticmethod
    def _open_local(url: str) -> IO[bytes]:
        try:
            return open(url2pathname(urlsplit(url).path), 'rb')
        except OSError as issue:
            raise KiwiBoxDownloadError(
                f'cannot read {url}: {issue.strerror}: check the box source'
            )


def _is_network_error(issue: Exception) -> bool:
    import requests
    return isinstance(issue, (
        requests.ConnectionError, requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    ))
