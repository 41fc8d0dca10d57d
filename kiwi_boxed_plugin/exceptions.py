"""Every failure of the boxed plugin, one class each."""
from kiwi.exceptions import KiwiError


class KiwiBoxCatalogError(KiwiError):
    """
    Raised when a box catalog file cannot be read or does not follow
    the schema of kiwi_boxed_plugin.yml.
    """


class KiwiBoxNotFoundError(KiwiError):
    """
    Raised when the requested box name is not in the catalog.
    """


class KiwiBoxArchNotFoundError(KiwiError):
    """
    Raised when the requested box does not offer the wanted architecture.
    """


class KiwiBoxbuildError(KiwiError):
    """
    Raised when a build in a box cannot be run or did not succeed.
    """
