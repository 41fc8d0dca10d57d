"""
A box built on a host whose pip, proxy and mirror settings hold
credentials: the build uses them and succeeds, and no file the builder
publishes (the system disk, the root tarball for podman, ...) holds any
of them, nor does the builder's output.
"""
import os
import subprocess

import pytest

from box_builder.files import first_file_holding
from harness.debian_box import BOX_OUTPUT, builder_argv
from harness.paths import TEST_STORE, scratch_dir

# a whole box build: make e2e, not CI
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.e2e]

SECRETS = ('PROXYSECRET', 'PIPSECRET', 'CONFSECRET', 'MIRRORSECRET')


@pytest.fixture(scope='module')
def secret_box(mirror):
    """
    The box built into a scratch output with a credential in each of
    the host's settings, none of them changing where the build goes:
    the proxy is bypassed for every host, the extra index and the find
    links answer nothing (and pip does not retry)

    :return: (the box directory, the builder's output)
    """
    with scratch_dir(os.path.join(TEST_STORE, 'box')) as work:
        output = os.path.join(work, 'box')
        if os.path.isdir(f'{BOX_OUTPUT}.debs'):
            # the packages 'make box' downloaded already, linked
            subprocess.run(['cp', '-al', f'{BOX_OUTPUT}.debs', f'{output}.debs'], check=True)
        pip_conf = os.path.join(work, 'pip.conf')
        with open(pip_conf, 'w') as handle:
            handle.write('[global]\nfind-links = https://ftok:CONFSECRET@127.0.0.1:9/links/\n')
        environment = dict(
            os.environ, https_proxy='http://puser:PROXYSECRET@127.0.0.1:9/', no_proxy='*',
            PIP_EXTRA_INDEX_URL='https://tok:PIPSECRET@127.0.0.1:9/simple', PIP_RETRIES='0',
            PIP_CONFIG_FILE=pip_conf, TMPDIR=work
        )
        scheme, _, location = mirror.partition('://')
        done = subprocess.run(
            builder_argv(
                '--output', output, '--no-catalog', '--no-container',
                '--mirror', f'{scheme}://muser:MIRRORSECRET@{location}'
            ),
            env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        log = done.stdout.decode()
        assert done.returncode == 0, log
        yield os.path.realpath(output), log


def test_no_published_file_holds_a_credential(secret_box):
    box_dir, _ = secret_box
    assert first_file_holding(box_dir, [secret.encode() for secret in SECRETS]) is None
    assert sorted(os.listdir(box_dir)) == [
        'Debian-Box.x86_64-Kernel.tar.xz', 'Debian-Box.x86_64-Kernel.tar.xz.sha256',
        'Debian-Box.x86_64-System.packages', 'Debian-Box.x86_64-System.qcow2',
        'Debian-Box.x86_64-System.qcow2.sha256', 'Debian-Box.x86_64-rootfs.tar',
        'recipe.hash',
    ]


def test_the_builders_output_names_no_credential(secret_box):
    _, log = secret_box
    assert [secret for secret in SECRETS if secret in log] == []
