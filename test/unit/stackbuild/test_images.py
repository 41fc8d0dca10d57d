import json
import os

import pytest

from kiwi_stackbuild_plugin.exceptions import KiwiContainerToolError, KiwiRegistryError
from kiwi_stackbuild_plugin.images import ContainerImages, registry_options, unmount_left
from kiwi_stackbuild_plugin.interruption import dies_with_parent
from kiwi_stackbuild_plugin.layer import LayerTar
from kiwi_stackbuild_plugin.run_journal import RunJournal


def test_registry_options():
    assert registry_options(None, None) == []
    assert registry_options('/a f.json', True) == ['--authfile=/a f.json', '--tls-verify=true']
    assert registry_options(None, False) == ['--tls-verify=false']


def test_missing_auth_file(tmp_path):
    with pytest.raises(KiwiRegistryError, match='podman login'):
        ContainerImages(str(tmp_path / 'auth.json'))


def test_exists(tool_result, command_run):
    assert ContainerImages().exists('localhost/a:b')
    command_run.assert_called_once_with(
        dies_with_parent(['podman', 'image', 'exists', 'localhost/a:b']),
        custom_env=None, raise_on_error=False
    )
    command_run.return_value = tool_result(returncode=1)
    assert not ContainerImages().exists('localhost/a:b')


def test_inspect_and_failure(tool_result, command_run):
    command_run.return_value = tool_result(output='[{"Id": "abc"}]')
    assert ContainerImages().inspect('x') == {'Id': 'abc'}
    command_run.return_value = tool_result(
        error='Error: x\nError: image not known\n', returncode=125
    )
    with pytest.raises(KiwiContainerToolError, match='^cannot inspect x: Error: image not known$'):
        ContainerImages().inspect('x')
    command_run.return_value = tool_result(returncode=125)
    with pytest.raises(KiwiContainerToolError, match=r'^cannot inspect x: \(no output\)$'):
        ContainerImages().inspect('x')


def test_stashes(tool_result, command_run):
    command_run.return_value = tool_result(output='[{"Id": "a"}]')
    assert ContainerImages().stashes() == [{'Id': 'a'}]
    command_run.assert_called_once_with(dies_with_parent([
        'podman', 'images', '--format', 'json',
        '--filter', 'label=org.opensuse.kiwi.stash.image-name'
    ]), custom_env=None, raise_on_error=False)
    command_run.return_value = tool_result(output='')
    assert ContainerImages().stashes() == []


def test_commit_first_layer(command_run, tmp_path):
    (tmp_path / 'layer.tar').write_bytes(b'tar')
    layer = LayerTar(str(tmp_path / 'layer.tar'), 'sha256:' + 'e' * 64, 3)
    work = tmp_path / 'oci'
    work.mkdir()
    image = ContainerImages().commit(
        layer, None, {'k': 'v'}, 'amd64', 'T', 'localhost/s:latest', str(work)
    )
    command_run.assert_called_once_with(dies_with_parent([
        'skopeo', 'copy', '--quiet', f'oci:{work}:stash', 'containers-storage:localhost/s:latest'
    ]), custom_env=None, raise_on_error=False)
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


def test_commit_on_a_base(tool_result, command_run, tmp_path):
    (tmp_path / 'layer.tar').write_bytes(b'tar')
    layer = LayerTar(str(tmp_path / 'layer.tar'), 'sha256:' + 'f' * 64, 3)
    base_manifest = {'layers': [{
        'mediaType': 'application/vnd.oci.image.layer.v1.tar', 'digest': 'sha256:b', 'size': 9
    }]}
    base_config = {'rootfs': {'type': 'layers', 'diff_ids': ['sha256:b']}}
    command_run.side_effect = [
        tool_result(output=json.dumps(base_manifest)), tool_result(output=json.dumps(base_config)),
        tool_result(),
    ]
    work = tmp_path / 'oci'
    work.mkdir()
    ContainerImages().commit(layer, 'base-id', {}, 'amd64', 'T', 'localhost/s:v2', str(work))
    assert [call.args[0][4:8] for call in command_run.call_args_list[:2]] == [
        ['skopeo', 'inspect', '--raw', 'containers-storage:base-id'],
        ['skopeo', 'inspect', '--config', '--raw'],
    ]
    blobs = {name: (work / 'blobs' / 'sha256' / name).read_bytes()
             for name in os.listdir(work / 'blobs' / 'sha256')}
    configs = [json.loads(data) for data in blobs.values()
               if data.startswith(b'{') and b'diff_ids' in data]
    assert configs[0]['rootfs']['diff_ids'] == ['sha256:b', layer.digest]


def test_commit_failure(tool_result, command_run, tmp_path):
    (tmp_path / 'layer.tar').write_bytes(b'tar')
    command_run.return_value = tool_result(error='FATA[0000] writing blob: no space', returncode=1)
    (tmp_path / 'oci').mkdir()
    with pytest.raises(KiwiContainerToolError, match='cannot store the stash r: .*no space'):
        ContainerImages().commit(
            LayerTar(str(tmp_path / 'layer.tar'), 'sha256:' + 'a' * 64, 3),
            None, {}, 'amd64', 'T', 'r', str(tmp_path / 'oci')
        )


