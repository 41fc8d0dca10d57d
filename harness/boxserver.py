"""
A download server for box trees on 127.0.0.x, with faults on demand.

Serves the files of a directory like the build service's download server
does (Range requests answered with 206), over http or https, and can, per
path, misbehave the ways real servers, proxies and mirrors do. Used
in-process by the integration tests and as a separate process by
bench.download (so that the client's timing is not shared with the
server's Python threads), from the repository root:

    python -m harness.boxserver ROOT     prints the port, serves until killed
"""
import hashlib
import io
import json
import os
import re
import ssl
import sys
import tarfile
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterable, Iterator, List, Optional

# fault names, set per URL path in BoxServer.faults:
#   drop       send half of the body, then close the connection (every time)
#   drop-once  like drop on the first request of the path, then behave
#   no-range   ignore Range headers: always 200 and the whole file
#   chunked    chunked transfer encoding, no Content-Length
#   html-404   404 with an HTML error page
#   html-200   200 with an HTML page (a captive portal, a proxy login)
#   flaky-503  one 503 Service Unavailable, then behave
#   hold       send half of the body, then wait for BoxServer.release
#   stall-once like hold on the first request of the path, then behave
#   redirect   302 to the same path on BoxServer.redirect_to (a mirror)
FAULTS = (
    'drop', 'drop-once', 'no-range', 'chunked', 'html-404', 'html-200', 'flaky-503', 'hold',
    'stall-once', 'redirect'
)
ONCE = ('drop-once', 'flaky-503', 'stall-once')

HTML_PAGE = b'<html><body><h1>404 Not Found</h1></body></html>\n'


class BoxTree:
    """
    File names of a box laid out like the build service publishes it

    :param str name: box name prefix, e.g. 'My-Box'
    """
    def __init__(self, name: str = 'My-Box', arch: str = 'x86_64') -> None:
        self.arch = arch
        self.disk = f'{name}.{arch}-System.qcow2'
        self.tarball = f'{name}.{arch}-Kernel.tar.xz'
        self.packages = f'{name}.{arch}-System.packages'

    def write(
        self, tree: str, disk_blocks: Iterable[bytes],
        kernel: bytes = b'kernel', initrd: bytes = b'initrd'
    ) -> str:
        """
        Write the box files with their .sha256 files into tree

        The disk's .sha256 is written last, so its presence marks a
        complete tree. Returns the disk's digest.
        """
        os.makedirs(tree, exist_ok=True)
        hasher = hashlib.sha256()
        with open(os.path.join(tree, self.disk), 'wb') as disk:
            for block in disk_blocks:
                disk.write(block)
                hasher.update(block)
        with tarfile.open(os.path.join(tree, self.tarball), 'w:xz') as archive:
            for member, data in (('box-1.0.kernel', kernel), ('box-1.0.initrd', initrd)):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        with open(os.path.join(tree, self.tarball), 'rb') as handle:
            self._write(tree, self.tarball + '.sha256', hashlib.sha256(handle.read()))
        self._write(tree, self.packages, None, f'box|{hasher.hexdigest()[:8]}|{self.arch}\n')
        self._write(tree, self.disk + '.sha256', hasher)
        return hasher.hexdigest()

    def catalog(self, path: str, box: str, source: str, allow_http: bool = True) -> str:
        """
        Write a user catalog with this box at path, return the path

        :param bool allow_http: opt in to a plain http source (the
            box server's default)
        """
        with open(path, 'w') as handle:
            handle.write(
                f'box:\n  - name: {box}\n    mem_mb: 1G\n    arch:\n'
                f'      - name: {self.arch}\n        source: "{source}"\n'
                f'        packages_file: {self.packages}\n'
                f'        boxfiles: [{self.tarball}, {self.disk}]\n'
                '        use_initrd: true\n'
            )
            if allow_http and source.startswith('http://'):
                handle.write('        allow_http: true\n')
        return path

    def _write(self, tree: str, name: str, hasher: object, text: str = '') -> None:
        with open(os.path.join(tree, name), 'w') as handle:
            handle.write(text or f'{hasher.hexdigest()}  {name[:-7]}\n')  # type: ignore


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # clients that go away mid-transfer are what the tests provoke
        pass


