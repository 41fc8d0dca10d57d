"""Every failure of the stackbuild plugin, one class each."""
from kiwi.exceptions import KiwiError


class KiwiStashError(KiwiError):
    """
    Raised when a root tree cannot be stored as a stash.
    """


class KiwiStackbuildError(KiwiError):
    """
    Raised when stashes cannot be stacked or the stacked root not built.
    """


class KiwiStashRootError(KiwiStashError):
    """
    Raised when --root is missing or is not a kiwi root tree with
    image/config.xml.
    """


class KiwiStashNameError(KiwiStashError):
    """
    Raised when a stash name or tag is not a valid container image
    reference.
    """


class KiwiStashNotFoundError(KiwiStackbuildError):
    """
    Raised when a stash asked for does not exist in the container
    storage.
    """


class KiwiContainerToolError(KiwiError):
    """
    Raised when podman or skopeo fail on the container storage.
    """


class KiwiRegistryError(KiwiError):
    """
    Raised when a stash cannot be pushed to or pulled from a registry.
    """


class KiwiStackTargetExistsError(KiwiStackbuildError):
    """
    Raised when the target directory already holds a build root.
    """


class KiwiStackDescriptionError(KiwiStackbuildError):
    """
    Raised when --description is not a kiwi description this user can read.
    """


class KiwiStackConflictError(KiwiStackbuildError):
    """
    Raised when a stash puts a file where a lower stash has a
    directory, or the reverse.
    """


class KiwiStackPrivilegesError(KiwiError):
    """
    Raised when stash or stackbuild run without root permissions.
    """


class KiwiStackKiwiError(KiwiStackbuildError):
    """
    Raised when the kiwi build on the stacked root fails.
    """


class KiwiStackPathError(KiwiStackbuildError):
    """
    Raised when a path handed to kiwi holds characters that kiwi would
    pass on to a shell.
    """


class KiwiStashMountError(KiwiStashRootError):
    """
    Raised when file systems are mounted below the root tree to stash.
    """


class KiwiStackLabelError(KiwiStackbuildError):
    """
    Raised when a stash's labels ask for a mode or an owner of the root
    directory that is malformed or unsafe.
    """


class KiwiStackWhiteoutError(KiwiStackbuildError):
    """
    Raised when a layer of a stash holds a whiteout that names no file.
    """


class KiwiStackJournalError(KiwiError):
    """
    Raised when the directory of the run journals is not private to root.
    """
