"""
kiwi-ng system boxbuild as the suites and benchmarks start it: its
command line, and a run to its end with the console output captured.
"""
import subprocess
from typing import Dict, List, Optional, Protocol, Sequence

from harness.paths import KIWI_NG

# A guard against a hung run, far above any expected duration; never a
# timing assertion
HANG_GUARD_SECONDS = 3600
# the console log boxbuild writes into the target dir
CONSOLE_LOG = 'boxbuild.console.log'


class BoxEnvironment(Protocol):
    """
    The catalog, cache and tools a boxbuild of the suites uses
    """
    def environment(self, **extra: str) -> Dict[str, str]:
        """
        The process environment of a boxbuild, with extra variables
        """


def boxbuild_argv(
    box_options: Sequence[str], options: Sequence[str], description: str, target_dir: str,
    global_options: Sequence[str] = (), kiwi_options: Sequence[str] = (),
    box_name: str = 'debian', kiwi_ng: str = KIWI_NG
) -> List[str]:
    """
    kiwi-ng [global_options] system boxbuild --box box_name box_options
    options -- --description description --target-dir target_dir
    kiwi_options

    :param list box_options: those of the kind of box, e.g. ['--container']
    """
    return [kiwi_ng] + list(global_options) + [
        'system', 'boxbuild', '--box', box_name
    ] + list(box_options) + list(options) + [
        '--', '--description', description, '--target-dir', target_dir
    ] + list(kiwi_options)


def run_boxbuild(
    box: BoxEnvironment, argv: Sequence[str], cwd: str,
    user: Optional[str] = None, environment: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess:
    """
    Run a boxbuild to its end, its output captured for the asserts

    :param environment: of the boxbuild, else box.environment()
    """
    completed = subprocess.run(
        list(argv), cwd=cwd, env=environment or box.environment(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=HANG_GUARD_SECONDS, user=user,
    )
    completed.stdout = completed.stdout.decode(errors='replace')
    # the whole console in the pytest report helps when a box misbehaves
    print(completed.stdout)
    return completed
