"""A root tree into the container storage: first layer or changes only."""
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import List, Optional

from kiwi_stackbuild_plugin.defaults import StackbuildDefaults
from kiwi_stackbuild_plugin.images import ContainerImages
from kiwi_stackbuild_plugin.layer import LayerTar
from kiwi_stackbuild_plugin.leftovers import journaled
from kiwi_stackbuild_plugin.reference import (
    StashReference, is_valid_name, validate_name, validate_tag
)
from kiwi_stackbuild_plugin.root_info import RootInfo, oci_arch
from kiwi_stackbuild_plugin.treediff import TreeDiff, scan_tree

log = logging.getLogger('kiwi')


def newest_of_repository(stashes: List[dict], repository: str) -> Optional[str]:
    """
    The id of the newest stash stored under any tag of repository

    :param list stashes: 'podman images --format json' entries
    :param str repository: e.g. 'localhost/leap-base'
    """
    candidates = [
        image for image in stashes
        if any(name.rpartition(':')[0] == repository for name in image.get('Names') or [])
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda image: image.get('Created') or 0)['Id']


def rfc3339_now() -> str:
    return datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


@dataclass(frozen=True)
class StashResult:
    """
    What a stash stored

    :param StashReference reference: the stash name and tag
    :param str image: image id, '' if nothing new was stored
    :param int changed: paths stored in the new layer
    :param int deleted: whiteouts in the new layer
    :param bool first: whether the layer is the first of the stash
    """
    reference: StashReference
    image: str
    changed: int
    deleted: int
    first: bool


class Stash:
    """
    Stores root trees as stashes

    :param ContainerImages images: the container storage
    :param str temp_dir: parent of the work directory, which takes a
        whole layer; None: the system's temporary directory
    """
    def __init__(self, images: ContainerImages, temp_dir: Optional[str] = None) -> None:
        self.images = images
        self.temp_dir = temp_dir

    @staticmethod
    def reference_for(
        info: RootInfo, container_name: Optional[str], tag: Optional[str]
    ) -> StashReference:
        """
        The stash name and tag, validated

        :raises KiwiStashNameError: with a hint at --container-name if
            the description's image name cannot be an image name
        """
        if container_name:
            name = validate_name(container_name)
        else:
            name = validate_name(
                info.image_name,
                hint=f" (the image name in {info.root}/image/config.xml): "
                "choose a valid one with --container-name, e.g. "
                f"--container-name {_suggest(info.image_name)}"
            )
        return StashReference(name, validate_tag(tag or StackbuildDefaults.default_tag))

    def store(
        self, root: str, container_name: Optional[str] = None, tag: Optional[str] = None
    ) -> StashResult:
        """
        Store root as a stash; on top of the stash of the same name if
        there is one, as a layer holding only the changes

        Nothing is stored until the final copy into the storage, so a
        failure leaves no partial image behind; the journal lets a later
        run remove the work directory and unmount the base stash if
        this one is killed.
        """
        info = RootInfo.read(root)
        reference = self.reference_for(info, container_name, tag)
        local = reference.local()
        base = None
        if self.images.exists(local):
            base = self.images.inspect(local)['Id']
        else:
            base = newest_of_repository(
                self.images.stashes(), reference.local_repository()
            )
        with journaled() as journal, \
                journal.directory(StackbuildDefaults.stash_work_prefix, self.temp_dir) as work:
            layer_path = os.path.join(work, 'layer.tar')
            if base:
                log.info(f'Comparing {info.root} with the stash {base[:12]}')
                with self.images.mounted(base, journal) as old:
                    diff = TreeDiff.compare(scan_tree(old), scan_tree(info.root))
                if diff.empty:
                    log.info(f'{info.root} has not changed since the stash {base[:12]}')
                    self.images.tag(base, local)
                    return StashResult(reference, '', 0, 0, False)
                layer = LayerTar.changes(info.root, diff.changed, diff.deleted, layer_path)
                changed, deleted = len(diff.changed), len(diff.deleted)
            else:
                layer = LayerTar.whole_tree(info.root, layer_path)
                changed, deleted = 0, 0
            created = rfc3339_now()
            log.info(f'Storing {local}')
            image = self.images.commit(
                layer, base, info.labels(created), oci_arch(info.arch), created,
                local, os.path.join(work, 'oci')
            )
        return StashResult(reference, image, changed, deleted, base is None)


def _suggest(name: str) -> str:
    """
    A valid image name close to an invalid one, for the error message
    """
    suggestion = re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')
    return suggestion if is_valid_name(suggestion) else 'my-stash'
