"""
The box cache against a real HTTP server on 127.0.0.1 and real files.
"""
import hashlib
import os
import re
import subprocess
import sys
import time

import pytest

from harness.boxserver import BoxTree, serving
from harness.paths import KIWI_NG, REPOSITORY
from kiwi_boxed_plugin.cache import BoxCache
from kiwi_boxed_plugin.catalog import BoxCatalog
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxCacheError,
    KiwiBoxChecksumError,
    KiwiBoxDiskFullError,
    KiwiBoxDownloadError,
)
from kiwi_boxed_plugin.fetch import Fetcher
from kiwi_plugin_support.host import free_port

pytestmark = pytest.mark.integration

BOX = BoxTree()
DISK_1 = [bytes([n]) * 65536 for n in range(48)]      # 3 MiB
DISK_2 = [bytes([n]) * 65536 for n in range(100, 164)]  # 4 MiB


def digest(blocks):
    return hashlib.sha256(b''.join(blocks)).hexdigest()


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


@pytest.fixture
def tree(tmp_path):
    path = str(tmp_path / 'published tree')
    BOX.write(path, DISK_1, kernel=b'kernel-1', initrd=b'initrd-1')
    return path


@pytest.fixture
def server(tree):
    with serving(tree) as running:
        yield running


def use_box(tmp_path, source, fetcher=None, update_check=True, root=None):
    """
    Run one use() of the box; return the disk digest and the kernel
    """
    catalog = BOX.catalog(str(tmp_path / 'catalog.yml'), 'mybox', source)
    box = BoxCatalog(user_candidates=[catalog]).get('mybox')
    cache = BoxCache(
        root or str(tmp_path / 'cache'), fetcher=fetcher or Fetcher(backoff=0.01)
    )
    with cache.use(box, box.arch('x86_64'), update_check=update_check) as files:
        return hashlib.sha256(read(files.system_disk)).hexdigest(), read(files.kernel)


def state(tmp_path, root=None):
    box = BoxCatalog(user_candidates=[str(tmp_path / 'catalog.yml')]).get('mybox')
    return BoxCache(root or str(tmp_path / 'cache')).state(box, box.arch('x86_64'))


def box_dir_entries(tmp_path, root=None):
    return sorted(os.listdir(os.path.join(root or str(tmp_path / 'cache'), 'mybox')))


def test_first_download_then_cached_run(tmp_path, server):
    assert use_box(tmp_path, server.url) == (digest(DISK_1), b'kernel-1')
    assert server.sent('/' + BOX.disk) == 3 << 20
    assert state(tmp_path) == 'verified'
    assert BOX.packages in box_dir_entries(tmp_path)
    assert 'kernel.x86_64' in box_dir_entries(tmp_path)
    server.reset_counters()
    assert use_box(tmp_path, server.url) == (digest(DISK_1), b'kernel-1')
    assert sorted(server.requests) == [f'/{BOX.tarball}.sha256', f'/{BOX.disk}.sha256']


def test_update_is_detected(tmp_path, server, tree):
    use_box(tmp_path, server.url)
    BOX.write(tree, DISK_2, kernel=b'kernel-2', initrd=b'initrd-2')
    server.reset_counters()
    assert use_box(tmp_path, server.url) == (digest(DISK_2), b'kernel-2')
    assert server.sent('/' + BOX.disk) == 4 << 20
    assert state(tmp_path) == 'verified'


def test_no_update_check_uses_cache_as_is(tmp_path, server, tree):
    use_box(tmp_path, server.url)
    BOX.write(tree, DISK_2)
    server.reset_counters()
    assert use_box(tmp_path, server.url, update_check=False)[0] == digest(DISK_1)
    assert server.requests == []


def range_start(header):
    return int(header[len('bytes='):-1]) if header else 0


def partials(tmp_path, root=None):
    return [name for name in box_dir_entries(tmp_path, root) if name.endswith('.part')]


def test_drop_mid_file_is_resumed(tmp_path, server):
    server.faults['/' + BOX.disk] = 'drop-once'
    assert use_box(tmp_path, server.url)[0] == digest(DISK_1)
    assert server.requests.count('/' + BOX.disk) == 2
    kept = range_start(server.ranges[server.requests.index('/' + BOX.disk, 4)])
    assert kept > 0
    # half, then what the client had not stored yet (a read step is lost)
    assert server.sent('/' + BOX.disk) == (3 << 20) // 2 + (3 << 20) - kept


def test_stalled_transfer_times_out_and_resumes(tmp_path, server):
    server.faults['/' + BOX.disk] = 'stall-once'
    fetcher = Fetcher(timeouts=(10, 2), backoff=0.01)
    assert use_box(tmp_path, server.url, fetcher=fetcher)[0] == digest(DISK_1)
    assert server.requests.count('/' + BOX.disk) == 2
    assert range_start(server.ranges[server.requests.index('/' + BOX.disk, 4)]) > 0


