"""
Fixtures of the boxed plugin's unit tests: a box of the catalog with one
arch, and requests built from real command lines.
"""
import pytest

from harness.command_line import command_args, global_args
from kiwi_boxed_plugin.catalog import Box, BoxArch
from kiwi_boxed_plugin.request import build_request

BOX_IMAGE = 'localhost/kiwi-boxes/debian:latest'


@pytest.fixture(autouse=True)
def no_package_cache(monkeypatch):
    """
    Box runs of the unit tests start no package proxy and write nothing
    into the user's cache; the tests of the cache turn it on
    """
    monkeypatch.setenv('KIWI_BOXED_PACKAGE_CACHE', 'off')


@pytest.fixture
def box_arch() -> BoxArch:
    return BoxArch(
        name='x86_64', cmdline=('root=/dev/vda1', 'rw'), source='file:///box',
        packages_file='p', boxfiles=('K.tar.xz', 'S.qcow2'), container=BOX_IMAGE,
        use_initrd=True
    )


@pytest.fixture
def box(box_arch) -> Box:
    return Box('debian', 4096, 2, 'hvc0', (box_arch,), 'test')


@pytest.fixture
def request_of(tmp_path):
    """
    make(global_options=None, build_args=(), **boxbuild_options): the
    request of a boxbuild of a description whose path holds characters
    a shell or the protocol would trip over
    """
    description = tmp_path / 'my desc, "quoted" $(touch X)'
    description.mkdir()
    (description / 'config.xml').write_text('<image/>')

    def make(global_options=None, build_args=(), **options):
        return build_request(command_args(**{
            '<kiwi_build_command_args>': [
                '--description', str(description),
                '--target-dir', str(tmp_path / 'tar:get dir')
            ] + list(build_args), **options
        }), global_args(**(global_options or {})))
    return make
