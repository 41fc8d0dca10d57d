"""
box_builder.host_settings: what the box takes over from the host
"""
import configparser
import json

import pytest

from box_builder import host_settings
from box_builder.errors import BoxBuildError
from box_builder.host_settings import (
    box_pip_conf, box_pip_variables, carried_settings, host_credentials, host_pip_conf,
    pip_credentials, pip_settings, proxy_environment, without_credentials,
)


@pytest.fixture
def host_conf(tmp_path, monkeypatch):
    """
    Give the host a pip.conf: host_conf(text)
    """
    def write(text):
        conf = tmp_path / 'pip.conf'
        conf.write_text(text)
        monkeypatch.setattr(host_settings, 'HOST_PIP_CONF', str(conf))
    return write


class TestPipSettingsForBox:
    def parse(self, text):
        config = configparser.ConfigParser(interpolation=None)
        config.read_string(text)
        return {section: dict(config.items(section)) for section in config.sections()}

    def test_host_conf_and_variables(self):
        text = box_pip_conf(pip_settings(
            '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\ntimeout = 10\n'
            '[install]\nfind-links = /opt/wheels\n',
            {
                'PIP_DEFAULT_TIMEOUT': '180', 'PIP_FIND_LINKS': '/opt/wheels',
                'PIP_INDEX_URL': 'https://pypi.example/simple', 'PIP_TIMEOUT': '30',
                'PIP_CONFIG_FILE': '/somewhere/pip.conf', 'PATH': '/usr/bin',
            },
            lambda path: path == '/etc/ssl/certs/ca-certificates.crt'
        ))
        assert self.parse(text) == {
            'global': {
                'cert': '/etc/ssl/certs/ca-certificates.crt', 'timeout': '30',
                'default-timeout': '180', 'index-url': 'https://pypi.example/simple',
            },
            'install': {},
        }

    def test_nothing_configured(self):
        assert self.parse(box_pip_conf(pip_settings('', {}, lambda path: True))) == {
            'global': {}
        }

    def test_credentials_stay_out_of_the_file_and_reach_the_build(self):
        settings = pip_settings(
            '[global]\nindex-url = https://tok@pypi.example/simple\n'
            '[install]\ntrusted-host = pypi.example\n',
            {'PIP_EXTRA_INDEX_URL': 'file:///w https://u:pw@more.example/simple'},
            lambda path: True
        )
        assert self.parse(box_pip_conf(settings)) == {
            'global': {
                'index-url': 'https://pypi.example/simple',
                'extra-index-url': 'file:///w https://more.example/simple',
            },
            'install': {'trusted-host': 'pypi.example'},
        }
        assert pip_credentials(settings) == {
            'PIP_INDEX_URL': 'https://tok@pypi.example/simple',
            'PIP_EXTRA_INDEX_URL': 'file:///w https://u:pw@more.example/simple',
        }

    def test_a_later_file_wins(self):
        text = box_pip_conf(pip_settings(
            '[global]\ntimeout = 10\ncert = /c\n\n[global]\ntimeout = 20\n', {},
            lambda path: True
        ))
        assert self.parse(text) == {'global': {'timeout': '20', 'cert': '/c'}}

    def test_no_ini_file(self):
        with pytest.raises(BoxBuildError, match="pip configuration is no ini file"):
            pip_settings('timeout = 10\n', {}, lambda path: True)

    def test_the_install_section_wins_as_in_pip(self):
        settings = pip_settings(
            '[global]\nindex-url = https://tok@a.example/simple\n'
            '[install]\nindex-url = https://b.example/simple\n'
            '[download]\nfind-links = https://tok@c.example/\n',
            {}, lambda path: True
        )
        assert pip_credentials(settings) == {}


