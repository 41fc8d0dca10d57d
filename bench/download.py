"""
Download speed of the box cache against curl, and what a cached run costs.

Serves a box with a 1 GiB system disk on 127.0.0.1 (the integration
tests' server harness.boxserver, in its own process), then measures in
one run, alternating:

- floor: `curl -o` of the system disk, nothing else
- ours:  a first BoxCache.use() of the box into an empty cache: download,
         sha256 verify, swap into place, kernel/initrd extraction

and prints the median of each and their ratio (goal <= 1.1), then the
bytes the server sent for a cached re-run with update check (goal: only
the .sha256 files). The box tree is kept in
/var/cache/kiwi-plugins-test/cache/bench for reruns.

    .venv/bin/python -m bench.download [--size-mib N] [--rounds N]   (in the repository root)
"""
import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from harness.boxserver import BoxTree
from harness.paths import REPOSITORY, TEST_STORE
from kiwi_boxed_plugin.cache import BoxCache
from kiwi_boxed_plugin.catalog import load_catalog_file

STORE = os.path.join(TEST_STORE, 'cache', 'bench')
BOX = BoxTree('Bench-Box')


def make_box_tree(size_mib: int) -> str:
    tree = os.path.join(STORE, f'tree-{size_mib}')
    if not os.path.exists(os.path.join(tree, BOX.disk + '.sha256')):
        # incompressible, like a real disk image on the wire
        BOX.write(tree, (os.urandom(1 << 20) for _ in range(size_mib)))
    return tree


def cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(use.ru_utime + use.ru_stime for use in usage)


def timed(action, cpu: list) -> float:
    """
    Wall seconds of action; its cpu seconds (own and of waited-for
    children such as curl) are appended to cpu
    """
    # both start without dirty pages of the previous transfer to flush
    os.sync()
    start, cpu_start = time.monotonic(), cpu_seconds()
    action()
    cpu.append(cpu_seconds() - cpu_start)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        prog='python -m bench.download', description=__doc__.splitlines()[1]
    )
    parser.add_argument('--size-mib', type=int, default=1024)
    parser.add_argument('--rounds', type=int, default=3)
    options = parser.parse_args()
    # the figures are the output, not kiwi's progress lines
    logging.getLogger('kiwi').setLevel(logging.WARNING)
    tree = make_box_tree(options.size_mib)
    server = subprocess.Popen(
        [sys.executable, '-m', 'harness.boxserver', tree], cwd=REPOSITORY,
        stdout=subprocess.PIPE, text=True
    )
    work = tempfile.mkdtemp(dir=STORE, prefix='run.')
    try:
        base = f'http://127.0.0.1:{server.stdout.readline().strip()}'
        box = load_catalog_file(
            BOX.catalog(os.path.join(work, 'catalog.yml'), 'bench', base + '/')
        )[0]
        arch = box.arch('x86_64')
        cache_root = os.path.join(work, 'cache')
        curl_target = os.path.join(work, 'curl.out')

        def curl() -> None:
            subprocess.run(
                ['curl', '--fail', '--silent', '-o', curl_target, f'{base}/{BOX.disk}'],
                check=True
            )

        def ours() -> None:
            with BoxCache(cache_root).use(box, arch):
                pass

        floor, mine, floor_cpu, mine_cpu = [], [], [], []
        for _ in range(options.rounds):
            for target in (curl_target, cache_root):
                if os.path.isdir(target):
                    shutil.rmtree(target)
                elif os.path.exists(target):
                    os.unlink(target)
            # alternated, so neither always follows the other's writeback
            if len(floor) % 2:
                mine.append(timed(ours, mine_cpu))
                floor.append(timed(curl, floor_cpu))
            else:
                floor.append(timed(curl, floor_cpu))
                mine.append(timed(ours, mine_cpu))
        before = json.load(urllib.request.urlopen(f'{base}/_stats'))
        ours()
        after = json.load(urllib.request.urlopen(f'{base}/_stats'))
        cached = {
            path: after[path] - before.get(path, 0) for path in after
            if after[path] != before.get(path, 0) and path != '/_stats'
        }
        size = options.size_mib
        print(f'box file: {size} MiB served on 127.0.0.1, {options.rounds} rounds, medians')
        print(f'floor  curl -o:                  {statistics.median(floor):.2f} s  '
              f'({size / statistics.median(floor):.0f} MiB/s)')
        print(f'ours   download+verify+install:  {statistics.median(mine):.2f} s  '
              f'({size / statistics.median(mine):.0f} MiB/s)')
        print(f'ratio  ours / floor:             '
              f'{statistics.median(mine) / statistics.median(floor):.2f}  (goal <= 1.1)')
        print(f'cpu    curl {statistics.median(floor_cpu):.2f} s, ours '
              f'{statistics.median(mine_cpu):.2f} s (sha256 runs beside the transfer)')
        print(f'load   {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus (other work skews both)')
        print(f'cached re-run with update check: {sum(cached.values())} bytes transferred')
        for path, sent in sorted(cached.items()):
            print(f'    {path}: {sent} bytes')
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
