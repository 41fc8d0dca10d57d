"""
What the box takes over from the host: its CA certificates, pip
settings and proxy variables, so that pip and kiwi in the box reach
what the host reaches.
"""
import configparser
import glob
import io
import json
import os
from typing import Callable, Dict, List, Mapping

from box_builder.files import read_file

HOST_CA_DIR = '/usr/local/share/ca-certificates'
HOST_PIP_CONF = '/etc/pip.conf'
# PIP_* variables that choose how the caller's pip behaves, not what the
# box's pip needs (tox sets PIP_USER=0, say): neither carried into the
# box nor part of the recipe hash, so every caller reuses one box
CALLER_PIP_VARIABLES = ('PIP_CONFIG_FILE', 'PIP_USER', 'PIP_REQUIRE_VIRTUALENV')
PROXY_VARIABLES = (
    'http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'
)


def host_ca_certificates() -> List[str]:
    """
    :return: the paths of the host's local CA certificates, sorted
    """
    return sorted(glob.glob(os.path.join(HOST_CA_DIR, '*.crt')))


def box_pip_variables(environ: Mapping[str, str]) -> Dict[str, str]:
    """
    The PIP_* variables of the host that the box's pip gets
    """
    return {
        name: value for name, value in environ.items()
        if name.startswith('PIP_') and name not in CALLER_PIP_VARIABLES
    }


def pip_settings_for_box(
    host_conf: str, environ: Mapping[str, str], exists_in_box: Callable[[str], bool]
) -> str:
    """
    The box's /etc/pip.conf: the host's pip.conf with the PIP_*
    variables of the host folded in (variables win, as in pip)

    Settings naming a local path that does not exist in the box (a
    host's wheel directory, say) are left out: in the box they only
    make pip warn.

    :param str host_conf: the host's pip configuration
    :param dict environ: the host's environment
    :param callable exists_in_box: whether an absolute path exists in the box
    """
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(host_conf)
    if not config.has_section('global'):
        config.add_section('global')
    for variable, value in sorted(box_pip_variables(environ).items()):
        config.set('global', variable[4:].lower().replace('_', '-'), value)
    for section in config.sections():
        for key, value in list(config.items(section)):
            if value.startswith('/') and not exists_in_box(value):
                config.remove_option(section, key)
    text = io.StringIO()
    config.write(text)
    return text.getvalue()


def proxy_environment(environ: Mapping[str, str]) -> Dict[str, str]:
    """
    The proxy settings of the host, which the box needs to reach the
    same registries
    """
    return {name: environ[name] for name in PROXY_VARIABLES if environ.get(name)}


def host_pip_conf(environ: Mapping[str, str]) -> str:
    """
    The host's pip configuration file(s), as pip itself would read them

    :param dict environ: the host's environment, which may name another
        file in PIP_CONFIG_FILE
    """
    text = ''
    for path in (HOST_PIP_CONF, environ.get('PIP_CONFIG_FILE', '')):
        if path and os.path.isfile(path):
            text += read_file(path).decode() + '\n'
    return text


def carried_settings(mirror: str, environ: Mapping[str, str]) -> Dict[str, str]:
    """
    The host's settings that go into the box, as the recipe hash
    counts them

    :param str mirror: the Debian mirror the box is built from
    :param dict environ: the host's environment
    """
    return {
        'mirror': mirror,
        'pip': host_pip_conf(environ),
        'pip_environment': json.dumps(box_pip_variables(environ), sort_keys=True),
        **proxy_environment(environ),
    }