def test_interrupted_run_is_resumed_by_the_next(tmp_path, server, tree):
    use_box(tmp_path, server.url)
    BOX.write(tree, DISK_2)
    server.faults['/' + BOX.disk] = 'drop'
    with pytest.raises(KiwiBoxDownloadError, match=(
        f'cannot fetch {server.url}/{BOX.disk}: the connection closed before the end'
    )):
        use_box(tmp_path, server.url, fetcher=Fetcher(retries=1, backoff=0.01))
    # the interrupted update left the previous box whole and usable
    assert state(tmp_path) == 'verified'
    assert use_box(tmp_path, server.url, update_check=False)[0] == digest(DISK_1)
    [partial] = [name for name in partials(tmp_path) if name.startswith(f'.{BOX.disk}.')]
    kept = os.path.getsize(os.path.join(str(tmp_path / 'cache'), 'mybox', partial))
    assert kept > 0
    del server.faults['/' + BOX.disk]
    server.reset_counters()
    assert use_box(tmp_path, server.url)[0] == digest(DISK_2)
    assert server.ranges[server.requests.index('/' + BOX.disk)] == f'bytes={kept}-'
    assert server.sent('/' + BOX.disk) == (4 << 20) - kept
    assert partials(tmp_path) == []


def test_server_ignoring_range(tmp_path, server):
    server.faults['/' + BOX.disk] = 'drop'
    with pytest.raises(KiwiBoxDownloadError):
        use_box(tmp_path, server.url, fetcher=Fetcher(retries=0))
    server.faults['/' + BOX.disk] = 'no-range'
    assert use_box(tmp_path, server.url)[0] == digest(DISK_1)
    # the kept half was dropped for the whole file the server sent
    assert server.sent('/' + BOX.disk) == (3 << 20) // 2 + (3 << 20)


def test_chunked_response(tmp_path, server):
    server.faults['/' + BOX.disk] = 'chunked'
    server.faults['/' + BOX.disk + '.sha256'] = 'chunked'
    assert use_box(tmp_path, server.url)[0] == digest(DISK_1)


def test_busy_server_is_retried(tmp_path, server):
    server.faults['/' + BOX.disk] = 'flaky-503'
    assert use_box(tmp_path, server.url)[0] == digest(DISK_1)


def test_corrupt_file_keeps_previous_box(tmp_path, server, tree):
    use_box(tmp_path, server.url)
    BOX.write(tree, DISK_2)
    with open(os.path.join(tree, BOX.disk), 'r+b') as disk:
        disk.seek(12345)
        disk.write(b'X')
    with pytest.raises(KiwiBoxChecksumError, match=(
        f'{BOX.disk} from {server.url}/{BOX.disk} does not match its published sha256'
    )):
        use_box(tmp_path, server.url)
    assert state(tmp_path) == 'verified'
    assert use_box(tmp_path, server.url, update_check=False)[0] == digest(DISK_1)
    assert not [name for name in partials(tmp_path) if name.startswith(f'.{BOX.disk}.')]


@pytest.mark.parametrize('path,fault,message', [
    (BOX.disk, 'html-404', 'does not exist .HTTP 404.: check the box source'),
    (BOX.disk + '.sha256', 'html-404', 'does not exist .HTTP 404.'),
    (BOX.disk, 'html-200', 'answered with an HTML page instead of the file'),
    (BOX.disk + '.sha256', 'html-200', 'answered with an HTML page'),
])
def test_html_is_never_saved(tmp_path, server, path, fault, message):
    server.faults['/' + path] = fault
    with pytest.raises(KiwiBoxDownloadError, match=f'{server.url}/{path} {message}'):
        use_box(tmp_path, server.url)
    assert state(tmp_path) == 'absent'
    assert BOX.disk not in box_dir_entries(tmp_path)
    assert not [name for name in partials(tmp_path) if name.startswith(f'.{BOX.disk}.')]


def test_unreachable_server_names_url(tmp_path):
    url = f'http://127.0.0.1:{free_port()}/boxes/'
    with pytest.raises(KiwiBoxDownloadError, match=(
        f'cannot fetch {url}{BOX.tarball}.sha256: Connection refused'
    )):
        use_box(tmp_path, url, fetcher=Fetcher(retries=1, backoff=0.01))


@pytest.mark.parametrize('as_url', [False, True])
def test_local_source(tmp_path, tree, as_url):
    # tree has a space in its path; the URL form percent-encodes it
    source = 'file://' + tree.replace(' ', '%20') if as_url else tree
    assert use_box(tmp_path, source) == (digest(DISK_1), b'kernel-1')
    assert state(tmp_path) == 'verified'
    BOX.write(tree, DISK_2, kernel=b'kernel-2')
    assert use_box(tmp_path, source) == (digest(DISK_2), b'kernel-2')


