"""
The Debian box of boxes/debian, made by its builder: built, or reused
while its recipe is unchanged (the builder keeps its output by a hash
of the recipe), where 'make box' puts it so that all reuse one box.
"""
import os
import subprocess
import sys
from typing import List

from harness.paths import REPOSITORY

BOX_BUILDER = os.path.join(REPOSITORY, 'boxes', 'debian', 'build-box')
# where 'make box' publishes the box
BOX_OUTPUT = os.environ.get('KIWI_PLUGINS_BOX_DIR', '/var/cache/kiwi-plugins/debian-box')
# and the conformance flavour, 'make box BOX_FLAVOUR=conformance'
CONFORMANCE_BOX_OUTPUT = os.environ.get(
    'KIWI_PLUGINS_CONFORMANCE_BOX_DIR', '/var/cache/kiwi-plugins/debian-conformance-box'
)
# the builder's flavours and where each is published
AGENT = 'agent'
CONFORMANCE = 'conformance'
BOX_OUTPUTS = {AGENT: BOX_OUTPUT, CONFORMANCE: CONFORMANCE_BOX_OUTPUT}


def builder_argv(*options: str) -> List[str]:
    """
    The command that runs the box builder with options
    """
    return [sys.executable, BOX_BUILDER] + list(options)


def run_builder(environment: dict, *options: str, flavour: str = AGENT) -> str:
    """
    The builder run as 'make box' runs it, into the flavour's output
    (BOX_OUTPUT for our agent's box)

    :param dict environment: of the builder, with a TMPDIR (created)
    :param str flavour: AGENT or CONFORMANCE
    :return: its output; it must succeed
    """
    os.makedirs(environment['TMPDIR'], exist_ok=True)
    done = subprocess.run(
        builder_argv('--flavour', flavour, '--output', BOX_OUTPUTS[flavour], *options),
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = done.stdout.decode()
    assert done.returncode == 0, output
    return output
