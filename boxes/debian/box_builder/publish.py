"""
Putting a built box in place: the output is a link to a directory per
recipe hash, switched in one rename, one build at a time, and checked
against its checksums; what killed builds left beside it is removed.
"""
import fcntl
import glob
import os
import shutil
from contextlib import contextmanager
from typing import Iterator

from box_builder.errors import BoxBuildError
from box_builder.files import file_sha256, read_file
from box_builder.mounts import remove_tree
from box_builder.recipe import Recipe

# the file of a box directory that names the recipe hash it was built from
HASH_STAMP = 'recipe.hash'


def read_recipe_hash(output: str) -> str:
    """
    :return: the recipe hash of the box in the output
    """
    return read_file(os.path.join(output, HASH_STAMP)).decode().strip()


def verify_box(output: str, recipe: Recipe, recipe_hash: str) -> bool:
    """
    Whether the output holds a complete box of this recipe hash whose
    files match their checksums
    """
    try:
        if read_recipe_hash(output) != recipe_hash:
            return False
        for name in recipe.published:
            expected = read_file(os.path.join(output, name + '.sha256')).decode().split()[0]
            if file_sha256(os.path.join(output, name)) != expected:
                return False
        return all(
            os.path.isfile(os.path.join(output, name)) for name in recipe.unpublished
        )
    except (OSError, IndexError):
        return False


def remove_leftovers(output: str) -> None:
    """
    Remove what killed builds left beside the output: work trees and
    box directories that the output link does not point to
    """
    parent = os.path.dirname(output)
    current = os.path.realpath(output) if os.path.islink(output) else ''
    name = os.path.basename(output)
    for path in glob.glob(os.path.join(parent, f'.{name}.work-*')) + glob.glob(
        os.path.join(parent, f'{name}.*')
    ):
        if os.path.islink(path):
            os.unlink(path)
        # <output>.debs is the package cache, kept for rebuilds
        elif os.path.isdir(path) and path != current and not path.endswith('.debs'):
            remove_tree(path)


@contextmanager
def build_lock(output: str) -> Iterator[None]:
    """
    One build per output at a time; a second waits for the first and
    then finds the box up to date
    """
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(f'{output}.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def publish(work_output: str, output: str) -> None:
    """
    Switch the output link to the new box in one rename, then remove
    the box it pointed to before

    :raises BoxBuildError: if the output is something else than a link
        made by this builder
    """
    previous = os.path.realpath(output) if os.path.islink(output) else ''
    if os.path.exists(output) and not os.path.islink(output):
        raise BoxBuildError(
            f'{output} exists and is not a box made by build-box: '
            f'move it away or pass another --output'
        )
    link = f'{output}.link-{os.getpid()}'
    os.symlink(os.path.basename(work_output), link)
    os.replace(link, output)
    if previous and previous != os.path.realpath(work_output):
        shutil.rmtree(previous, ignore_errors=True)
