import json
import os
from unittest.mock import Mock

import pytest

from kiwi_stackbuild_plugin import images as images_module
from kiwi_stackbuild_plugin.exceptions import KiwiContainerToolError, KiwiRegistryError
from kiwi_stackbuild_plugin.images import ContainerImages, last_line, registry_options
from kiwi_stackbuild_plugin.layer import LayerTar


def result(output='', error='', returncode=0):
    return Mock(output=output, error=error, returncode=returncode)


@pytest.fixture
def run(mocker):
    return mocker.patch.object(images_module.Command, 'run', return_value=result())


def test_last_line():
    assert last_line('a\n\n  b  \n\n') == 'b'
    assert last_line('') == 'no error message'


def test_registry_options():
    assert registry_options(None, None) == []
    assert registry_options('/a f.json', True) == ['--authfile=/a f.json', '--tls-verify=true']
    assert registry_options(None, False) == ['--tls-verify=false']


def test_missing_auth_file(tmp_path):
    with pytest.raises(KiwiRegistryError, match='podman login'):
        ContainerImages(str(tmp_path / 'auth.json'))


def test_exists(run):
    assert ContainerImages().exists('localhost/a:b')
    run.assert_called_once_with(
        ['podman', 'image', 'exists', 'localhost/a:b'], custom_env=None, raise_on_error=False
    )
    run.return_value = result(returncode=1)
    assert not ContainerImages().exists('localhost/a:b')


def test_inspect_and_failure(run):
    run.return_value = result(output='[{"Id": "abc"}]')
    assert ContainerImages().inspect('x') == {'Id': 'abc'}
    run.return_value = result(error='Error: x\nError: image not known\n', returncode=125)
    with pytest.raises(KiwiContainerToolError, match='^cannot inspect x: Error: image not known$'):
        ContainerImages().inspect('x')


def test_stashes(run):
    run.return_value = result(output='[{"Id": "a"}]')
    assert ContainerImages().stashes() == [{'Id': 'a'}]
    run.assert_called_once_with([
        'podman', 'images', '--format', 'json',
        '--filter', 'label=org.opensuse.kiwi.stash.image-name'
    ], custom_env=None, raise_on_error=False)
    run.return_value = result(output='')
    assert ContainerImages().stashes() == []


def test_commit_first_layer(run, tmp_path):
    (tmp_path / 'layer.tar').write_bytes(b'tar')
    layer = LayerTar(str(tmp_path / 'layer.tar'), 'sha256:' + 'e' * 64, 3)
    work = tmp_path / 'oci'
    work.mkdir()
    image = ContainerImages().commit(
        layer, None, {'k': 'v'}, 'amd64', 'T', 'localhost/s:latest', str(work)
    )
    run.assert_called_once_with([
        'skopeo', 'copy', '--quiet', f'oci:{work}:stash', 'containers-storage:localhost/s:latest'
    ], custom_env=None, raise_on_error=False)
    index = json.loads((work / 'index.json').read_text())
    manifest_digest = index['manifests'][0]['digest'].split(':')[1]
    manifest = json.loads((work / 'blobs' / 'sha256' / manifest_digest).read_text())
    assert manifest['layers'] == [{
        'mediaType': 'application/vnd.oci.image.layer.v1.tar',
        'digest': layer.digest, 'size': 3
    }]
    config = json.loads(
        (work / 'blobs' / 'sha256' / manifest['config']['digest'].split(':')[1]).read_text()
    )
    assert image == manifest['config']['digest'].split(':')[1]
    assert config['config']['Labels'] == {'k': 'v'}
    assert os.path.samefile(work / 'blobs' / 'sha256' / ('e' * 64), layer.path)
    assert json.loads((work / 'oci-layout').read_text()) == {'imageLayoutVersion': '1.0.0'}


def test_commit_on_a_base(run, tmp_path):
    (tmp_path / 'layer.tar').write_bytes(b'tar')
    layer = LayerTar(str(tmp_path / 'layer.tar'), 'sha256:' + 'f' * 64, 3)
    base_manifest = {'layers': [{
        'mediaType': 'application/vnd.oci.image.layer.v1.tar', 'digest': 'sha256:b', 'size': 9
    }]}
    base_config = {'rootfs': {'type': 'layers', 'diff_ids': ['sha256:b']}}
    run.side_effect = [
        result(output=json.dumps(base_manifest)), result(output=json.dumps(base_config)),
        result(),
    ]
    work = tmp_path / 'oci'
    work.mkdir()
    ContainerImages().commit(layer, 'base-id', {}, 'amd64', 'T', 'localhost/s:v2', str(work))
    assert [call.args[0][:4] for call in run.call_args_list[:2]] == [
        ['skopeo', 'inspect', '--raw', 'containers-storage:base-id'],
        ['skopeo', 'inspect', '--config', '--raw'],
    ]
    blobs = {name: (work / 'blobs' / 'sha256' / name).read_bytes()
             for name in os.listdir(work / 'blobs' / 'sha256')}
    configs = [json.loads(data) for data in blobs.values()
               if data.startswith(b'{') and b'diff_ids' in data]
    assert configs[0]['rootfs']['diff_ids'] == ['sha256:b', layer.digest]


