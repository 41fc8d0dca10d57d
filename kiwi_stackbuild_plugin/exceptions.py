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
