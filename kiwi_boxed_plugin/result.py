"""
What a box run left in the target dir, and whether it succeeded.
"""
import logging
import os
import stat
from dataclasses import dataclass
from typing import List, Optional, Sequence

from kiwi_boxed_plugin.agent.kiwi_box_protocol import RESULT_CODE, RESULT_LOG
from kiwi_boxed_plugin.console import NOT_STARTED, TIMED_OUT, RunOutcome
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxBuildFailedError,
    KiwiBoxRunError,
    KiwiBoxTargetDirError,
    KiwiBoxTimeoutError,
)
from kiwi_boxed_plugin.request import START_TIMEOUT_VARIABLE, BoxbuildRequest
from kiwi_boxed_plugin.target_files import read_file_end, remove_entry

log = logging.getLogger('kiwi')

# Lines of the log shown when a build failed
FAILURE_TAIL_LINES = 25
# Bytes read at most from the end of a file the box wrote
READ_LIMIT = 256 * 1024


@dataclass(frozen=True)
class BoxRun:
    """
    What a runner hands back for judging

    :param RunOutcome outcome: how the box process ended
    :param float started_at: when the box started (time.time())
    :param str engine: what ran the box, e.g. 'KVM: ...' or 'podman'
    :param WrittenCode written_code: the result.code the box wrote,
        read where it wrote it (a staging dir whose results moved on);
        None to read the target dir's
    """
    outcome: RunOutcome
    started_at: float
    engine: str
    written_code: Optional['WrittenCode'] = None


@dataclass(frozen=True)
class WrittenCode:
    """
    The contents of a result.code, as read_result_code returns them
    (None if the box wrote none)
    """
    text: Optional[str]


def clear_stale_result(target_dir: str) -> None:
    """
    Remove a result.code of an earlier run: a box that dies before
    its agent writes one must not inherit the old verdict
    """
    remove_entry(os.path.join(target_dir, RESULT_CODE))


def read_result_code(target_dir: str) -> Optional[str]:
    """
    :return: the stripped contents of result.code, None if missing
    :raises KiwiBoxTargetDirError: if it is a link or a special file
    """
    code = read_file_end(os.path.join(target_dir, RESULT_CODE), READ_LIMIT)
    return None if code is None else code.decode(errors='replace').strip()


@dataclass(frozen=True)
class Verdict:
    """
    The judgement of a run: ok, or a one-line reason
    """
    ok: bool
    reason: str


def judge(result_code: Optional[str], box_exit: int, job_started: bool) -> Verdict:
    """
    Success needs all of: result.code present and 0, the box process
    (qemu or the container) ended with 0
    """
    if result_code is None:
        where = 'after the build started' if job_started else 'before the build started'
        return Verdict(False, f'the box ended {where} without writing {RESULT_CODE}')
    if result_code != '0':
        shown = result_code if result_code.lstrip('-').isdigit() else repr(result_code)
        return Verdict(False, f'the build in the box failed with exit code {shown}')
    if box_exit != 0:
        return Verdict(False, f'the box ended with exit code {box_exit}')
    return Verdict(True, 'the build in the box succeeded')


def failure_log(target_dir: str, console_log: str, started_at: float) -> str:
    """
    The log that tells why: result.log when this run wrote it, else
    the console (an old result.log would tell about another run, a
    link the build planted about any file)
    """
    result_log = os.path.join(target_dir, RESULT_LOG)
    try:
        status = os.lstat(result_log)
    except FileNotFoundError:
        return console_log
    if stat.S_ISREG(status.st_mode) and status.st_mtime >= started_at:
        return result_log
    return console_log


def tail_lines(path: str, count: int) -> List[str]:
    """
    The last count lines of a log of the target dir; none of a log that
    is missing, a link or a special file
    """
    try:
        text = read_file_end(path, READ_LIMIT)
    except KiwiBoxTargetDirError as issue:
        log.warning(str(issue))
        return []
    return text.decode(errors='replace').rstrip('\n').splitlines()[-count:] if text else []


def result_files(target_dir: str, started_at: float, own_files: Sequence[str]) -> List[str]:
    """
    Files of the target dir that this run created or changed, without
    the bookkeeping files of the run itself
    """
    found = []
    for entry in sorted(os.scandir(target_dir), key=lambda item: item.name):
        if entry.name in own_files or not entry.is_file(follow_symlinks=False):
            continue
        if entry.stat(follow_symlinks=False).st_mtime >= started_at:
            found.append(entry.name)
    return found


def raise_unless_succeeded(target_dir: str, console_log: str, run: BoxRun) -> None:
    """
    Judge the run; on failure show the tail of the telling log

    :raises KiwiBoxBuildFailedError: naming the log to read
    """
    code = run.written_code.text if run.written_code else read_result_code(target_dir)
    verdict = judge(code, run.outcome.exit_code, run.outcome.job_started)
    if verdict.ok:
        return
    telling_log = failure_log(target_dir, console_log, run.started_at)
    show_tail(telling_log)
    raise KiwiBoxBuildFailedError(f'{verdict.reason}: see {telling_log}')


def raise_if_stopped_at_limit(request: BoxbuildRequest, console_log: str, run: BoxRun) -> None:
    """
    A box stopped at a limit failed, whatever it left: say which limit
    and show the tail of the telling log

    :raises KiwiBoxRunError: if the box did not start its job in time
    :raises KiwiBoxTimeoutError: if the build outlasted --box-timeout
    """
    if run.outcome.limit == NOT_STARTED:
        silent = '' if show_tail(console_log) else ' (its console stayed empty)'
        raise KiwiBoxRunError(
            f'the box did not start its job within {request.start_seconds} s{silent} and '
            f'was stopped: see {console_log}; on a slow host set {START_TIMEOUT_VARIABLE} '
            'to more seconds'
        )
    if run.outcome.limit == TIMED_OUT:
        telling_log = failure_log(request.target_dir, console_log, run.started_at)
        show_tail(telling_log)
        raise KiwiBoxTimeoutError(
            f'the build did not end within --box-timeout={request.timeout_minutes} '
            f'minutes and the box was stopped: see {telling_log}'
        )


def show_tail(path: str) -> bool:
    """
    Log the last lines of a log that tells why a run failed

    :return: whether it had any
    """
    lines = tail_lines(path, FAILURE_TAIL_LINES)
    if lines:
        log.error(f'last lines of {path}:')
        for line in lines:
            log.error(f'  {line}')
    return bool(lines)


def summary_lines(target_dir: str, run: BoxRun, seconds: float) -> List[str]:
    """
    What a successful run tells the user: its time and engine, the new
    files, where the log is
    """
    own = [RESULT_CODE, RESULT_LOG, Defaults.get_console_log_name()]
    files = result_files(target_dir, run.started_at, own)
    minutes, rest = divmod(int(seconds), 60)
    lines = [f'build in the box done in {minutes}m{rest:02d}s with {run.engine}']
    lines.append(f'result files in {target_dir}:' if files else f'no new files in {target_dir}')
    lines += [f'  {name}' for name in files]
    lines.append(f'build log: {os.path.join(target_dir, RESULT_LOG)}')
    return lines
