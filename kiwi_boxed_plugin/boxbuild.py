"""
A boxbuild from the parsed command line to the reported result: the
request is checked, a runner (a box VM, or with --container a box
container) runs the build, and its outcome is judged and reported here,
the same way for both.
"""
import logging
import signal
import sys
import time
from typing import Any, Dict

from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.request import BoxbuildRequest, build_request
from kiwi_boxed_plugin.result import (
    BoxRun,
    raise_if_stopped_at_limit,
    raise_unless_succeeded,
    summary_lines,
)
from kiwi_plugin_support.lifetime import stop_signals_raise

log = logging.getLogger('kiwi')

# Exit status of a build ended by Ctrl-C, as a shell reports SIGINT;
# SIGTERM and SIGHUP give 143 and 129 alike
EXIT_INTERRUPTED = 128 + signal.SIGINT


def run_boxbuild(command_args: Dict[str, Any], global_args: Dict[str, Any]) -> None:
    """
    Run 'kiwi-ng system build' in a box and judge its result

    :raises KiwiError: a subclass with one line for every failure
    :raises SystemExit: with 130 after Ctrl-C (128 + the signal number
        after SIGTERM or SIGHUP), once nothing runs anymore
    """
    request = build_request(command_args, global_args)
    if request.container:
        from kiwi_boxed_plugin.container import ContainerBoxBuild
        runner: Any = ContainerBoxBuild.prepare(request)
    else:
        from kiwi_boxed_plugin.vm import VmBoxBuild
        runner = VmBoxBuild.prepare(request)
    try:
        # a second Ctrl-C must not cut the cleanup short and leave a box
        # or a share helper running
        with stop_signals_raise():
            run = runner.run()
    except KeyboardInterrupt as stop:
        signum = getattr(stop, 'signum', signal.SIGINT)
        log.error(
            f'boxbuild interrupted ({signal.Signals(signum).name}): the box and its '
            f'helpers are stopped, the partial console log is in {request.target_dir}'
        )
        sys.exit(128 + signum)
    report(request, run)


def report(request: BoxbuildRequest, run: BoxRun) -> None:
    """
    Judge the run and tell the user what came out

    :raises KiwiBoxRunError: if the box did not start its job in time
    :raises KiwiBoxTimeoutError: if the build outlasted --box-timeout
    :raises KiwiBoxBuildFailedError: if the build did not succeed
    """
    console_log = Defaults.get_console_log(request.target_dir)
    raise_if_stopped_at_limit(request, console_log, run)
    raise_unless_succeeded(request.target_dir, console_log, run)
    for line in summary_lines(request.target_dir, run, time.time() - run.started_at):
        log.info(line)
