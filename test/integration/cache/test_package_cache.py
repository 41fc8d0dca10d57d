"""
The box package cache with real apt and the host's mirror: two proxies
(as two boxbuilds run them) filled by two apt clients at once, checked
entry by entry against the repository's hashes; a third run served from
the cache alone; a tampered entry caught by apt; a request for another
server's file under the mirror's path cached apart from the mirror's.
"""
import hashlib
import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.minbase import debian_mirror
from harness.package_proxy import apt_argv, proxy_process
from kiwi_boxed_plugin.package_cache import cached_entries, entry_name

pytestmark = [pytest.mark.integration]

# packages the host does not have installed, and some it has: apt
# downloads them either way
PACKAGES = [
    'hello', 'sl', 'netbase', 'cowsay', 'fortune-mod', 'figlet', 'tree', 'jq', 'libjq1',
    'libonig5', 'bc', 'dc', 'ed', 'units', 'cmatrix', 'toilet', 'lolcat', 'pv',
]
URI_LINE = re.compile(
    r"^'(?P<url>[^']+)' (?P<name>\S+) (?P<size>\d+) SHA256:(?P<sha256>[0-9a-f]{64})$"
)


@pytest.fixture(scope='module')
def mirror() -> str:
    return debian_mirror()


def run_apt(state_dir, mirror, port, *command, cwd=None):
    return subprocess.run(
        apt_argv(state_dir, mirror, port, *command), cwd=cwd,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600
    )


def fetch_with_apt(state_dir, download_dir, mirror, port, results, key):
    os.makedirs(download_dir, exist_ok=True)
    update = run_apt(state_dir, mirror, port, 'update')
    download = run_apt(state_dir, mirror, port, 'download', *PACKAGES, cwd=download_dir)
    results[key] = (update, download)


def expected_files(state_dir, mirror, port):
    """
    url -> sha256 of each package of PACKAGES as the repository's index
    names it
    """
    found = expected_files_of(state_dir, mirror, port, *PACKAGES)
    assert len(found) == len(PACKAGES), found
    return found


def expected_files_of(state_dir, mirror, port, *packages):
    """
    url -> sha256 of each of packages as the repository's index names it
    """
    printed = run_apt(state_dir, mirror, port, 'download', '--print-uris', *packages)
    assert printed.returncode == 0, printed.stderr
    return {
        match['url']: match['sha256']
        for match in map(URI_LINE.match, (line.strip() for line in printed.stdout.splitlines()))
        if match
    }


