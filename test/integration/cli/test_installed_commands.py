"""
The project installed into fresh virtualenvs with each supported kiwi
line, driven through the real kiwi-ng entry point.
"""
import os
import subprocess
import sys
import venv

import pytest

PROJECT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EMPTY_CATALOG = 'empty_catalog.yml'


@pytest.fixture(scope='module', params=['kiwi>=10,<11', 'kiwi>=9.24,<9.25'])
def kiwi_ng(request, tmp_path_factory):
    """A fresh virtualenv with the given kiwi and this project"""
    target = tmp_path_factory.mktemp('venv')
    venv.create(target, with_pip=True)
    pip = [str(target / 'bin' / 'python'), '-m', 'pip', 'install', '--quiet']
    subprocess.run(pip + [request.param, PROJECT], check=True)
    # a user catalog that adds no box: the first user catalog found wins,
    # so one in ~/.config/kiwi or /etc ('make box' puts the Debian box
    # there) cannot change what the tests see
    (target / EMPTY_CATALOG).write_text('box: []\n')
    return str(target / 'bin' / 'kiwi-ng')


def run(kiwi_ng, *args):
    venv_root = os.path.dirname(os.path.dirname(kiwi_ng))
    environment = dict(
        os.environ, KIWI_BOXED_PLUGIN_CFG=os.path.join(venv_root, EMPTY_CATALOG)
    )
    return subprocess.run(
        [kiwi_ng, *args], capture_output=True, text=True, env=environment,
        cwd='/', timeout=300
    )


@pytest.mark.parametrize('command,expected', [
    (['system', 'boxbuild', '--help'], 'kiwi-ng system boxbuild --box=<name>'),
    (['system', 'stash', '--help'], 'kiwi-ng system stash --root=<directory>'),
    (['system', 'stackbuild', '--help'], 'kiwi-ng system stackbuild --stash=<name>...'),
])
def test_help_exits_0_with_usage(kiwi_ng, command, expected):
    result = run(kiwi_ng, *command)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_list_boxes_shows_published_boxes(kiwi_ng):
    result = run(kiwi_ng, 'system', 'boxbuild', '--list-boxes')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    boxes = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert boxes == {
        'tumbleweed': 'x86_64,aarch64,s390x',
        'leap': 'x86_64',
        'fedora': 'x86_64',
        'ubuntu': 'x86_64,aarch64',
        'universal': 'x86_64,aarch64,s390x,ppc64le',
        'staging': 'x86_64,aarch64,s390x,ppc64le',
    }


@pytest.mark.parametrize('command,message', [
    (['system', 'boxbuild', '--box', 'leap', '--bogus', '--', '--description', 'd'],
     "unknown option '--bogus'"),
    (['system', 'boxbuild', '--box', 'leap', '--description', 'd', '--target-dir', 't'],
     "'--description' is an option of 'kiwi-ng system build': put it after '--'"),
    (['system', 'boxbuild', '--box', 'leap'],
     "missing '-- <arguments of kiwi-ng system build>'"),
    (['system', 'stash', '--frobnicate'], "unknown option '--frobnicate'"),
])
def test_bad_input_one_line_exit_1(kiwi_ng, command, message):
    result = run(kiwi_ng, *command)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1
    assert message in output
    assert len(output.splitlines()) == 1, output
    assert 'Traceback' not in output


def test_help_command_shows_man_page(kiwi_ng, tmp_path):
    # the man pages as built by 'make doc' (sphinx man builder)
    man_dir = tmp_path / 'man'
    subprocess.run(
        [sys.executable, '-m', 'sphinx', '-q', '-b', 'man',
         os.path.join(PROJECT, 'doc', 'source'), str(man_dir / 'man8')],
        check=True
    )
    environment = dict(
        os.environ, MANPATH=str(man_dir), MANPAGER='cat', PAGER='cat', MANWIDTH='200'
    )
    result = subprocess.run(
        [kiwi_ng, 'system', 'boxbuild', 'help'], capture_output=True, text=True,
        env=environment, timeout=120
    )
    assert result.returncode == 0
    # man justifies lines: compare with white space folded
    page = ' '.join(result.stdout.split())
    assert 'Runs a complete kiwi-ng system build inside a box' in page
    assert '--box-memory=<vmgb>' in page
