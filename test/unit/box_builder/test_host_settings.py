"""
box_builder.host_settings: what the box takes over from the host
"""
import configparser
import json

from box_builder import host_settings
from box_builder.host_settings import (
    box_pip_variables, carried_settings, host_pip_conf, pip_settings_for_box,
    proxy_environment,
)


class TestPipSettingsForBox:
    def parse(self, text):
        config = configparser.ConfigParser(interpolation=None)
        config.read_string(text)
        return {section: dict(config.items(section)) for section in config.sections()}

    def test_host_conf_and_variables(self):
        text = pip_settings_for_box(
            '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\ntimeout = 10\n'
            '[install]\nfind-links = /opt/wheels\n',
            {
                'PIP_DEFAULT_TIMEOUT': '180', 'PIP_FIND_LINKS': '/opt/wheels',
                'PIP_INDEX_URL': 'https://pypi.example/simple', 'PIP_TIMEOUT': '30',
                'PIP_CONFIG_FILE': '/somewhere/pip.conf', 'PATH': '/usr/bin',
            },
            lambda path: path == '/etc/ssl/certs/ca-certificates.crt'
        )
        assert self.parse(text) == {
            'global': {
                'cert': '/etc/ssl/certs/ca-certificates.crt', 'timeout': '30',
                'default-timeout': '180', 'index-url': 'https://pypi.example/simple',
            },
            'install': {},
        }

    def test_nothing_configured(self):
        assert self.parse(pip_settings_for_box('', {}, lambda path: True)) == {
            'global': {}
        }


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