class BoxServer:
    """
    The server state the tests read and change

    :param str root: directory served
    :param str host: the 127.0.0.x address to listen on
    :param ssl.SSLContext tls: serve https with this context
    """
    def __init__(
        self, root: str, host: str = '127.0.0.1', tls: Optional[ssl.SSLContext] = None
    ) -> None:
        self.root = root
        self.faults: Dict[str, str] = {}
        # base URL the 'redirect' fault sends clients to
        self.redirect_to = ''
        self.requests: List[str] = []
        self.ranges: List[str] = []
        self.body_bytes: Dict[str, int] = {}
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.httpd = _QuietServer((host, 0), self._handler())
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"

    def sent(self, path: str) -> int:
        """
        Body bytes sent for a URL path
        """
        with self.lock:
            return self.body_bytes.get(path, 0)

    def reset_counters(self) -> None:
        with self.lock:
            self.requests.clear()
            self.ranges.clear()
            self.body_bytes.clear()

    def _handler(self) -> type:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split('?')[0]
                with server.lock:
                    server.requests.append(path)
                    server.ranges.append(self.headers.get('Range', ''))
                    fault = server.faults.get(path, '')
                    if fault in ONCE:
                        server.faults.pop(path)
                if path == '/_stats':
                    return self._answer(200, json.dumps(server.body_bytes).encode())
                if fault == 'html-404':
                    return self._answer(404, HTML_PAGE, 'text/html')
                if fault == 'html-200':
                    return self._answer(200, HTML_PAGE, 'text/html')
                if fault == 'flaky-503':
                    return self._answer(503, b'busy\n')
                if fault == 'redirect':
                    return self._answer(302, b'', headers={'Location': server.redirect_to + path})
                local = os.path.join(server.root, path.lstrip('/'))
                if '..' in path.split('/') or not os.path.isfile(local):
                    return self._answer(404, b'not found\n')
                self._send_file(path, local, fault)

            def _answer(
                self, status: int, body: bytes, kind: str = 'text/plain',
                headers: Optional[Dict[str, str]] = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header('Content-Type', kind)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _send_file(self, path: str, local: str, fault: str) -> None:
                size = os.path.getsize(local)
                start = self._range_start(size) if fault != 'no-range' else None
                if start is not None and start >= size:
                    self.send_response(416)
                    self.send_header('Content-Range', f'bytes */{size}')
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                self.send_response(200 if start is None else 206)
                start = start or 0
                self.send_header('Content-Type', 'application/octet-stream')
                self.send_header('Accept-Ranges', 'bytes')
                if start:
                    self.send_header('Content-Range', f'bytes {start}-{size - 1}/{size}')
                if fault == 'chunked':
                    self.send_header('Transfer-Encoding', 'chunked')
                else:
                    self.send_header('Content-Length', str(size - start))
                self.end_headers()
                with open(local, 'rb') as handle:
                    if fault == 'chunked':
                        self._send_chunked(path, handle, start)
                    else:
                        held = fault in ('hold', 'stall-once')
                        half = start + (size - start) // 2
                        stop = half if fault.startswith('drop') or held else size
                        self._sendfile(path, handle, start, stop)
                        if held:
                            server.release.wait(timeout=120)
                            self._sendfile(path, handle, stop, size)
                if fault.startswith('drop'):
                    self.close_connection = True

            def _sendfile(self, path: str, handle: object, start: int, stop: int) -> None:
                self.wfile.flush()
                offset = start
                while offset < stop:
                    # the socket's sendfile: os.sendfile on a plain socket,
                    # through TLS on an https one
                    sent = self.connection.sendfile(  # type: ignore
                        handle, offset, min(stop - offset, 16 << 20)
                    )
                    if sent == 0:
                        break
                    offset += sent
                    self._count(path, sent)

            def _send_chunked(self, path: str, handle: object, start: int) -> None:
                handle.seek(start)  # type: ignore
                while True:
                    chunk = handle.read(100003)  # type: ignore
                    self.wfile.write(b'%x\r\n%s\r\n' % (len(chunk), chunk))
                    self._count(path, len(chunk))
                    if not chunk:
                        break

            def _range_start(self, size: int) -> Optional[int]:
                match = re.fullmatch(r'bytes=(\d+)-', self.headers.get('Range', ''))
                return int(match.group(1)) if match else None

            def _count(self, path: str, sent: int) -> None:
                with server.lock:
                    server.body_bytes[path] = server.body_bytes.get(path, 0) + sent

        return Handler


@contextmanager
def serving(
    root: str, host: str = '127.0.0.1', tls: Optional[ssl.SSLContext] = None
) -> Iterator[BoxServer]:
    """
    A BoxServer answering in a thread until the block ends
    """
    server = BoxServer(root, host, tls)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        # let held answers end, so that shutdown does not wait for them
        server.release.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join()


if __name__ == '__main__':
    standalone = BoxServer(sys.argv[1])
    print(standalone.port, flush=True)
    standalone.httpd.serve_forever()
