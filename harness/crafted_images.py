"""
Crafted images as a hostile registry would serve them: layers written
entry by entry (links out of the root, link chains, odd whiteouts) and
labels of any value, stored as stashes in the container storage of
the environment (the suites' private one) with skopeo.
"""
import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
from typing import Dict, Optional, Sequence, Tuple

from kiwi_stackbuild_plugin import oci_image
from kiwi_stackbuild_plugin.defaults import StackbuildDefaults
from kiwi_stackbuild_plugin.images import OCI_LAYOUT_TAG, write_oci_layout

# one layer entry: its header and, for a file, its content
Entry = Tuple[tarfile.TarInfo, bytes]


def directory(name: str, mode: int = 0o755) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, b''


def regular_file(name: str, text: str = '') -> Entry:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.size = len(text.encode())
    return info, text.encode()


def symlink(name: str, target: str) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, b''


def whiteout(name: str) -> Entry:
    """
    The OCI whiteout of name, e.g. 'etc/motd' -> 'etc/.wh.motd'
    """
    parent, _, base = name.rpartition('/')
    return regular_file(f'{parent}/.wh.{base}' if parent else f'.wh.{base}')


def stash_labels(name: str, **labels: str) -> Dict[str, str]:
    """
    The label that marks an image as a stash, and more: the keyword
    root_mode stands for the label ...root-mode, and so on
    """
    return {StackbuildDefaults.label_name: name, **{
        StackbuildDefaults.label_prefix + key.replace('_', '-'): value
        for key, value in labels.items()
    }}


def write_layer(path: str, entries: Sequence[Entry]) -> Tuple[str, int]:
    """
    A layer tar of the entries, in their order

    :return: its 'sha256:...' digest and size
    """
    with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as layer:
        for info, content in entries:
            layer.addfile(info, io.BytesIO(content) if content else None)
    with open(path, 'rb') as layer_file:
        data = layer_file.read()
    return 'sha256:' + hashlib.sha256(data).hexdigest(), len(data)


def store_image(
    reference: str, layers: Sequence[Sequence[Entry]], labels: Dict[str, str]
) -> str:
    """
    Store an image of the layers, lowest first, under reference, e.g.
    'localhost/hostile:latest'

    :return: the image id
    """
    config: Optional[dict] = None
    manifest: Optional[dict] = None
    with tempfile.TemporaryDirectory() as work:
        files: Dict[str, str] = {}
        for index, entries in enumerate(layers):
            path = os.path.join(work, f'layer{index}.tar')
            digest, size = write_layer(path, entries)
            files[digest] = path
            config = oci_image.stacked_config(
                config, digest, labels, 'amd64', '2024-01-01T00:00:00Z'
            )
            config_data, config_digest = oci_image.blob(config)
            manifest = oci_image.stacked_manifest(
                manifest, config_digest, len(config_data), digest, size
            )
        assert config is not None and manifest is not None
        layout = os.path.join(work, 'layout')
        write_oci_layout(layout, config, manifest, files)
        subprocess.run(
            ['skopeo', 'copy', '--quiet', f'oci:{layout}:{OCI_LAYOUT_TAG}',
             f'containers-storage:{reference}'],
            check=True, capture_output=True
        )
    return oci_image.blob(config)[1].split(':')[1]
