"""
kiwi-ng runs of the stash and stackbuild suites: the probe description
of test/data/stackbuild with the host's mirror, and kiwi-ng with the
test runtime configuration (fast xz) and a temp dir of the suite's.
"""
import os
import subprocess
from typing import List, Optional

from harness.paths import KIWI_NG, TEST_DATA

DATA = os.path.join(TEST_DATA, 'stackbuild')
DESCRIPTION = os.path.join(DATA, 'description')
RUNTIME_CONFIG = os.path.join(DATA, 'runtime', 'kiwi.yml')
KIWI: List[str] = [KIWI_NG]

# kiwi's --temp-dir for the kiwi-ng runs, set by the suite's fixture
# of its private container storage
TEMP_DIR: Optional[str] = None


def write_description(config: str, mirror: str, name: str = 'stackbuild-probe') -> None:
    """
    Write the test description with the host's mirror to config, e.g.
    ROOT/image/config.xml where kiwi keeps it in a root tree
    """
    with open(os.path.join(DESCRIPTION, 'config.xml')) as handle:
        text = handle.read().replace('@MIRROR@', mirror)
    text = text.replace('name="stackbuild-probe"', f'name="{name}"')
    os.makedirs(os.path.dirname(config), exist_ok=True)
    with open(config, 'w') as handle:
        handle.write(text)


def kiwi_argv(*args: str) -> List[str]:
    """
    The kiwi-ng command line of this venv with the test runtime config
    (fast xz) and the suite's temp dir
    """
    temp = ['--temp-dir', TEMP_DIR] if TEMP_DIR else []
    return KIWI + ['--config', RUNTIME_CONFIG] + temp + list(args)


def kiwi(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """
    Run kiwi-ng of this venv with the test runtime config (fast xz)
    """
    result = subprocess.run(kiwi_argv(*args), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f'kiwi-ng {" ".join(args)} failed ({result.returncode}):\n'
            f'{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
        )
    return result


def kiwi_error(*args: str) -> str:
    """
    Run kiwi-ng as kiwi() does, expect exit status 1 with one error
    line and no traceback; return the line
    """
    result = kiwi(*args, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and 'Traceback' not in output, output
    errors = [line for line in output.splitlines() if 'ERROR' in line]
    assert len(errors) == 1, output
    return errors[0]
