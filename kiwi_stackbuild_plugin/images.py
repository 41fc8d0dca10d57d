"""
The container storage: the only place that talks to podman and skopeo.

Every image is addressed by a fully qualified reference or by its id,
so podman's short-name resolution never picks an image for us.
"""
import json
import logging
import os
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Type

from kiwi.command import Command
from kiwi.exceptions import KiwiError

from kiwi_plugin_support.text import last_line

from kiwi_stackbuild_plugin.defaults import StackbuildDefaults
from kiwi_stackbuild_plugin.exceptions import (
    KiwiContainerToolError, KiwiRegistryError
)
from kiwi_stackbuild_plugin.interruption import dies_with_parent
from kiwi_stackbuild_plugin.layer import LayerTar
from kiwi_stackbuild_plugin import oci_image
from kiwi_stackbuild_plugin.run_journal import RunJournal

log = logging.getLogger('kiwi')

Json = Dict[str, Any]


def registry_options(auth_file: Optional[str], tls_verify: Optional[bool]) -> List[str]:
    """
    podman's options for registry access; None keeps podman's defaults
    """
    options = []
    if auth_file:
        options.append(f'--authfile={auth_file}')
    if tls_verify is not None:
        options.append(f'--tls-verify={str(tls_verify).lower()}')
    return options


# the tag of the one image in an OCI layout that write_oci_layout makes
OCI_LAYOUT_TAG = 'stash'


def write_oci_layout(work_dir: str, config: Json, manifest: Json, layers: Dict[str, str]) -> None:
    """
    An OCI layout of one image, tagged OCI_LAYOUT_TAG, for skopeo

    :param str work_dir: empty directory
    :param dict layers: digest -> the layer's tar file, hard linked in
        (the layout holds only the layers not yet in the storage)
    """
    blobs = os.path.join(work_dir, 'blobs', 'sha256')
    os.makedirs(blobs)
    documents = [oci_image.blob(config), oci_image.blob(manifest)]
    for data, digest in documents:
        with open(os.path.join(blobs, digest.split(':')[1]), 'wb') as handle:
            handle.write(data)
    for digest, path in layers.items():
        os.link(path, os.path.join(blobs, digest.split(':')[1]))
    with open(os.path.join(work_dir, 'oci-layout'), 'w') as handle:
        json.dump({'imageLayoutVersion': '1.0.0'}, handle)
    manifest_data, manifest_digest = documents[1]
    with open(os.path.join(work_dir, 'index.json'), 'w') as handle:
        json.dump({'schemaVersion': 2, 'manifests': [{
            'mediaType': oci_image.MANIFEST_TYPE, 'digest': manifest_digest,
            'size': len(manifest_data),
            'annotations': {'org.opencontainers.image.ref.name': OCI_LAYOUT_TAG},
        }]}, handle)


def unmount_left(image: str, storage_conf: str) -> None:
    """
    Unmount an image that a run left mounted, in the container storage
    of that run; an image mounted no more is no error

    :param str storage_conf: CONTAINERS_STORAGE_CONF of that run, ''
        for podman's default storage
    """
    environment = dict(os.environ)
    environment.pop('CONTAINERS_STORAGE_CONF', None)
    if storage_conf:
        environment['CONTAINERS_STORAGE_CONF'] = storage_conf
    result = Command.run(
        dies_with_parent(['podman', 'image', 'unmount', image]),
        custom_env=environment, raise_on_error=False
    )
    if result.returncode != 0:
        log.warning(
            f'cannot unmount the image {image[:12]} that a run left mounted: '
            f'{last_line(result.error)}'
        )


