from kiwi.exceptions import KiwiError


class KiwiPluginArgumentError(KiwiError):
    """
    Raised when arguments meant for kiwi itself (the part after '--')
    are not valid for the kiwi command they are forwarded to.
    """
