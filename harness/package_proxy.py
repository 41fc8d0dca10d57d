"""
The box package cache as a process of its own, as each boxbuild runs
one, and apt on this host as the box's package manager would use it:
for the tests of the cache and for runs by hand.

    python -m harness.package_proxy CACHE_DIR

prints the proxy's port on its first line and serves until its stdin
is closed.
"""
import logging
import os
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator, List, Tuple

from kiwi_boxed_plugin.package_cache import package_proxy


@contextmanager
def proxy_process(cache_dir: str) -> Iterator[Tuple[int, List[str]]]:
    """
    A package proxy process on cache_dir for the with-block

    :return: its port, and after the block the lines it logged
    """
    process = subprocess.Popen(
        [sys.executable, '-m', 'harness.package_proxy', cache_dir],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
    assert process.stdout and process.stdin
    logged: List[str] = []
    try:
        yield int(process.stdout.readline()), logged
    finally:
        process.stdin.close()
        logged += process.stdout.read().splitlines()
        process.wait(timeout=60)


def apt_argv(state_dir: str, mirror: str, proxy_port: int, *command: str) -> List[str]:
    """
    apt-get with a state of its own in state_dir (sources, lists, cache)
    fetching the host suite's main from mirror through the proxy
    """
    os.makedirs(os.path.join(state_dir, 'lists', 'partial'), exist_ok=True)
    os.makedirs(os.path.join(state_dir, 'cache', 'archives', 'partial'), exist_ok=True)
    os.makedirs(os.path.join(state_dir, 'sources.list.d'), exist_ok=True)
    from harness.minbase import host_suite
    with open(os.path.join(state_dir, 'sources.list'), 'w') as sources:
        sources.write(f'deb [trusted=yes] {mirror} {host_suite()} main\n')
    return [
        'apt-get', '-q',
        '-o', f'Dir::Etc::SourceList={state_dir}/sources.list',
        '-o', f'Dir::Etc::SourceParts={state_dir}/sources.list.d',
        '-o', f'Dir::State::Lists={state_dir}/lists',
        '-o', f'Dir::Cache={state_dir}/cache',
        '-o', 'Acquire::Languages=none',
        '-o', 'APT::Sandbox::User=root',
        '-o', 'Debug::NoLocking=1',
        '-o', f'Acquire::http::Proxy=http://127.0.0.1:{proxy_port}',
    ] + list(command)


def main() -> None:
    logging.getLogger("kiwi").setLevel(logging.DEBUG)
    with package_proxy(sys.argv[1], allow_loopback=False) as proxy:
        assert proxy
        print(proxy.port, flush=True)
        sys.stdin.read()


if __name__ == '__main__':
    main()