class ContainerImages:
    """
    The local container storage, as podman is configured to use it

    :param str auth_file: podman auth file for registries
    :param bool tls_verify: verify registry certificates; None: podman's
        default, which registries.conf may relax per registry
    :param str temp_dir: where podman and skopeo stage big files (whole
        layers); None leaves it to them (/var/tmp)
    """
    def __init__(
        self, auth_file: Optional[str] = None, tls_verify: Optional[bool] = None,
        temp_dir: Optional[str] = None
    ) -> None:
        if auth_file and not os.path.isfile(auth_file):
            raise KiwiRegistryError(
                f"registry auth file '{auth_file}' does not exist: "
                "create it with 'podman login --authfile FILE REGISTRY'"
            )
        self.registry_options = registry_options(auth_file, tls_verify)
        # only the container tools get it: in the environment of kiwi,
        # a TMPDIR of the host would break commands run in the chroot
        self.environment = dict(os.environ, TMPDIR=temp_dir) if temp_dir else None

    def _run(
        self, argv: List[str], what: str,
        error: Type[KiwiError] = KiwiContainerToolError
    ) -> str:
        result = Command.run(
            dies_with_parent(argv), custom_env=self.environment, raise_on_error=False
        )
        if result.returncode != 0:
            # podman and skopeo say what went wrong in their last line
            raise error(f'{what}: {last_line(result.error or result.output)}')
        return result.output

    def exists(self, reference: str) -> bool:
        """
        Whether the storage holds the image
        """
        return Command.run(
            dies_with_parent(['podman', 'image', 'exists', reference]),
            custom_env=self.environment, raise_on_error=False
        ).returncode == 0

    def inspect(self, reference: str) -> Json:
        """
        podman's description of an image
        """
        return json.loads(self._run(
            ['podman', 'image', 'inspect', reference], f'cannot inspect {reference}'
        ))[0]

    def stashes(self) -> List[Json]:
        """
        The images that are stashes, as 'podman images' describes them
        """
        output = self._run(
            [
                'podman', 'images', '--format', 'json',
                '--filter', f'label={StackbuildDefaults.label_name}'
            ], 'cannot list the container images'
        )
        return json.loads(output or '[]')

    def commit(
        self, layer: LayerTar, base: Optional[str], labels: Dict[str, str],
        architecture: str, created: str, reference: str, work_dir: str
    ) -> str:
        """
        Store the image base + layer under reference

        The image goes through an OCI layout that holds only the new
        layer: the lower layers are already in the storage, and skopeo
        reuses a layer it finds there instead of reading it. This
        keeps a layer's bytes exactly as tar wrote them, ACLs included,
        where committing a container would rewrite and lose them.

        :param str base: id of the lower image, None for a first layer
        :param str work_dir: empty directory for the OCI layout
        :return: the id of the new image
        """
        base_manifest = base_config = None
        if base:
            source = f'containers-storage:{base}'
            base_manifest = json.loads(self._run(
                ['skopeo', 'inspect', '--raw', source], f'cannot read {base}'
            ))
            base_config = json.loads(self._run(
                ['skopeo', 'inspect', '--config', '--raw', source], f'cannot read {base}'
            ))
        config = oci_image.stacked_config(
            base_config, layer.digest, labels, architecture, created
        )
        config_data, config_digest = oci_image.blob(config)
        manifest = oci_image.stacked_manifest(
            base_manifest, config_digest, len(config_data), layer.digest, layer.size
        )
        write_oci_layout(work_dir, config, manifest, {layer.digest: layer.path})
        self._run(
            [
                'skopeo', 'copy', '--quiet', f'oci:{work_dir}:{OCI_LAYOUT_TAG}',
                f'containers-storage:{reference}'
            ], f'cannot store the stash {reference}'
        )
        return config_digest.split(':')[1]

    def tag(self, image: str, reference: str) -> None:
        self._run(['podman', 'tag', image, reference], f'cannot tag {reference}')

    @contextmanager
    def mounted(self, image: str, journal: RunJournal) -> Iterator[str]:
        """
        The image's merged tree, read-only, for the time of the context

        The journal lists the mount from before podman makes it until
        it is undone: a later run unmounts it if this one is killed.

        :param str image: image id
        """
        journal.note('mount', image)
        try:
            mount = self._run(
                ['podman', 'image', 'mount', image], f'cannot mount {image}'
            ).strip()
        except KiwiContainerToolError:
            # podman made no mount
            journal.note('unmount', image)
            raise
        try:
            yield mount
        finally:
            self._run(['podman', 'image', 'unmount', image], f'cannot unmount {image}')
            journal.note('unmount', image)

    def layer_dirs(self, image: str) -> Optional[List[str]]:
        """
        The overlay layer directories of an image, lowest first

        :return: the directories, None if the storage driver is not
            overlay and keeps no per-layer trees
        """
        driver = self.inspect(image).get('GraphDriver') or {}
        if driver.get('Name') != 'overlay':
            return None
        data = driver.get('Data') or {}
        lowers = [path for path in (data.get('LowerDir') or '').split(':') if path]
        return list(reversed([data['UpperDir']] + lowers))

    def pull(self, remote: str) -> str:
        """
        Pull an image and return its id

        The id, not a name, is what the caller uses afterwards: a name
        could resolve to a stale image of the same short name.

        :param str remote: fully qualified reference in a registry
        """
        log.info(f'Pulling {remote}')
        output = self._run(
            ['podman', 'pull', '--quiet'] + self.registry_options + [f'docker://{remote}'],
            f'cannot pull {remote}', KiwiRegistryError
        )
        return output.strip().splitlines()[-1]

    def push(self, reference: str, remote: str) -> None:
        """
        Push a local image to a registry

        :param str remote: fully qualified reference in a registry
        """
        log.info(f'Pushing {reference} to {remote}')
        self._run(
            ['podman', 'push', '--quiet'] + self.registry_options
            + [reference, f'docker://{remote}'],
            f'cannot push {reference} to {remote}', KiwiRegistryError
        )