def test_commit_failure(run, tmp_path):
    (tmp_path / 'layer.tar').write_bytes(b'tar')
    run.return_value = result(error='FATA[0000] writing blob: no space', returncode=1)
    (tmp_path / 'oci').mkdir()
    with pytest.raises(KiwiContainerToolError, match='cannot store the stash r: .*no space'):
        ContainerImages().commit(
            LayerTar(str(tmp_path / 'layer.tar'), 'sha256:' + 'a' * 64, 3),
            None, {}, 'amd64', 'T', 'r', str(tmp_path / 'oci')
        )


def test_mounted_unmounts_on_error(run):
    run.return_value = result(output='/var/lib/containers/merged\n')
    with pytest.raises(RuntimeError):
        with ContainerImages().mounted('id') as tree:
            assert tree == '/var/lib/containers/merged'
            raise RuntimeError()
    assert [call.args[0] for call in run.call_args_list] == [
        ['podman', 'image', 'mount', 'id'], ['podman', 'image', 'unmount', 'id']
    ]


def test_layer_dirs(run):
    run.return_value = result(output=json.dumps([{'GraphDriver': {
        'Name': 'overlay', 'Data': {'UpperDir': '/u', 'LowerDir': '/l2:/l1'}
    }}]))
    assert ContainerImages().layer_dirs('x') == ['/l1', '/l2', '/u']
    run.return_value = result(output=json.dumps([{'GraphDriver': {
        'Name': 'overlay', 'Data': {'UpperDir': '/u'}
    }}]))
    assert ContainerImages().layer_dirs('x') == ['/u']
    run.return_value = result(output=json.dumps([{'GraphDriver': {'Name': 'vfs'}}]))
    assert ContainerImages().layer_dirs('x') is None


def test_tag_and_remove(run):
    ContainerImages().tag('id', 'localhost/a:b')
    ContainerImages().remove('localhost/a:b')
    assert [call.args[0] for call in run.call_args_list] == [
        ['podman', 'tag', 'id', 'localhost/a:b'], ['podman', 'rmi', 'localhost/a:b']
    ]


def test_pull_returns_the_id_and_fails_as_registry_error(run, tmp_path):
    auth = tmp_path / 'auth.json'
    auth.write_text('{}')
    run.return_value = result(output='Trying...\n' + 'c' * 64 + '\n')
    assert ContainerImages(str(auth), False).pull('r:5000/s/a:b') == 'c' * 64
    run.assert_called_once_with([
        'podman', 'pull', '--quiet', f'--authfile={auth}', '--tls-verify=false',
        'docker://r:5000/s/a:b'
    ], custom_env=None, raise_on_error=False)
    run.return_value = result(error='Error: connection refused', returncode=125)
    with pytest.raises(KiwiRegistryError, match='cannot pull r/a:b: Error: connection refused'):
        ContainerImages().pull('r/a:b')


def test_push(run):
    ContainerImages(tls_verify=True).push('localhost/a:b', 'r/s/a:b')
    run.assert_called_once_with([
        'podman', 'push', '--quiet', '--tls-verify=true', 'localhost/a:b', 'docker://r/s/a:b'
    ], custom_env=None, raise_on_error=False)
    run.return_value = result(error='unauthorized', returncode=125)
    with pytest.raises(KiwiRegistryError, match='cannot push localhost/a:b to r/s/a:b'):
        ContainerImages().push('localhost/a:b', 'r/s/a:b')


def test_temp_dir_only_for_the_container_tools(run, mocker):
    mocker.patch.dict(os.environ, {'TMPDIR': '/elsewhere', 'KEEP': '1'})
    images = ContainerImages(temp_dir='/big')
    images.exists('a')
    images.tag('a', 'b')
    for call in run.call_args_list:
        assert call.kwargs['custom_env']['TMPDIR'] == '/big'
        assert call.kwargs['custom_env']['KEEP'] == '1'
    assert os.environ['TMPDIR'] == '/elsewhere'
