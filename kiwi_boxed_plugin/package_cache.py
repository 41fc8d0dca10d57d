"""
The package cache of a box: an HTTP proxy on the host's loopback that
the box's package manager fetches through, keeping the packages it
fetched in a directory of the user's cache, per box and arch, for the
next build.

Why a proxy on the host and not a shared directory: a build is code of
its description's author and runs as root in the box. A cache directory
the box could write would let one build put its own package under a
name that a later build installs (apt takes a file of the right size
from its archive directory without checking its hash). The box only
asks the proxy for URLs; what lands in the cache is what the proxy
itself fetched from that URL, stored under a hash of the whole URL, so
a build can change no entry of another repository. apt checks every
file the proxy serves against the hashes of the repository's index, as
for any download.

What is kept: package files (.deb, .udeb) and index files fetched by
hash (.../by-hash/<algorithm>/<hash>), both immutable by the archive's
rules: a new version gets a new name. Everything else (InRelease,
Release, indexes by name) passes through, so the box always sees the
repository as it is now.

Several builds at once share a cache: every entry is written to a file
of its own and renamed into place when complete, and renaming the same
content twice is harmless.
"""
import hashlib
import http.client
import ipaddress
import logging
import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import KiwiBoxPackageCacheError

log = logging.getLogger('kiwi')

# KIWI_BOXED_PACKAGE_CACHE: another directory for the package cache, or
# PACKAGE_CACHE_OFF for none
PACKAGE_CACHE_VARIABLE = 'KIWI_BOXED_PACKAGE_CACHE'
PACKAGE_CACHE_OFF = 'off'
# entries no build asked for in this many days are removed
UNUSED_DAYS = 30
# a part file this old belongs to a run that was killed
STALE_PART_SECONDS = 3600
PART_SUFFIX = '.part'
CHUNK = 1024 * 1024
UPSTREAM_TIMEOUT = 60
# the headers that concern one connection only, never passed on
HOP_BY_HOP = {
    'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
    'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
}
# what a cached entry is served as
PACKAGE_TYPE = 'application/octet-stream'


def package_cache_dir(box_name: str, arch: str) -> str:
    """
    The cache directory of a box and arch, '' when the user turned the
    cache off
    """
    chosen = os.environ.get(PACKAGE_CACHE_VARIABLE, '')
    if chosen == PACKAGE_CACHE_OFF:
        return ''
    if chosen:
        return os.path.join(os.path.abspath(chosen), box_name, arch)
    return os.path.join(Defaults.get_cache_root(), 'packages', box_name, arch)


def is_cacheable(path: str) -> bool:
    """
    Whether a URL path names a file that never changes under its name
    """
    name = path.rsplit('/', 1)[-1]
    return name.endswith(('.deb', '.udeb')) or '/by-hash/' in path


def entry_name(url: str) -> str:
    return hashlib.sha256(url.encode('utf-8')).hexdigest()


@dataclass
class CacheCount:
    """
    What the cache did in one run
    """
    served: int = 0
    fetched: int = 0
    fetched_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, served: int = 0, fetched: int = 0, fetched_bytes: int = 0) -> None:
        with self.lock:
            self.served += served
            self.fetched += fetched
            self.fetched_bytes += fetched_bytes

    def summary(self, directory: str) -> str:
        return (
            f'package cache: {self.served} served from the cache, {self.fetched} fetched '
            f'({self.fetched_bytes / 2**20:.1f} MiB) into {directory}'
        )


class UpstreamError(Exception):
    """
    The proxy cannot reach or may not reach what the box asked for
    """


