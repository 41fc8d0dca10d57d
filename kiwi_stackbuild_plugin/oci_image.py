"""
Pure composition of OCI image manifests and configs.

A stash is an image whose lower layers already live in the container
storage; a new stash adds one layer on top. These functions describe
the resulting image; images.py hands the description to skopeo.
"""
import copy
import hashlib
import json
from typing import Any, Dict, Optional, Tuple

from kiwi_stackbuild_plugin.defaults import StackbuildDefaults

MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json'
CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json'
LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar'

# what the Docker v2 schema 2 names mean in OCI terms; images pulled
# from a registry may carry those
_DOCKER_LAYER_TYPES = {
    'application/vnd.docker.image.rootfs.diff.tar': LAYER_TYPE,
    'application/vnd.docker.image.rootfs.diff.tar.gzip': LAYER_TYPE + '+gzip',
    'application/vnd.docker.image.rootfs.diff.tar.zstd': LAYER_TYPE + '+zstd',
}

Json = Dict[str, Any]


def oci_layer_type(media_type: str) -> str:
    """
    The OCI media type of a layer descriptor's media type
    """
    return _DOCKER_LAYER_TYPES.get(media_type, media_type)


def blob(document: Json) -> Tuple[bytes, str]:
    """
    A JSON document as blob bytes and its 'sha256:...' digest
    """
    data = json.dumps(document, sort_keys=True).encode()
    return data, 'sha256:' + hashlib.sha256(data).hexdigest()


def stacked_config(
    base: Optional[Json], diff_id: str, labels: Dict[str, str],
    architecture: str, created: str
) -> Json:
    """
    The config of an image that is base plus one layer

    :param dict base: config of the lower image, None for a first layer
    :param str diff_id: 'sha256:...' of the uncompressed new layer
    :param dict labels: labels to set (others of base are kept)
    :param str architecture: OCI platform architecture, e.g. 'amd64'
    :param str created: RFC 3339 time
    """
    config = copy.deepcopy(base) if base else {}
    config['created'] = created
    config['architecture'] = architecture
    config['os'] = 'linux'
    runtime = config.setdefault('config', {})
    runtime['Labels'] = {**(runtime.get('Labels') or {}), **labels}
    rootfs = config.setdefault('rootfs', {'type': 'layers', 'diff_ids': []})
    rootfs['diff_ids'] = list(rootfs.get('diff_ids') or []) + [diff_id]
    config['history'] = list(config.get('history') or []) + [
        {'created': created, 'created_by': StackbuildDefaults.history_created_by}
    ]
    return config


def stacked_manifest(
    base: Optional[Json], config_digest: str, config_size: int,
    layer_digest: str, layer_size: int
) -> Json:
    """
    The OCI manifest of base's layers plus one uncompressed layer

    :param dict base: manifest of the lower image, None for a first layer
    """
    layers = [
        {
            'mediaType': oci_layer_type(layer['mediaType']),
            'digest': layer['digest'],
            'size': layer['size'],
        } for layer in (base or {}).get('layers', [])
    ]
    layers.append({'mediaType': LAYER_TYPE, 'digest': layer_digest, 'size': layer_size})
    return {
        'schemaVersion': 2,
        'mediaType': MANIFEST_TYPE,
        'config': {'mediaType': CONFIG_TYPE, 'digest': config_digest, 'size': config_size},
        'layers': layers,
    }