def sha256(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_two_builds_at_once_then_all_from_the_cache(tmp_path, mirror):
    cache = str(tmp_path / 'cache')
    results = {}
    with proxy_process(cache) as (port_a, logged_a), proxy_process(cache) as (port_b, logged_b):
        clients = [
            threading.Thread(target=fetch_with_apt, args=(
                str(tmp_path / f'state-{key}'), str(tmp_path / f'download-{key}'),
                mirror, port, results, key
            )) for key, port in (('a', port_a), ('b', port_b))
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        expected = expected_files(str(tmp_path / 'state-a'), mirror, port_a)
    for key in ('a', 'b'):
        update, download = results[key]
        assert update.returncode == 0, update.stderr
        assert download.returncode == 0, download.stderr
    # every package is in the cache whole, as the repository's index
    # says, and no part file is left
    names = cached_entries(cache)
    assert sorted(os.listdir(cache)) == names
    for url, digest in expected.items():
        assert entry_name(url) in names, url
        assert sha256(os.path.join(cache, entry_name(url))) == digest, url
    assert any('fetched' in line for line in logged_a + logged_b)

    # a third build: every package and the index from the cache
    with proxy_process(cache) as (port, logged):
        os.makedirs(tmp_path / 'download-c')
        update = run_apt(str(tmp_path / 'state-c'), mirror, port, 'update')
        download = run_apt(
            str(tmp_path / 'state-c'), mirror, port, 'download', *PACKAGES,
            cwd=str(tmp_path / 'download-c')
        )
    assert update.returncode == 0 and download.returncode == 0, download.stderr
    summary = [line for line in logged if 'served from the cache' in line]
    assert summary, logged
    assert re.search(r'package cache: \d+ served from the cache, 0 fetched', summary[0])
    served = int(re.search(r'(\d+) served', summary[0]).group(1))
    assert served >= len(PACKAGES)
    for name in os.listdir(tmp_path / 'download-c'):
        assert sha256(tmp_path / 'download-c' / name) == sha256(tmp_path / 'download-a' / name)


def test_tampered_entry_is_caught_by_apt(tmp_path, mirror):
    """
    Should the cache on the host ever hold a wrong file, apt refuses it:
    what the proxy serves is checked like any download
    """
    cache = str(tmp_path / 'cache')
    with proxy_process(cache) as (port, _):
        state = str(tmp_path / 'state')
        assert run_apt(state, mirror, port, 'update').returncode == 0
        os.makedirs(tmp_path / 'first')
        assert run_apt(state, mirror, port, 'download', 'hello', cwd=str(tmp_path / 'first')) \
            .returncode == 0
        url = next(iter(expected_files_of(state, mirror, port, 'hello')))
        entry = os.path.join(cache, entry_name(url))
        with open(entry, 'r+b') as tampered:
            data = bytearray(tampered.read())
            data[-100] ^= 0xff
            tampered.seek(0)
            tampered.write(data)
        os.makedirs(tmp_path / 'second')
        download = run_apt(state, mirror, port, 'download', 'hello', cwd=str(tmp_path / 'second'))
    assert download.returncode != 0
    assert 'Hash Sum mismatch' in download.stderr or 'hash' in download.stderr.lower(), \
        download.stderr


class ForgedPackage(BaseHTTPRequestHandler):
    """
    A server of the build's author: a forged file for any path
    """
    def do_GET(self):
        body = b'forged package\n'
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def host_address() -> str:
    """
    An address of this host that is not on its loopback
    """
    route = subprocess.run(
        ['ip', '-4', '-o', 'route', 'get', '192.0.2.1'], capture_output=True, text=True
    )
    match = re.search(r'\bsrc (\S+)', route.stdout)
    if not match:
        pytest.skip('this host has no address outside its loopback')
    return match.group(1)


def test_a_build_cannot_change_what_another_installs(tmp_path, mirror):
    """
    A build that asks for the mirror's package path from a server of
    its own gets that server's file, cached under that server's URL; the
    next build asking the mirror gets the mirror's package. The host's
    loopback is not reachable through the proxy at all.
    """
    cache = str(tmp_path / 'cache')
    forger = ThreadingHTTPServer((host_address(), 0), ForgedPackage)
    threading.Thread(target=forger.serve_forever, daemon=True).start()
    loopback_forger = ThreadingHTTPServer(('127.0.0.1', 0), ForgedPackage)
    threading.Thread(target=loopback_forger.serve_forever, daemon=True).start()
    try:
        with proxy_process(cache) as (port, _):
            state = str(tmp_path / 'state')
            assert run_apt(state, mirror, port, 'update').returncode == 0
            url, digest = next(iter(expected_files_of(state, mirror, port, 'hello').items()))
            path = url.split('/', 3)[3]
            proxy = f'http://127.0.0.1:{port}'
            forged_url = f'http://{forger.server_address[0]}:{forger.server_address[1]}/{path}'
            forged = subprocess.run(
                ['curl', '-sS', '--proxy', proxy, forged_url], capture_output=True
            )
            assert forged.stdout == b'forged package\n'
            refused = subprocess.run(
                ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--proxy', proxy,
                 f'http://127.0.0.1:{loopback_forger.server_address[1]}/{path}'],
                capture_output=True, text=True
            )
            assert refused.stdout == '502'
            os.makedirs(tmp_path / 'download')
            download = run_apt(state, mirror, port, 'download', 'hello',
                               cwd=str(tmp_path / 'download'))
        assert download.returncode == 0, download.stderr
        (deb,) = os.listdir(tmp_path / 'download')
        assert sha256(tmp_path / 'download' / deb) == digest
        assert sha256(os.path.join(cache, entry_name(url))) == digest
    finally:
        forger.shutdown()
        loopback_forger.shutdown()
