"""
What the box takes over from the host: its CA certificates, pip
settings and proxy variables, so that pip and kiwi in the box reach
what the host reaches.

No secret of the host goes into the box, whose files are world
readable and published: every URL loses its user and password (index
tokens are the user of their URL). The build's own pip and apt get the
settings whole through the environment of the chroot, which no file
keeps; a build in the box that needs a credential exports it in the
description's boxprofile.
"""
import configparser
import glob
import io
import json
import os
import re
from typing import Callable, Dict, List, Mapping

from box_builder.errors import BoxBuildError
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
# the user and password of a URL: what lies between '//' (or the start
# of a word: proxies go without scheme too) and the last '@' before the
# URL's path, query or fragment
URL_USERINFO = re.compile(r'(?:(?<=//)|(?<!\S))[^/?#\s]*@')
# the shortest credential that the check of the finished tree looks for
MIN_CREDENTIAL = 8


def without_credentials(value: str) -> str:
    """
    A setting with the user and password taken out of every URL in it
    """
    return URL_USERINFO.sub('', value)


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


def pip_settings(
    host_conf: str, environ: Mapping[str, str], exists_in_box: Callable[[str], bool]
) -> configparser.ConfigParser:
    """
    The pip settings of the box: the host's pip.conf with the PIP_*
    variables of the host folded in (variables win, as in pip), the
    credentials still in

    Settings naming a local path that does not exist in the box (a
    host's wheel directory, say) are left out: in the box they only
    make pip warn.

    :param str host_conf: the host's pip configuration files, one
        after the other (a section of a later one wins, as in pip)
    :param dict environ: the host's environment
    :param callable exists_in_box: whether an absolute path exists in the box
    :raises BoxBuildError: if the configuration is no ini file
    """
    config = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        config.read_string(host_conf)
    except configparser.Error as issue:
        raise BoxBuildError(
            f"the host's pip configuration is no ini file ({issue.message.splitlines()[0]}): "
            f'fix {HOST_PIP_CONF} or the file PIP_CONFIG_FILE names'
        )
    if not config.has_section('global'):
        config.add_section('global')
    for variable, value in sorted(box_pip_variables(environ).items()):
        config.set('global', variable[4:].lower().replace('_', '-'), value)
    for section in config.sections():
        for key, value in list(config.items(section)):
            if value.startswith('/') and not exists_in_box(value):
                config.remove_option(section, key)
    return config


def box_pip_conf(settings: configparser.ConfigParser) -> str:
    """
    The box's /etc/pip.conf: the settings without credentials
    """
    config = configparser.ConfigParser(interpolation=None)
    config.read_dict({
        section: {key: without_credentials(value) for key, value in settings.items(section)}
        for section in settings.sections()
    })
    text = io.StringIO()
    config.write(text)
    return text.getvalue()


def pip_credentials(settings: configparser.ConfigParser) -> Dict[str, str]:
    """
    The settings of 'pip install' that /etc/pip.conf of the box has
    without their credentials, whole, as PIP_* variables for the
    build's own pip (which installs kiwi)
    """
    install = {
        key: value
        # the command's section wins over the global one, as in pip
        for section in ('global', 'install') if settings.has_section(section)
        for key, value in settings.items(section)
    }
    return {
        'PIP_' + key.upper().replace('-', '_'): value
        for key, value in install.items() if without_credentials(value) != value
    }


def proxy_environment(environ: Mapping[str, str]) -> Dict[str, str]:
    """
    The proxy settings of the host, which the build needs to reach the
    same registries (the box gets them without_credentials)
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


def settings_with_credentials(mirror: str, environ: Mapping[str, str]) -> Dict[str, str]:
    """
    The host's settings that the build uses, credentials still in

    :param str mirror: the Debian mirror the box is built from
    :param dict environ: the host's environment
    """
    return {
        'mirror': mirror,
        'pip': host_pip_conf(environ),
        'pip_environment': json.dumps(box_pip_variables(environ), sort_keys=True),
        **proxy_environment(environ),
    }


def carried_settings(mirror: str, environ: Mapping[str, str]) -> Dict[str, str]:
    """
    The host's settings that go into the box, as the recipe hash
    counts them: without credentials, which stay out of the box, and
    out of the published hash (a short password could be guessed from
    it)
    """
    return {
        name: without_credentials(value)
        for name, value in settings_with_credentials(mirror, environ).items()
    }


def host_credentials(mirror: str, environ: Mapping[str, str]) -> List[str]:
    """
    The credentials of the host's settings, each as its URL holds it
    ('user:password', or a token), that no file of the box may hold

    Shorter ones than MIN_CREDENTIAL cannot be told from other text
    (a user name like 'git' without password) and are left out.
    """
    return sorted({
        found[:-1]
        for value in settings_with_credentials(mirror, environ).values()
        for found in URL_USERINFO.findall(value) if len(found) > MIN_CREDENTIAL
    })
