"""
box_builder.container_image: the podman image of the box's root tree
"""
import subprocess

import pytest

from box_builder import container_image
from box_builder.container_image import CONTAINER_LABEL, import_container
from box_builder.recipe import load_recipe

REFERENCE = 'localhost/kiwi-boxes/debian:latest'


@pytest.fixture
def podman_inspect(mocker):
    def inspect(returncode, label=''):
        return mocker.patch.object(
            container_image.subprocess, 'run',
            return_value=subprocess.CompletedProcess([], returncode, f'{label}\n'.encode())
        )
    return inspect


def test_imports_the_root_tarball_labelled_and_without_a_command(podman_inspect, mocker):
    inspect = podman_inspect(125)
    run = mocker.patch.object(container_image, 'run')
    import_container('/boxes/debian-box', load_recipe(), 'abc')
    assert inspect.call_args.args[0] == [
        'podman', 'image', 'inspect', '--format',
        '{{ index .Labels "org.kiwi-plugins.box-recipe" }}', REFERENCE
    ]
    run.assert_called_once_with([
        'podman', 'import', '--arch', 'amd64', '--change', f'LABEL {CONTAINER_LABEL}=abc',
        '/boxes/debian-box/Debian-Box.x86_64-rootfs.tar', REFERENCE
    ])


def test_an_image_of_another_recipe_is_replaced(podman_inspect, mocker):
    podman_inspect(0, 'old')
    run = mocker.patch.object(container_image, 'run')
    import_container('/boxes/debian-box', load_recipe(), 'abc')
    run.assert_called_once()


def test_an_image_of_this_recipe_stays(podman_inspect, mocker):
    podman_inspect(0, 'abc')
    run = mocker.patch.object(container_image, 'run')
    import_container('/boxes/debian-box', load_recipe(), 'abc')
    run.assert_not_called()


def test_the_conformance_image_has_systemd_as_entry_point(podman_inspect, mocker):
    podman_inspect(125)
    run = mocker.patch.object(container_image, 'run')
    import_container('/boxes/debian-conformance-box', load_recipe(flavour='conformance'), 'abc')
    run.assert_called_once_with([
        'podman', 'import', '--arch', 'amd64', '--change', f'LABEL {CONTAINER_LABEL}=abc',
        '--change', 'ENTRYPOINT ["/sbin/init"]',
        '/boxes/debian-conformance-box/Debian-Conformance-Box.x86_64-rootfs.tar',
        'localhost/kiwi-boxes/debian-conformance:latest'
    ])


def test_an_aarch64_image_is_of_its_arch_and_tagged_with_it(podman_inspect, mocker):
    inspect = podman_inspect(125)
    run = mocker.patch.object(container_image, 'run')
    import_container('/boxes/debian-box-aarch64', load_recipe(arch='arm64'), 'abc')
    assert inspect.call_args.args[0][-1] == 'localhost/kiwi-boxes/debian:aarch64'
    run.assert_called_once_with([
        'podman', 'import', '--arch', 'arm64', '--change', f'LABEL {CONTAINER_LABEL}=abc',
        '/boxes/debian-box-aarch64/Debian-Box.aarch64-rootfs.tar',
        'localhost/kiwi-boxes/debian:aarch64'
    ])
