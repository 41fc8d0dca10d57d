"""
What a stash saves: stackbuild's rebuild of the bootable Debian disk
against the native build of the same description, from one run.

Renders test/data/bootable-debian with the host's mirror and prints the
wall time of

- the native 'kiwi-ng system build' (packages from the mirror, through
  kiwi's package cache: run once before to measure with a warm cache);
- 'kiwi-ng system stash' of its build/image-root, into an empty
  container storage of the benchmark's own;
- 'kiwi-ng system stackbuild' of that stash ('system create' of the
  stacked root: the same disk without installing a package);

and the ratios rebuild / build and (stash + rebuild) / build. Wall times
vary from machine to machine and run to run here: compare the ratio.

Needs root, podman, skopeo, rsync and the host tools of kiwi's oem type
(sfdisk, sgdisk, partx, mkfs.ext4). Run in the repository root:

    .venv/bin/python -m bench.rebuild [--keep DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, List

from harness import minbase, stackbuild_kiwi
from harness.podman import private_storage
from harness.workflows import (
    BOOTABLE_DEBIAN, BOOTABLE_NAME, disk_image, package_list, render
)


def timed(argv: List[str]) -> float:
    """
    Seconds that argv ran; its output goes to this terminal
    """
    start = time.monotonic()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    return time.monotonic() - start


def figure(label: str, seconds: float) -> str:
    return f'{label:<38} {seconds:7.1f} s'


def main() -> None:
    parser = argparse.ArgumentParser(
        prog='python -m bench.rebuild', description=__doc__.split('\n\n')[0]
    )
    parser.add_argument(
        '--keep', metavar='DIR',
        help='work in DIR (must not exist) and keep it, else a temp dir removed at the end'
    )
    keep = parser.parse_args().keep
    if os.geteuid() != 0:
        sys.exit('bench.rebuild builds disk images with kiwi: run it as root')
    if keep and os.path.lexists(keep):
        sys.exit(f'bench.rebuild: {keep} exists: remove it or choose another')
    base = keep or tempfile.mkdtemp(prefix='bench-rebuild-', dir='/var/tmp')
    os.makedirs(base, exist_ok=True)
    kiwi: Callable[..., List[str]] = stackbuild_kiwi.kiwi_argv
    description = render(
        BOOTABLE_DEBIAN, os.path.join(base, 'description'), minbase.debian_mirror()
    )
    native = os.path.join(base, 'native')
    rebuilt = os.path.join(base, 'rebuilt')
    containers = os.path.join(base, 'containers')
    os.makedirs(containers)
    with private_storage(containers):
        build = timed(kiwi(
            'system', 'build', '--description', description, '--target-dir', native
        ))
        stash = timed(kiwi(
            'system', 'stash', '--root', os.path.join(native, 'build', 'image-root')
        ))
        rebuild = timed(kiwi(
            'system', 'stackbuild', '--stash', BOOTABLE_NAME, '--target-dir', rebuilt
        ))
    same = package_list(native) == package_list(rebuilt)
    size = os.path.getsize(disk_image(rebuilt)) / 2**20
    print()
    print(f'bootable Debian disk ({size:.0f} MiB raw), one run:')
    print(figure('native kiwi-ng system build', build))
    print(figure('kiwi-ng system stash of its root', stash))
    print(figure('kiwi-ng system stackbuild (rebuild)', rebuild))
    print(f'rebuild / build: {rebuild / build:.2f}; '
          f'(stash + rebuild) / build: {(stash + rebuild) / build:.2f}')
    print(f'package lists equal: {same}')
    if keep:
        print(f'kept: {base}')
    else:
        subprocess.run(['rm', '-rf', '--one-file-system', base], check=False)
    if not same:
        sys.exit('bench.rebuild: the rebuilt disk holds other packages than the native build')


if __name__ == '__main__':
    main()
