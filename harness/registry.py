"""
Debian's docker-registry serving on 127.0.0.1 at a free port, storing
in a directory of the caller's.
"""
import shutil
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from kiwi_plugin_support.host import free_port

# how long the registry may take to answer its first request
START_SECONDS = 60


class RegistryError(Exception):
    """
    The registry is not installed or did not start
    """


@contextmanager
def running_registry(base: Path) -> Iterator[str]:
    """
    A registry with its configuration, data and log in base, answering
    until the context ends

    :return: its 'HOST:PORT'
    :raises RegistryError: naming the package or quoting the log
    """
    if not shutil.which('docker-registry'):
        raise RegistryError('docker-registry is not installed: apt-get install docker-registry')
    port = free_port()
    config = base / 'config.yml'
    config.write_text(
        'version: 0.1\n'
        'log:\n  level: error\n'
        f'storage:\n  filesystem:\n    rootdirectory: {base / "data"}\n'
        f'http:\n  addr: 127.0.0.1:{port}\n'
    )
    log = base / 'registry.log'
    with open(log, 'w') as log_file:
        server = subprocess.Popen(
            ['docker-registry', 'serve', str(config)],
            stdout=subprocess.DEVNULL, stderr=log_file
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                urllib.request.urlopen(f'http://127.0.0.1:{port}/v2/', timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RegistryError(f'registry did not start: {log.read_text()}')
                time.sleep(0.2)
        yield f'127.0.0.1:{port}'
    finally:
        server.terminate()
        server.wait(timeout=30)
