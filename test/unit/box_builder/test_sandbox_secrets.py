"""
No secret of the host goes into the box: the host's pip.conf, PIP_*
and proxy variables and the mirror hold credentials here, and the
builder's steps run on a root tree of their own (the chroot's programs
faked); no file of the tree, nor the recipe hash, holds any of them,
while the build's own pip and apt still get them.
"""
import json
import os

import pytest

from box_builder import host_settings, root_tree
from box_builder.errors import BoxBuildError
from box_builder.host_settings import PROXY_VARIABLES, carried_settings
from box_builder.recipe import load_recipe
from box_builder.root_tree import RootTreeBuilder

SECRETS = (
    'CONFTOKEN', 'CONFPASS', 'ENVTOKEN', 'ENVPASS', 'PROXYPASS', 'PLAINPASS', 'MIRRORPASS'
)
MIRROR = 'http://mirroruser:MIRRORPASS@m.example/debian'
HOST_PIP_CONF = (
    '[global]\n'
    'index-url = https://CONFTOKEN@pypi.example/simple\n'
    '[install]\n'
    'find-links = https://confuser:CONFPASS@wheels.example/\n'
)
HOST_ENVIRONMENT = {
    'PIP_EXTRA_INDEX_URL': 'https://tok:ENVTOKEN@127.0.0.1:9/simple',
    'PIP_INDEX_URL': 'https://envuser:ENVPASS@index.example/simple',
    'PIP_RETRIES': '0',
    'https_proxy': 'http://user:PROXYPASS@proxy.example:3128/',
    'HTTP_PROXY': 'user:PLAINPASS@proxy.example:3128',
    'no_proxy': 'localhost',
}


@pytest.fixture
def host(tmp_path, monkeypatch):
    """
    The host's settings, credentials in each of them
    """
    conf = tmp_path / 'pip.conf'
    conf.write_text(HOST_PIP_CONF)
    monkeypatch.setattr(host_settings, 'HOST_PIP_CONF', str(conf))
    for name in list(os.environ):
        if name in PROXY_VARIABLES or name.startswith('PIP_'):
            monkeypatch.delenv(name)
    for name, value in HOST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def built(tmp_path, host, mocker):
    """
    The builder's steps from the chroot's preparation to the files
    tree on a root tree as debootstrap leaves it; returns the builder
    and the fake of the programs it ran
    """
    rootfs = tmp_path / 'rootfs'
    for name in ('etc/apt', 'usr/local/bin', 'etc/systemd/system', 'var/log'):
        (rootfs / name).mkdir(parents=True)
    (rootfs / 'etc/apt/sources.list').write_text(f'deb {MIRROR} bookworm main\n')
    # debootstrap logs every URL it fetched
    (rootfs / 'var/log/bootstrap.log').write_text(f'URL:{MIRROR}/dists/bookworm/Release\n')
    (rootfs / 'etc/environment').write_text('')
    programs = mocker.patch.object(root_tree, 'run')
    mocker.patch.object(root_tree, 'host_ca_certificates', return_value=[])
    builder = RootTreeBuilder(load_recipe(), MIRROR, str(rootfs), str(tmp_path / 'debs'))
    builder.prepare_chroot()
    builder.carry_host_settings()
    builder.install_kiwi()
    builder.install_agent()
    builder.clean_up_chroot()
    builder.finish_files()
    return builder, programs


def tree_content(rootfs):
    for parent, _, names in os.walk(rootfs):
        for name in names:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                with open(path, 'rb') as handle:
                    yield path, handle.read()


def test_no_file_of_the_box_holds_a_secret(built):
    builder, _ = built
    leaks = [
        (os.path.relpath(path, builder.rootfs), secret)
        for path, content in tree_content(builder.rootfs)
        for secret in SECRETS if secret.encode() in content
    ]
    assert leaks == []


def test_the_box_keeps_where_the_settings_go(built):
    builder, _ = built
    with open(builder.path('etc/pip.conf')) as handle:
        pip_conf = handle.read()
    assert 'index-url = https://index.example/simple' in pip_conf
    assert 'extra-index-url = https://127.0.0.1:9/simple' in pip_conf
    assert 'find-links = https://wheels.example/' in pip_conf
    with open(builder.path('etc/environment')) as handle:
        assert handle.read().splitlines() == [
            'https_proxy=http://proxy.example:3128/', 'no_proxy=localhost',
            'HTTP_PROXY=proxy.example:3128',
        ]
    with open(builder.path('etc/apt/sources.list')) as handle:
        assert handle.read() == 'deb http://m.example/debian bookworm main\n'


def test_the_builds_own_pip_gets_the_credentials(built):
    _, programs = built
    pip_install = [
        call for call in programs.call_args_list if '/opt/kiwi/bin/pip' in call.args[0]
    ]
    environment = pip_install[0].kwargs['env']
    assert environment['PIP_INDEX_URL'] == HOST_ENVIRONMENT['PIP_INDEX_URL']
    assert environment['PIP_EXTRA_INDEX_URL'] == HOST_ENVIRONMENT['PIP_EXTRA_INDEX_URL']
    assert environment['PIP_FIND_LINKS'] == 'https://confuser:CONFPASS@wheels.example/'
    assert environment['https_proxy'] == HOST_ENVIRONMENT['https_proxy']


def test_the_recipe_hash_counts_no_secret(host):
    counted = json.dumps(carried_settings(MIRROR, os.environ))
    assert [secret for secret in SECRETS if secret in counted] == []


def test_the_finished_tree_passes_the_last_check(built):
    builder, _ = built
    builder.refuse_credentials()


def test_a_tree_holding_a_credential_is_no_box(built):
    builder, _ = built
    os.makedirs(builder.path('var/log/apt'))
    with open(builder.path('var/log/apt/history.log'), 'w') as log:
        log.write(f'Fetched {MIRROR}/pool/main/a.deb\n')
    with pytest.raises(BoxBuildError, match=(
        r'^/var/log/apt/history.log of the box holds a credential of the host.s pip, proxy '
        r'or mirror settings, so the box is not published'
    )):
        builder.refuse_credentials()
