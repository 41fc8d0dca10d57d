"""
usage: .venv/bin/python -m bench.boxbuild [--skip-container] [--box-runs N] [--keep DIR]
       (in the repository root, as root)

The main job against its floor, from one run: the tiny Debian
description of test/data (with its own boxroot/etc/kiwi.yml given to
kiwi on every side) built

- natively: kiwi-ng system build on this host (the floor);
- in the Debian box under software emulation (VM mode, 9p), N times in
  a row (default 2: the first with an empty package cache of the
  benchmark's own, the next ones with what the first left in it);
- in the Debian box's container (container mode);

printing each total, its phases read from the timestamps of kiwi's log
(start: boxbuild or kiwi started -> kiwi's first line; bootstrap;
install; create: image and metadata; bundle; end: kiwi's last line ->
the build returned), the packages the box's package cache served and
fetched, and the ratios box/native, container/native and second/first.
Wall times vary from machine to machine and from run to run: compare
the ratios of one run.

Shares the box catalog and cache of the VM tests (/var/cache/kiwi-
plugins-test/vm) and the podman storage of the container tests; builds
the box first if needed (cached by recipe hash).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from harness import container_boxbuild, vm_boxbuild
from harness.container_store import container_box, podman_environment
from harness.descriptions import description_copy
from harness.minbase import debian_mirror
from harness.paths import KIWI_NG

# kiwi's log lines that open each phase, in order; a phase ends where
# the next one starts
PHASE_MARKS: Tuple[Tuple[str, str], ...] = (
    ('bootstrap', 'Installing bootstrap packages'),
    ('install', 'Installing system (chroot)'),
    ('create', 'Creating system image'),
    ('bundle', 'Bundle build results'),
)
PHASES = ('start', 'setup') + tuple(name for name, _ in PHASE_MARKS) + ('end',)
LOG_TIME = re.compile(r'^\[ *[A-Z]+ *\]: (\d\d):(\d\d):(\d\d) \| (.*)$')
# what boxbuild logs about its package cache at the end of a run
CACHE_LINE = re.compile(r'package cache: (\d+) served from the cache, (\d+) fetched')


@dataclass(frozen=True)
class Build:
    label: str
    seconds: float
    phases: Dict[str, float]
    cache: str = ''


def log_times(log_text: str) -> List[Tuple[float, str]]:
    """
    (seconds since midnight, message) of every timestamped line of a
    kiwi log, a build across midnight counted on
    """
    times: List[Tuple[float, str]] = []
    day = 0.0
    for line in log_text.splitlines():
        match = LOG_TIME.match(line)
        if not match:
            continue
        hours, minutes, seconds, message = match.groups()
        stamp = int(hours) * 3600 + int(minutes) * 60 + int(seconds) + day
        if times and stamp < times[-1][0] - 3600:
            day += 86400
            stamp += 86400
        times.append((stamp, message))
    return times


def phases(log_text: str, started: float, ended: float) -> Dict[str, float]:
    """
    Seconds of each phase of PHASES: start (the build started -> kiwi's
    first line), setup (-> bootstrap), the PHASE_MARKS, end (kiwi's last
    line -> the build returned); a phase kiwi did not log is left out

    :param float started: wall clock (seconds since midnight, UTC) at
        which the build was started
    :param float ended: wall clock at which it returned
    """
    times = log_times(log_text)
    if not times:
        return {}
    if ended < started:
        ended += 86400
    shift = 86400 if times[0][0] < started - 3600 else 0
    bounds: List[Tuple[str, float]] = [('start', started), ('setup', times[0][0] + shift)]
    for name, mark in PHASE_MARKS:
        stamp = next((stamp for stamp, message in times if message.startswith(mark)), None)
        if stamp is not None:
            bounds.append((name, stamp + shift))
    bounds += [('end', times[-1][0] + shift), ('', ended)]
    return {
        name: max(0.0, finish - begin)
        for (name, begin), (_, finish) in zip(bounds, bounds[1:])
    }


def wall_clock() -> float:
    now = time.gmtime()
    return now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec + (time.time() % 1)


def timed_build(
    label: str, argv: Sequence[str], log_file: str, environment: Optional[dict] = None
) -> Build:
    """
    Run one build; its output goes to a file beside its log
    """
    print(f'== {label}', flush=True)
    started_clock = wall_clock()
    started = time.monotonic()
    output_file = os.path.join(os.path.dirname(os.path.dirname(log_file)), label_file(label))
    with open(output_file, 'wb') as output:
        done = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            env=environment
        )
    seconds = time.monotonic() - started
    with open(output_file, errors='replace') as output:
        text = output.read()
    if done.returncode != 0:
        sys.exit(f'bench.boxbuild: {label} failed with exit code {done.returncode}:\n'
                 + text[-3000:])
    with open(log_file, errors='replace') as kiwi_log:
        build_phases = phases(kiwi_log.read(), started_clock, wall_clock())
    cache = CACHE_LINE.search(text)
    return Build(
        label, seconds, build_phases,
        f'{cache.group(1)} served, {cache.group(2)} fetched' if cache else ''
    )


def label_file(label: str) -> str:
    return re.sub(r'[^a-z0-9]+', '-', label.lower()).strip('-') + '.output'


def row(build: Build) -> str:
    cells = ' '.join(f'{build.phases.get(name, 0.0):9.0f}' for name in PHASES)
    return f'{build.label:<26} {build.seconds:8.1f} {cells}  {build.cache}'


def main() -> int:
    parser = argparse.ArgumentParser(prog='python -m bench.boxbuild', usage=__doc__)
    parser.add_argument('--skip-container', action='store_true')
    parser.add_argument('--box-runs', type=int, default=2, metavar='N')
    parser.add_argument('--keep', metavar='DIR', help='work in DIR (must not exist) and keep it')
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('bench.boxbuild builds with kiwi natively: run it as root')
    if arguments.keep and os.path.lexists(arguments.keep):
        sys.exit(f'bench.boxbuild: {arguments.keep} exists: remove it or choose another')
    base = arguments.keep or tempfile.mkdtemp(prefix='bench-boxbuild-', dir='/var/tmp')
    os.makedirs(base, exist_ok=True)
    description = description_copy(os.path.join(base, 'description'), debian_mirror())
    runtime_config = os.path.join(description, 'boxroot', 'etc', 'kiwi.yml')
    vm = vm_boxbuild.vm_box(stdout=subprocess.DEVNULL)
    builds: List[Build] = []

    target = os.path.join(base, 'native')
    os.makedirs(target)
    builds.append(timed_build('native', [
        KIWI_NG, '--type', 'tbz', '--config', runtime_config, '--logfile',
        os.path.join(target, 'kiwi.log'), 'system', 'build',
        '--description', description, '--target-dir', target
    ], os.path.join(target, 'kiwi.log')))
    native_image = image_of(target)

    # an empty package cache of the benchmark's own for the first run
    package_cache = os.path.join(base, 'package-cache')
    for run in range(1, arguments.box_runs + 1):
        target = os.path.join(base, f'box-{run}')
        builds.append(timed_build(
            f'box (VM, TCG, 9p) #{run}',
            vm_boxbuild.boxbuild_argv(
                [], description, target, global_options=['--type', 'tbz']
            ),
            os.path.join(target, 'result.log'),
            vm.environment(KIWI_BOXED_PACKAGE_CACHE=package_cache)
        ))
        check_same(native_image, image_of(target), builds[-1].label)

    if not arguments.skip_container:
        box = container_box(podman_environment())
        target = os.path.join(base, 'container')
        builds.append(timed_build(
            'container', container_boxbuild.boxbuild_argv(
                [], description, target, global_options=['--type', 'tbz']
            ), os.path.join(target, 'result.log'), box.environment()
        ))
        check_same(native_image, image_of(target), 'container')

    print()
    print(f'{"tiny Debian, one run":<26} {"total s":>8} '
          + ' '.join(f'{name:>9}' for name in PHASES))
    for build in builds:
        print(row(build))
    native = builds[0].seconds
    first_box = builds[1] if arguments.box_runs else None
    if first_box:
        print(f'box/native: {first_box.seconds / native:.1f}x (goal <= 8x under emulation)')
    if arguments.box_runs >= 2:
        print(f'second/first box build: {builds[2].seconds / builds[1].seconds:.2f} '
              '(goal <= 0.7, no package fetched)')
    if not arguments.skip_container:
        print(f'container/native: {builds[-1].seconds / native:.2f} (goal <= 1.3)')
    print('package and file lists of every image equal to the native build: yes')
    if arguments.keep:
        print(f'kept: {base}')
    else:
        subprocess.run(['rm', '-rf', '--one-file-system', base], check=False)
    return 0


def package_list(target: str) -> List[str]:
    """
    The .packages file kiwi wrote beside the image, lines sorted
    """
    for name in sorted(os.listdir(target)):
        if name.endswith('.packages'):
            with open(os.path.join(target, name)) as packages:
                return sorted(packages.read().splitlines())
    sys.exit(f'bench.boxbuild: no .packages file in {target}')


def file_list(target: str) -> List[str]:
    """
    The paths in the image tarball kiwi wrote, sorted
    """
    for name in sorted(os.listdir(target)):
        if name.endswith('.tar.xz'):
            listing = subprocess.run(
                ['tar', '-tJf', os.path.join(target, name)],
                check=True, stdout=subprocess.PIPE, text=True
            )
            return sorted(listing.stdout.splitlines())
    sys.exit(f'bench.boxbuild: no image tarball in {target}')


def image_of(target: str) -> Tuple[List[str], List[str]]:
    """
    The package list and file list of the image in target
    """
    return package_list(target), file_list(target)


def check_same(
    expected: Tuple[List[str], List[str]], found: Tuple[List[str], List[str]], label: str
) -> None:
    for kind, wanted, got in zip(('packages', 'files'), expected, found):
        if wanted != got:
            sys.exit(f'bench.boxbuild: the {label} image holds other {kind} than the native '
                     'build: ' + ', '.join(sorted(set(wanted) ^ set(got))[:10]))


if __name__ == '__main__':
    sys.exit(main())
