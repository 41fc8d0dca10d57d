"""
Speed of stash and stackbuild against the raw tools doing the same work.

Builds (or reuses) the cached Debian minbase root and prints, from one
run, the median wall time of

- our stash against the floor
  'tar --xattrs --acls --numeric-owner -c | podman import', each into
  an empty container storage (layer dedup would flatter a second run);
- our stackbuild root materialization against the floor
  'podman image mount' + one 'rsync -aHAX', from the same image.

Needs root, podman, skopeo and rsync. Run in the repository root:

    .venv/bin/python -m bench.stash [--rounds N]
"""
import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, ContextManager, Dict, List

from harness import minbase
from harness.podman import private_storage
from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.stack import Stacker, StackItem
from kiwi_stackbuild_plugin.stash import Stash

CONFIG = '<image schemaversion="7.5" name="bench"><preferences><version>1</version>' \
    '</preferences></image>\n'


def empty_store(parent: str) -> ContextManager[Dict[str, str]]:
    """
    A fresh container storage below parent for the time of the context
    """
    return private_storage(tempfile.mkdtemp(prefix='store-', dir=parent))


def timed(work: Callable[[], None]) -> float:
    start = time.monotonic()
    work()
    return time.monotonic() - start


def floor_stash(root: str) -> None:
    tar = subprocess.Popen(
        ['tar', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls',
         '-C', root, '-c', '.'], stdout=subprocess.PIPE
    )
    subprocess.run(['podman', 'import', '--quiet', '-', 'floor:1'],
                   stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)
    assert tar.stdout
    tar.stdout.close()
    if tar.wait() != 0:
        raise RuntimeError('tar failed')


def floor_materialize(image: str, target: str) -> None:
    mount = subprocess.run(['podman', 'image', 'mount', image], capture_output=True,
                           text=True, check=True).stdout.strip()
    try:
        subprocess.run(['rsync', '-aHAX', mount + '/', target + '/'], check=True)
    finally:
        subprocess.run(['podman', 'image', 'unmount', image], check=True,
                       stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog='python -m bench.stash', description=__doc__.split('\n\n')[0]
    )
    parser.add_argument('--rounds', type=int, default=3)
    rounds = parser.parse_args().rounds
    if os.geteuid() != 0:
        sys.exit('bench.stash needs root')
    logging.getLogger('kiwi').setLevel(logging.WARNING)
    work = tempfile.mkdtemp(prefix='bench-stash-')
    os.environ['TMPDIR'] = work
    times: Dict[str, List[float]] = {
        'stash': [], 'stash floor': [], 'materialize': [], 'materialize floor': []
    }
    try:
        root = os.path.join(work, 'root')
        subprocess.run(['cp', '-a', minbase.minbase_root(), root], check=True)
        os.makedirs(os.path.join(root, 'image'))
        with open(os.path.join(root, 'image', 'config.xml'), 'w') as handle:
            handle.write(CONFIG)
        size = subprocess.run(['du', '-sh', root], capture_output=True, text=True,
                              check=True).stdout.split()[0]
        images = ContainerImages()
        # interleave ours and the floor, each going first every other
        # round, so that load on the machine and warm caches hit both
        # alike; the median of the rounds is reported
        for round_number in range(rounds):
            order = [False, True] if round_number % 2 else [True, False]
            for ours in order:
                with empty_store(work):
                    if not ours:
                        times['stash floor'].append(timed(lambda: floor_stash(root)))
                        continue
                    times['stash'].append(timed(lambda: Stash(images).store(root)))
            with empty_store(work):
                Stash(images).store(root)
                image = images.inspect('localhost/bench:latest')['Id']
                names = ['materialize floor', 'materialize']
                for name in names if round_number % 2 else reversed(names):
                    target = os.path.join(work, f'target-{round_number}-{len(times[name])}')
                    os.makedirs(target)
                    if name == 'materialize':
                        times[name].append(timed(lambda: Stacker(images).stack(
                            [StackItem('bench', image)], os.path.join(target, 'image-root')
                        )))
                    else:
                        times[name].append(timed(lambda: floor_materialize(image, target)))
                    shutil.rmtree(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f'Debian minbase root: {size}, {rounds} rounds, median wall time')
    for name, values in times.items():
        print(f'  {name:18} ' + ' '.join(f'{value:6.2f}' for value in values))
    for name, floor in (('stash', 'tar | podman import'),
                        ('materialize', 'podman image mount + rsync -aHAX')):
        print(
            f'{name:12} ours {median[name]:6.2f} s   floor ({floor}) '
            f'{median[name + " floor"]:6.2f} s   ratio {median[name] / median[name + " floor"]:.2f}'
        )


if __name__ == '__main__':
    main()