@pytest.mark.parametrize('value,without', [
    ('https://tok:SECRET@127.0.0.1:9/simple', 'https://127.0.0.1:9/simple'),
    ('https://TOKEN@pypi.example/me/', 'https://pypi.example/me/'),
    ('http://user:p@ss@proxy:3128', 'http://proxy:3128'),
    ('user:secret@proxy:3128', 'proxy:3128'),
    ('http://u%40x:pw@h/', 'http://h/'),
    ('file:///w https://a:b@x/simple', 'file:///w https://x/simple'),
    ('https://pypi.org/simple', 'https://pypi.org/simple'),
    ('http://host/?x=a@b', 'http://host/?x=a@b'),
    ('/home/a@b/wheels', '/home/a@b/wheels'),
    ('localhost,127.0.0.1', 'localhost,127.0.0.1'),
])
def test_without_credentials(value, without):
    assert without_credentials(value) == without


class TestProxyEnvironment:
    def test_only_set_proxies(self):
        assert proxy_environment({
            'https_proxy': 'http://p:3128', 'NO_PROXY': 'localhost', 'http_proxy': '',
            'HOME': '/root',
        }) == {'https_proxy': 'http://p:3128', 'NO_PROXY': 'localhost'}


class TestBoxPipVariables:
    def test_the_callers_own_pip_variables_stay_out(self):
        assert box_pip_variables({
            'PIP_INDEX_URL': 'https://pypi.example/simple', 'PIP_USER': '0',
            'PIP_CONFIG_FILE': '/x.conf', 'PIP_REQUIRE_VIRTUALENV': '1', 'HOME': '/root',
        }) == {'PIP_INDEX_URL': 'https://pypi.example/simple'}


class TestHostPipConf:
    def test_system_file_then_the_one_pip_config_file_names(self, tmp_path, monkeypatch):
        system, own = tmp_path / 'pip.conf', tmp_path / 'own.conf'
        system.write_text('[global]\ntimeout = 10')
        own.write_text('[global]\ntimeout = 20')
        monkeypatch.setattr(host_settings, 'HOST_PIP_CONF', str(system))
        assert host_pip_conf({'PIP_CONFIG_FILE': str(own)}) == \
            '[global]\ntimeout = 10\n[global]\ntimeout = 20\n'

    def test_none(self, tmp_path, monkeypatch):
        monkeypatch.setattr(host_settings, 'HOST_PIP_CONF', str(tmp_path / 'missing'))
        assert host_pip_conf({}) == ''


class TestCarriedSettings:
    def test_mirror_pip_and_proxies(self, tmp_path, monkeypatch):
        monkeypatch.setattr(host_settings, 'HOST_PIP_CONF', str(tmp_path / 'missing'))
        assert carried_settings('http://m.example/debian', {
            'PIP_TIMEOUT': '30', 'PIP_USER': '0', 'https_proxy': 'http://p:3128',
            'HOME': '/root',
        }) == {
            'mirror': 'http://m.example/debian', 'pip': '',
            'pip_environment': json.dumps({'PIP_TIMEOUT': '30'}),
            'https_proxy': 'http://p:3128',
        }

    def test_without_credentials(self, host_conf):
        host_conf('[global]\nindex-url = https://tok@pypi.example/simple\n')
        assert carried_settings('http://u:pw@m.example/debian', {
            'PIP_INDEX_URL': 'https://u:pw@pypi.example/simple',
            'https_proxy': 'http://u:pw@p:3128',
        }) == {
            'mirror': 'http://m.example/debian',
            'pip': '[global]\nindex-url = https://pypi.example/simple\n\n',
            'pip_environment': json.dumps({'PIP_INDEX_URL': 'https://pypi.example/simple'}),
            'https_proxy': 'http://p:3128',
        }


class TestHostCredentials:
    def test_every_credential_long_enough_to_look_for(self, host_conf):
        host_conf('[global]\nfind-links = git+ssh://git@example.org/w\n')
        assert host_credentials('http://mirror:password@m.example/debian', {
            'PIP_INDEX_URL': 'https://0123456789abcdef@pypi.example/simple',
            'https_proxy': 'u:p@proxy:3128', 'PIP_USER': 'x',
        }) == ['0123456789abcdef', 'mirror:password']

    def test_none(self, tmp_path, monkeypatch):
        monkeypatch.setattr(host_settings, 'HOST_PIP_CONF', str(tmp_path / 'missing'))
        assert host_credentials('http://m.example/debian', {'https_proxy': 'http://p:3128'}) == []
