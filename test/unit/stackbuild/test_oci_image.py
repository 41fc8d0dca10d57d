import hashlib
import json

from kiwi_stackbuild_plugin import oci_image


def test_blob_is_canonical_json_with_its_digest():
    data, digest = oci_image.blob({'b': 1, 'a': [2]})
    assert json.loads(data) == {'a': [2], 'b': 1}
    assert data == b'{"a": [2], "b": 1}'
    assert digest == 'sha256:' + hashlib.sha256(data).hexdigest()


def test_oci_layer_type():
    assert oci_image.oci_layer_type(
        'application/vnd.docker.image.rootfs.diff.tar.gzip'
    ) == 'application/vnd.oci.image.layer.v1.tar+gzip'
    assert oci_image.oci_layer_type(
        'application/vnd.docker.image.rootfs.diff.tar'
    ) == oci_image.LAYER_TYPE
    assert oci_image.oci_layer_type(oci_image.LAYER_TYPE + '+zstd') == \
        oci_image.LAYER_TYPE + '+zstd'


def test_first_layer_config():
    config = oci_image.stacked_config(None, 'sha256:1', {'k': 'v'}, 'arm64', 'T')
    assert config == {
        'created': 'T', 'architecture': 'arm64', 'os': 'linux',
        'config': {'Labels': {'k': 'v'}},
        'rootfs': {'type': 'layers', 'diff_ids': ['sha256:1']},
        'history': [{'created': 'T', 'created_by': 'kiwi-ng system stash'}],
    }


def test_config_on_a_base_keeps_it_and_adds_one_layer():
    base = {
        'created': 'old', 'architecture': 'amd64', 'os': 'linux',
        'config': {'Env': ['A=1'], 'Labels': {'keep': '1', 'k': 'old'}},
        'rootfs': {'type': 'layers', 'diff_ids': ['sha256:1']},
        'history': [{'created': 'old'}],
    }
    config = oci_image.stacked_config(base, 'sha256:2', {'k': 'new'}, 'amd64', 'T')
    assert config['config'] == {'Env': ['A=1'], 'Labels': {'keep': '1', 'k': 'new'}}
    assert config['rootfs']['diff_ids'] == ['sha256:1', 'sha256:2']
    assert config['history'][0] == {'created': 'old'}
    assert config['created'] == 'T'
    # the base is not changed
    assert base['rootfs']['diff_ids'] == ['sha256:1']
    assert base['config']['Labels']['k'] == 'old'


def test_config_of_a_base_without_labels_or_history():
    config = oci_image.stacked_config(
        {'config': {'Labels': None}, 'rootfs': {'type': 'layers', 'diff_ids': None}},
        'sha256:2', {'k': 'v'}, 'amd64', 'T'
    )
    assert config['config']['Labels'] == {'k': 'v'}
    assert config['rootfs']['diff_ids'] == ['sha256:2']
    assert len(config['history']) == 1


def test_manifest_appends_the_layer_to_the_base_layers():
    base = {'layers': [{
        'mediaType': 'application/vnd.docker.image.rootfs.diff.tar.gzip',
        'digest': 'sha256:gz', 'size': 7, 'annotations': {'x': 'y'},
    }]}
    manifest = oci_image.stacked_manifest(base, 'sha256:c', 3, 'sha256:l', 9)
    assert manifest == {
        'schemaVersion': 2,
        'mediaType': oci_image.MANIFEST_TYPE,
        'config': {'mediaType': oci_image.CONFIG_TYPE, 'digest': 'sha256:c', 'size': 3},
        'layers': [
            {'mediaType': oci_image.LAYER_TYPE + '+gzip', 'digest': 'sha256:gz', 'size': 7},
            {'mediaType': oci_image.LAYER_TYPE, 'digest': 'sha256:l', 'size': 9},
        ],
    }
    assert oci_image.stacked_manifest(None, 'sha256:c', 3, 'sha256:l', 9)['layers'] == [
        {'mediaType': oci_image.LAYER_TYPE, 'digest': 'sha256:l', 'size': 9}
    ]
