from kiwi.exceptions import KiwiError


class KiwiPluginArgumentError(KiwiError):
    """
    Raised when arguments meant for kiwi itself (the part after '--')
    are not valid for the kiwi command they are forwarded to.
    """


class KiwiPluginToolMissingError(KiwiError):
    """
    Raised when a program a plugin needs (qemu, podman, virtiofsd, sshd,
    kiwi-ng, ...) is not installed.
    """