def upstream_address(host: str, port: int, allow_loopback: bool) -> Tuple[str, int]:
    """
    The address to connect to for host, resolved once here so that the
    check and the connection see the same address

    :raises UpstreamError: if the name does not resolve or is the
        host's loopback, which the box must not reach
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as issue:
        raise UpstreamError(f'cannot resolve {host}: {issue}')
    for _family, _type, _proto, _name, address in found:
        text = str(address[0])
        ip = ipaddress.ip_address(text.split('%', 1)[0])
        # ::ffff:127.0.0.1 is the loopback as well
        mapped = getattr(ip, 'ipv4_mapped', None)
        if mapped:
            ip = mapped
        if ip.is_loopback or ip.is_unspecified:
            if not allow_loopback:
                raise UpstreamError(
                    f"{host} is the host's loopback, which the box network keeps out"
                )
        return text, port
    raise UpstreamError(f'{host} has no address')


class ProxyHandler(BaseHTTPRequestHandler):
    """
    One connection of the box: GET and HEAD of absolute http URLs
    """
    protocol_version = 'HTTP/1.1'
    server: 'PackageProxy'

    def log_message(self, format: str, *args: object) -> None:
        # every request in the log would drown kiwi's own lines
        pass

    def do_GET(self) -> None:
        self.handle_request(send_body=True)

    def do_HEAD(self) -> None:
        self.handle_request(send_body=False)

    def refuse(self, status: int, reason: str) -> None:
        body = (reason + '\n').encode('utf-8')
        self.send_response(status, reason)
        self.send_header('Content-Type', 'text/plain; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def do_POST(self) -> None:
        self.refuse(405, 'the box package proxy forwards GET and HEAD only')

    do_PUT = do_DELETE = do_CONNECT = do_OPTIONS = do_PATCH = do_POST

    def handle_request(self, send_body: bool) -> None:
        try:
            url = urlsplit(self.path)
            url.port
        except ValueError:
            url = None
        if not url or url.scheme != 'http' or not url.hostname:
            self.refuse(400, 'the box package proxy takes absolute http:// URLs only')
            return
        cache = self.server.cache_dir
        if send_body and is_cacheable(url.path):
            entry = os.path.join(cache, entry_name(self.path))
            if self.serve_entry(entry):
                self.server.count.add(served=1)
                log.debug(f'package cache: from the cache {url.path.rsplit("/", 1)[-1]}')
                return
        try:
            upstream, response = self.fetch(url, keep_conditions=not is_cacheable(url.path))
        except (UpstreamError, OSError, http.client.HTTPException) as issue:
            self.refuse(502, f'the box package proxy cannot fetch {self.path}: {issue}')
            return
        try:
            self.pass_on(url.path, response, send_body)
        finally:
            upstream.close()

    def serve_entry(self, entry: str) -> bool:
        try:
            cached = open(entry, 'rb')
        except OSError:
            return False
        with cached:
            size = os.fstat(cached.fileno()).st_size
            # the time of last use, by which unused entries are removed
            os.utime(entry)
            self.send_response(200)
            self.send_header('Content-Type', PACKAGE_TYPE)
            self.send_header('Content-Length', str(size))
            self.end_headers()
            # an entry is replaced by rename, never written in place: the
            # open file keeps the size just sent
            shutil.copyfileobj(cached, self.wfile, CHUNK)
        return True

    def fetch(
        self, url, keep_conditions: bool
    ) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """
        The request of the box, sent on to the repository

        :param bool keep_conditions: pass on If-* and Range headers; not
            for an entry to be cached, which must come whole
        """
        address, port = upstream_address(
            url.hostname, url.port or 80, self.server.allow_loopback
        )
        upstream = http.client.HTTPConnection(address, port, timeout=UPSTREAM_TIMEOUT)
        target = url.path or '/'
        if url.query:
            target += '?' + url.query
        upstream.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
        upstream.putheader('Host', url.netloc.rsplit('@', 1)[-1])
        for name, value in self.headers.items():
            lowered = name.lower()
            if lowered in HOP_BY_HOP or lowered == 'host':
                continue
            if not keep_conditions and (lowered.startswith('if-') or lowered == 'range'):
                continue
            upstream.putheader(name, value)
        upstream.putheader('Connection', 'close')
        upstream.endheaders()
        return upstream, upstream.getresponse()

    def pass_on(self, path: str, response: http.client.HTTPResponse, send_body: bool) -> None:
        """
        The repository's answer to the box; a whole cacheable file also
        into the cache
        """
        length = response.getheader('Content-Length')
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != 'content-length':
                self.send_header(name, value)
        if length is not None and length.isdigit():
            self.send_header('Content-Length', length)
        else:
            # without a length the end of the body is the end of the
            # connection
            self.close_connection = True
            self.send_header('Connection', 'close')
        self.end_headers()
        if not send_body:
            return
        if response.status == 200 and is_cacheable(path):
            size = self.store(path, response, int(length) if length and length.isdigit() else -1)
            self.server.count.add(fetched=1, fetched_bytes=size)
            log.debug(f'package cache: fetched {path.rsplit("/", 1)[-1]}')
        else:
            shutil.copyfileobj(response, self.wfile, CHUNK)

    def store(self, path: str, response: http.client.HTTPResponse, length: int) -> int:
        """
        Copy the body to the box and into a part file, renamed to the
        entry when complete

        :return: bytes copied
        """
        cache = self.server.cache_dir
        entry = os.path.join(cache, entry_name(self.path))
        part = f'{entry}.{os.getpid()}.{threading.get_ident()}{PART_SUFFIX}'
        size = 0
        with open(part, 'wb') as stored:
            try:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    stored.write(chunk)
                    self.wfile.write(chunk)
                    size += len(chunk)
            except BaseException:
                stored.close()
                os.unlink(part)
                raise
        if length < 0 or size == length:
            os.replace(part, entry)
        else:
            os.unlink(part)
        return size


class PackageProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cache_dir: str, allow_loopback: bool) -> None:
        super().__init__(('127.0.0.1', 0), ProxyHandler)
        self.cache_dir = cache_dir
        self.allow_loopback = allow_loopback
        self.count = CacheCount()

    @property
    def port(self) -> int:
        return self.server_address[1]


def tidy(cache_dir: str, now: float) -> None:
    """
    Remove entries unused for UNUSED_DAYS and part files of killed runs
    """
    for name in os.listdir(cache_dir):
        path = os.path.join(cache_dir, name)
        try:
            age = now - os.stat(path).st_mtime
        except OSError:
            continue
        too_old = STALE_PART_SECONDS if name.endswith(PART_SUFFIX) else UNUSED_DAYS * 86400
        if age > too_old:
            try:
                os.unlink(path)
            except OSError:
                pass


def open_cache_dir(cache_dir: str) -> None:
    """
    :raises KiwiBoxPackageCacheError: if the directory cannot be made
        or written
    """
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        if not os.access(cache_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, 'not writable')
        tidy(cache_dir, time.time())
    except OSError as issue:
        raise KiwiBoxPackageCacheError(
            f'cannot use the package cache {cache_dir}: {issue.strerror}; set '
            f'{PACKAGE_CACHE_VARIABLE} to another directory or to {PACKAGE_CACHE_OFF}'
        )


@contextmanager
def package_proxy(cache_dir: str, allow_loopback: bool) -> Iterator[Optional[PackageProxy]]:
    """
    The package proxy of one run for the with-block, None when the
    cache is off; a line with what it served at the end

    :param bool allow_loopback: the box may reach the host's loopback
        anyway (KIWI_BOXED_NETWORK=host)
    """
    if not cache_dir:
        yield None
        return
    open_cache_dir(cache_dir)
    proxy = PackageProxy(cache_dir, allow_loopback)
    serving = threading.Thread(target=proxy.serve_forever, name='package-proxy', daemon=True)
    serving.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        serving.join()
        log.info(proxy.count.summary(cache_dir))


def cached_entries(cache_dir: str) -> List[str]:
    """
    The complete entries of a cache directory
    """
    return sorted(
        name for name in os.listdir(cache_dir) if not name.endswith(PART_SUFFIX)
    )