def test_concurrent_builds_download_once(tmp_path, server, tree):
    BOX.write(tree, DISK_2)
    # the first download stops half way until the second process waits
    server.faults['/' + BOX.disk] = 'hold'
    catalog = BOX.catalog(str(tmp_path / 'catalog.yml'), 'mybox', server.url)
    root = str(tmp_path / 'cache')
    outputs = [str(tmp_path / f'user{n}.out') for n in range(2)]

    def start(output):
        with open(output, 'w') as handle:
            return subprocess.Popen(
                [sys.executable, '-m', 'harness.box_cache_user', catalog, root, 'mybox'],
                cwd=REPOSITORY, stdout=handle, stderr=subprocess.STDOUT
            )
    first = start(outputs[0])
    wait_for(lambda: '/' + BOX.disk in server.requests, 'the first download to start')
    second = start(outputs[1])
    wait_for(
        lambda: b'is being prepared by another process' in read(outputs[1]),
        'the second process to wait for the first'
    )
    server.release.set()
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    texts = [read(output).decode() for output in outputs]
    digests = {line.split()[1] for text in texts for line in text.splitlines()
               if line.startswith('DIGEST ')}
    assert digests == {hashlib.sha256(read(os.path.join(tree, BOX.disk))).hexdigest()}
    assert server.requests.count('/' + BOX.disk) == 1
    assert server.sent('/' + BOX.disk) == 4 << 20
    assert 'up to date' in texts[1]


def wait_for(condition, what):
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f'gave up waiting for {what}'
        time.sleep(0.01)


@pytest.fixture
def mounted(tmp_path):
    """
    Mount a small tmpfs with the given options; unmounted after the test
    """
    if os.geteuid() != 0:
        pytest.skip('mounting a file system needs root')
    mounts = []

    def mount(options):
        point = str(tmp_path / f'mount{len(mounts)}')
        os.mkdir(point)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', point], check=True)
        mounts.append(point)
        return point
    yield mount
    for point in mounts:
        subprocess.run(['umount', point], check=True)


def test_full_disk_keeps_previous_box(tmp_path, server, tree, mounted):
    root = mounted('size=6m')
    use_box(tmp_path, server.url, root=root)
    BOX.write(tree, DISK_2)
    with pytest.raises(KiwiBoxDiskFullError, match=f'{BOX.disk} needs 4 MiB but {root}/mybox'):
        use_box(tmp_path, server.url, root=root)
    # chunked: no size announced, the disk fills while writing
    server.faults['/' + BOX.disk] = 'chunked'
    with pytest.raises(KiwiBoxDiskFullError, match=f'no space left in {root}/mybox for'):
        use_box(tmp_path, server.url, root=root)
    assert state(tmp_path, root) == 'verified'
    assert use_box(tmp_path, server.url, update_check=False, root=root)[0] == digest(DISK_1)
    assert not [name for name in partials(tmp_path, root) if name.startswith(f'.{BOX.disk}.')]


def test_read_only_cache_dir(tmp_path, server, mounted):
    root = mounted('ro,size=1m')
    with pytest.raises(KiwiBoxCacheError, match=f'box cache {root} is not writable'):
        use_box(tmp_path, server.url, root=root)
    with pytest.raises(KiwiBoxCacheError, match=(
        f'cannot create box cache directory {root}/sub: Read-only file system'
    )):
        use_box(tmp_path, server.url, root=os.path.join(root, 'sub'))


@pytest.mark.parametrize('catalog,message', [
    ('box:\n  - name: x\n   bad: [\n', 'is not valid YAML at line 3: fix or remove it'),
    ('box:\n  - name: x\n    mem_mb: lots\n', "box 'x', field 'mem_mb' must be a memory size"),
    ('box:\n  - name: x\n    mem_mb: 1G\n    arch:\n      - name: x86_64\n'
     '        boxfiles: [a.qcow2, k.tar.xz]\n        source: ftp://host/\n',
     r"box 'x', field 'arch\[x86_64\].source' must be obs://"),
])
def test_broken_catalog_is_one_line_and_exit_1(tmp_path, catalog, message):
    path = tmp_path / 'catalog.yml'
    path.write_text(catalog)
    env = dict(
        os.environ, KIWI_BOXED_PLUGIN_CFG=str(path), KIWI_BOXED_CACHE_DIR=str(tmp_path / 'c')
    )
    done = subprocess.run(
        [KIWI_NG, 'system', 'boxbuild', '--list-boxes'], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if 'ERROR' in line]
    assert len(errors) == 1 and 'Traceback' not in done.stderr
    assert f'KiwiBoxCatalogError: box catalog {path}' in errors[0]
    assert re.search(message, errors[0])


def test_list_boxes_shows_cache_state(tmp_path, server):
    use_box(tmp_path, server.url)
    env = dict(
        os.environ, KIWI_BOXED_PLUGIN_CFG=str(tmp_path / 'catalog.yml'),
        KIWI_BOXED_CACHE_DIR=str(tmp_path / 'cache')
    )
    done = subprocess.run(
        [KIWI_NG, 'system', 'boxbuild', '--list-boxes'], env=env, capture_output=True,
        text=True, check=True
    )
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line}
    assert rows['mybox'][1:5] == ['x86_64', '1024M', '-', 'x86_64:verified']
    assert rows['tumbleweed'][4] == '-'
