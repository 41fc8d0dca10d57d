"""
Fetch one box file from an http(s):// or file:// URL.

A box file is streamed into a partial file that the caller names (inside
the cache, so the caller's rename into place is atomic), its sha256 is
computed in the same pass, and it only counts as fetched when the digest
matches the published one. Interrupted transfers are resumed with HTTP
Range, on the next attempt or on the next run.
"""
import errno
import hashlib
import logging
import os
import re
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Callable, Iterator, Optional, Tuple, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxChecksumError,
    KiwiBoxDiskFullError,
    KiwiBoxDownloadError,
)

log = logging.getLogger('kiwi')

T = TypeVar('T')

# answers worth another attempt: the server or a proxy is busy or broken
# for a moment; everything else (404, 403, ...) will not get better
RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)


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
    return type(issue).__name__


class _Progress:
    """
    Progress of one transfer: a progressbar2 bar on a terminal, a log
    line per tenth otherwise (or per 256 MiB when the size is unknown)
    """
    def __init__(self, label: str, total: Optional[int], done: int) -> None:
        self.label = label
        self.total = total
        self.next_report = done
        self.bar: Any = None
        if sys.stderr.isatty():
            import progressbar
            self.bar = progressbar.DataTransferBar(
                max_value=total if total else progressbar.UnknownLength,
                prefix=f'{label} ', fd=sys.stderr
            )
            self.bar.start()
            self.bar.update(done)
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
        mib = done >> 20
        if self.total:
            log.info(f'{self.label}: {mib} of {self.total >> 20} MiB')
            self.next_report = done + max(self.total // 10, 1)
        else:
            log.info(f'{self.label}: {mib} MiB')
            self.next_report = done + (256 << 20)


class _Sink:
    """
    Writes and hashes chunks in a worker thread while the next chunk is
    read: sha256 and the network then cost the time of the slower one,
    not of both (hashlib and file writes release the GIL)
    """
    def __init__(self, handle: IO[bytes], hasher: Any) -> None:
        self.handle = handle
        self.hasher = hasher
        self.worker = ThreadPoolExecutor(max_workers=1)
        self.pending: Optional[Future] = None
        self.written = 0

    def put(self, chunk: bytes) -> None:
        self.drain()
        self.pending = self.worker.submit(self._store, chunk)

    def drain(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        try:
            self.drain()
        finally:
            self.worker.shutdown()

    def _store(self, chunk: bytes) -> None:
        # written first: bytes count as stored, and hashed, together
        self.handle.write(chunk)
        self.hasher.update(chunk)
        self.written += len(chunk)


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
        The whole content of a small file (.sha256, packages list)

        :raises KiwiBoxDownloadError: if it cannot be fetched or is too big
        """
        limit = Defaults.get_small_file_limit()

        def attempt() -> bytes:
            if url.startswith('file:'):
                path = self._local_path(url)
                with self._open_local(url, path) as handle:
                    data = handle.read(limit + 1)
            else:
                with self._get(url, {}) as response:
                    data = b''
                    for chunk in response.iter_content(chunk_size=65536):
                        data += chunk
                        if len(data) > limit:
                            break
            if len(data) > limit:
                raise KiwiBoxDownloadError(
                    f'{url} is larger than {limit >> 20} MiB: check the box source'
                )
            return data
        return self._with_retries(url, attempt)

    def download(self, url: str, partial: str, sha256: str, label: str) -> None:
        """
        Stream a file into partial and verify it against its sha256

        Bytes already in partial are kept and only the rest is requested
        (HTTP Range); a server that ignores the range sends the whole file
        again. On success partial holds the verified file; after a checksum
        mismatch it is removed; after any other failure it is kept so the
        next run resumes.

        :param str url: http(s):// or file:// URL of the file
        :param str partial: path of the partial file, in the cache
        :param str sha256: the published digest
        :param str label: name of the file for progress and messages
        :raises KiwiBoxDownloadError: if the file cannot be fetched
        :raises KiwiBoxChecksumError: if its digest differs from sha256
        :raises KiwiBoxDiskFullError: if the cache has no room for it
        """
        resumed = self._fill(url, partial, label)
        digest = self._digest_of(partial)
        if digest != sha256 and resumed:
            # the kept bytes may stem from an older upload: one clean try
            log.warning(f'{label}: checksum mismatch after resuming, downloading it again')
            os.unlink(partial)
            self._fill(url, partial, label)
            digest = self._digest_of(partial)
        if digest != sha256:
            os.unlink(partial)
            raise KiwiBoxChecksumError(
                f'{label} from {url} does not match its published sha256 '
                f'(got {digest[:16]}..., expected {sha256[:16]}...); '
                'the cached box is left as it was'
            )

    def _digest_of(self, partial: str) -> str:
        digest = self._hashers.pop(partial).hexdigest()
        return digest

    def _fill(self, url: str, partial: str, label: str) -> bool:
        """
        Make partial hold the whole file; True if it started from kept bytes
        """
        hasher = hashlib.sha256()
        if os.path.exists(partial):
            with open(partial, 'rb') as kept:
                for chunk in iter(lambda: kept.read(self.chunk_size), b''):
                    hasher.update(chunk)
        state = {'hasher': hasher, 'resumed': hasher_size(partial) > 0}

        def attempt() -> None:
            self._transfer(url, partial, label, state)
        self._with_retries(url, attempt)
        if not hasattr(self, '_hashers'):
            self._hashers = {}
        self._hashers[partial] = state['hasher']
        return bool(state['resumed'])

    def _transfer(self, url: str, partial: str, label: str, state: dict) -> None:
        offset = hasher_size(partial)
        if url.startswith('file:'):
            path = self._local_path(url)
            source = self._open_local(url, path)
            source.seek(min(offset, os.fstat(source.fileno()).st_size))
            offset = source.tell()
            total: Optional[int] = os.fstat(source.fileno()).st_size
            chunks: Any = iter(lambda: source.read(self.chunk_size), b'')
            closer: Any = source
        else:
            headers = {'Range': f'bytes={offset}-'} if offset else {}
            response = self._get(url, headers)
            closer = response
            if response.status_code == 416:
                # the kept bytes are not a prefix of this file: start over
                response.close()
                self._restart(partial, state)
                raise TransientError('range not satisfiable')
            if response.status_code == 206 and \
                    content_range_start(response.headers.get('Content-Range', '')) != offset:
                response.close()
                self._restart(partial, state)
                raise TransientError('unexpected range in answer')
            if response.status_code == 200:
                offset = 0
            length = response.headers.get('Content-Length')
            total = offset + int(length) if length and length.isdigit() else None
            chunks = response.iter_content(chunk_size=self.chunk_size)
        with closer:
            if offset == 0 and state['resumed'] or offset != hasher_size(partial):
                self._restart(partial, state)
            if total is not None:
                self._check_room(partial, total - offset, label)
            self._stream(chunks, partial, label, total, state)
        if total is not None and hasher_size(partial) < total:
            raise TransientError(f'connection closed after {hasher_size(partial)} of {total} bytes')

    def _stream(
        self, chunks: Any, partial: str, label: str, total: Optional[int], state: dict
    ) -> None:
        progress = _Progress(label, total, hasher_size(partial))
        try:
            with open(partial, 'ab') as handle:
                sink = _Sink(handle, state['hasher'])
                try:
                    for chunk in chunks:
                        sink.put(chunk)
                        progress.update(handle.tell() + len(chunk))
                finally:
                    sink.close()
        except OSError as issue:
            if issue.errno in (errno.ENOSPC, errno.EDQUOT):
                os.unlink(partial)
                raise KiwiBoxDiskFullError(
                    f'no space left in {os.path.dirname(partial)} for {label}: '
                    'free some space or point KIWI_BOXED_CACHE_DIR elsewhere'
                )
            raise
        finally:
            progress.finish()

    @staticmethod
    def _restart(partial: str, state: dict) -> None:
        if os.path.exists(partial):
            os.unlink(partial)
        state['hasher'] = hashlib.sha256()
        state['resumed'] = False

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

    def _get(self, url: str, headers: dict) -> Any:
        if self._session is None:
            import requests
            self._session = requests.Session()
        response = self._session.get(
            url, headers=headers, stream=True, timeout=self.timeouts
        )
        if response.status_code == 416:
            return response
        problem = status_problem(response.status_code, response.reason or '', url)
        if problem:
            response.close()
            if response.status_code in RETRY_STATUS:
                raise TransientError(problem)
            raise KiwiBoxDownloadError(problem)
        if response.headers.get('Content-Type', '').startswith('text/html'):
            response.close()
            raise KiwiBoxDownloadError(
                f'{url} answered with an HTML page instead of the file: '
                'check the box source in the catalog'
            )
        return response

    @staticmethod
    def _local_path(url: str) -> str:
        return url2pathname(urlsplit(url).path)

    @staticmethod
    def _open_local(url: str, path: str) -> IO[bytes]:
        try:
            return open(path, 'rb')
        except OSError as issue:
            raise KiwiBoxDownloadError(
                f'cannot read {url}: {issue.strerror}: check the box source'
            )


def hasher_size(path: str) -> int:
    """
    Bytes in a partial file, 0 when there is none
    """
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def _is_network_error(issue: Exception) -> bool:
    import requests
    return isinstance(issue, (
        requests.ConnectionError, requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    ))
