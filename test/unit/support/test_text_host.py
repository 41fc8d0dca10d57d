import os

import pytest

from kiwi_plugin_support.description import description_problem
from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError
from kiwi_plugin_support.host import find_program, free_port, host_arch
from kiwi_plugin_support.text import human_size, last_line, read_text


def test_read_text_replaces_bytes_that_are_no_utf8(tmp_path):
    path = tmp_path / 'log'
    path.write_bytes(b'ok \xff\n')
    assert read_text(str(path)) == 'ok \ufffd\n'


@pytest.mark.parametrize('text, expected', [
    ('first\nsecond\n\n  \n', 'second'),
    ('  only one  ', 'only one'),
    ('', '(no output)'),
    ('\n \n', '(no output)'),
])
def test_last_line_is_the_last_line_with_text(text, expected):
    assert last_line(text) == expected


def test_last_line_says_what_it_was_told_when_empty():
    assert last_line('', empty='no error message') == 'no error message'


@pytest.mark.parametrize('size, expected', [
    (0, '0 B'), (999, '999 B'), (1000, '1 kB'), (211_000_000, '211 MB'),
    (1_500_000_000, '1.5 GB'), (2_000_000_000_000, '2 TB'), (5e15, '5000 TB'),
])
def test_human_size_uses_podmans_si_units(size, expected):
    assert human_size(size) == expected


def test_host_arch_uses_kiwi_names(mocker):
    mocker.patch('platform.machine', return_value='arm64')
    assert host_arch() == 'aarch64'
    mocker.patch('platform.machine', return_value='amd64')
    assert host_arch() == 'x86_64'
    mocker.patch('platform.machine', return_value='s390x')
    assert host_arch() == 's390x'


def test_find_program_looks_in_sbin_too(mocker):
    which = mocker.patch('shutil.which', return_value='/usr/sbin/sshd')
    assert find_program('sshd', 'openssh-server', 'for sshfs') == '/usr/sbin/sshd'
    assert '/usr/sbin' in which.call_args.kwargs['path'].split(os.pathsep)


def test_find_program_names_the_package_when_missing(mocker):
    mocker.patch('shutil.which', return_value=None)
    with pytest.raises(KiwiPluginToolMissingError, match='^sshd not found, needed for sshfs: '
                       'install openssh-server$'):
        find_program('sshd', 'openssh-server', 'for sshfs')


def test_free_port_is_a_port_of_loopback():
    assert 1024 <= free_port() <= 65535


def test_description_problem(tmp_path):
    missing = str(tmp_path / 'missing')
    assert description_problem(missing) == f'description directory {missing} not found'
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert description_problem(str(empty)) == (
        f'{empty} is not a kiwi description: it has no config.xml or *.kiwi'
    )
    (empty / 'app.kiwi').write_text('<image/>')
    assert description_problem(str(empty)) == ''
    assert description_problem(str(empty), 'other.xml') == (
        f'{empty} is not a kiwi description: it has no other.xml'
    )
    (empty / 'other.xml').write_text('<image/>')
    assert description_problem(str(empty), 'other.xml') == ''