@pytest.fixture
def journal(tmp_path):
    journal = RunJournal.started(str(tmp_path / 'journals'))
    yield journal
    journal.close()


def test_mounted_unmounts_on_error_and_journals(tool_result, command_run, journal):
    command_run.return_value = tool_result(output='/var/lib/containers/merged\n')
    with pytest.raises(RuntimeError):
        with ContainerImages().mounted('id', journal) as tree:
            assert tree == '/var/lib/containers/merged'
            assert journal.leftovers().mounts == ['id']
            raise RuntimeError()
    assert [call.args[0] for call in command_run.call_args_list] == [
        dies_with_parent(['podman', 'image', 'mount', 'id']),
        dies_with_parent(['podman', 'image', 'unmount', 'id'])
    ]
    assert journal.leftovers().mounts == []


def test_a_failed_mount_is_no_leftover(tool_result, command_run, journal):
    command_run.return_value = tool_result(error='Error: image not known', returncode=125)
    with pytest.raises(KiwiContainerToolError, match='cannot mount id: Error: image not known'):
        with ContainerImages().mounted('id', journal):
            pass
    assert journal.leftovers().mounts == []


def test_unmount_left_in_the_storage_of_the_run(tool_result, command_run, mocker, caplog):
    mocker.patch.dict(os.environ, {'CONTAINERS_STORAGE_CONF': '/mine.conf', 'KEEP': '1'})
    unmount_left('id', '/theirs.conf')
    unmount_left('id', '')
    first, second = command_run.call_args_list
    assert first.args[0] == dies_with_parent(['podman', 'image', 'unmount', 'id'])
    assert first.kwargs['custom_env']['CONTAINERS_STORAGE_CONF'] == '/theirs.conf'
    assert 'CONTAINERS_STORAGE_CONF' not in second.kwargs['custom_env']
    assert second.kwargs['custom_env']['KEEP'] == '1'
    command_run.return_value = tool_result(error='Error: storage locked', returncode=125)
    unmount_left('i' * 64, '')
    assert 'cannot unmount the image iiiiiiiiiiii that a run left mounted: ' \
        'Error: storage locked' in caplog.text


def test_layer_dirs(tool_result, command_run):
    command_run.return_value = tool_result(output=json.dumps([{'GraphDriver': {
        'Name': 'overlay', 'Data': {'UpperDir': '/u', 'LowerDir': '/l2:/l1'}
    }}]))
    assert ContainerImages().layer_dirs('x') == ['/l1', '/l2', '/u']
    command_run.return_value = tool_result(output=json.dumps([{'GraphDriver': {
        'Name': 'overlay', 'Data': {'UpperDir': '/u'}
    }}]))
    assert ContainerImages().layer_dirs('x') == ['/u']
    command_run.return_value = tool_result(output=json.dumps([{'GraphDriver': {'Name': 'vfs'}}]))
    assert ContainerImages().layer_dirs('x') is None


def test_tag(command_run):
    ContainerImages().tag('id', 'localhost/a:b')
    command_run.assert_called_once_with(
        dies_with_parent(['podman', 'tag', 'id', 'localhost/a:b']),
        custom_env=None, raise_on_error=False
    )


def test_pull_returns_the_id_and_fails_as_registry_error(tool_result, command_run, tmp_path):
    auth = tmp_path / 'auth.json'
    auth.write_text('{}')
    command_run.return_value = tool_result(output='Trying...\n' + 'c' * 64 + '\n')
    assert ContainerImages(str(auth), False).pull('r:5000/s/a:b') == 'c' * 64
    command_run.assert_called_once_with(dies_with_parent([
        'podman', 'pull', '--quiet', f'--authfile={auth}', '--tls-verify=false',
        'docker://r:5000/s/a:b'
    ]), custom_env=None, raise_on_error=False)
    command_run.return_value = tool_result(error='Error: connection refused', returncode=125)
    with pytest.raises(KiwiRegistryError, match='cannot pull r/a:b: Error: connection refused'):
        ContainerImages().pull('r/a:b')


def test_push(tool_result, command_run):
    ContainerImages(tls_verify=True).push('localhost/a:b', 'r/s/a:b')
    command_run.assert_called_once_with(dies_with_parent([
        'podman', 'push', '--quiet', '--tls-verify=true', 'localhost/a:b', 'docker://r/s/a:b'
    ]), custom_env=None, raise_on_error=False)
    command_run.return_value = tool_result(error='unauthorized', returncode=125)
    with pytest.raises(KiwiRegistryError, match='cannot push localhost/a:b to r/s/a:b'):
        ContainerImages().push('localhost/a:b', 'r/s/a:b')


def test_temp_dir_only_for_the_container_tools(command_run, mocker):
    mocker.patch.dict(os.environ, {'TMPDIR': '/elsewhere', 'KEEP': '1'})
    images = ContainerImages(temp_dir='/big')
    images.exists('a')
    images.tag('a', 'b')
    for call in command_run.call_args_list:
        assert call.kwargs['custom_env']['TMPDIR'] == '/big'
        assert call.kwargs['custom_env']['KEEP'] == '1'
    assert os.environ['TMPDIR'] == '/elsewhere'
