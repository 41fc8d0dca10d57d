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


class KiwiBoxRequestError(KiwiError):
    """
    Raised when boxbuild options, the description or the target
    directory do not allow a build to start.
    """


class KiwiBoxProtocolError(KiwiError):
    """
    Raised when a job cannot be carried to the box on the kernel
    command line (a quote, white space inside an argument, too long).
    """


class KiwiBoxShareError(KiwiError):
    """
    Raised when a share helper (virtiofsd, the run's sshd) does not
    start or does not become ready.
    """


class KiwiBoxNetworkError(KiwiError):
    """
    Raised when KIWI_BOXED_NETWORK names no box network, or the box
    network's helpers (pasta, passt) do not start.
    """


class KiwiBoxRunError(KiwiError):
    """
    Raised when qemu cannot be started or the box never starts its job.
    """


class KiwiBoxBuildFailedError(KiwiError):
    """
    Raised when the build in the box failed: result.code missing or
    not 0, or qemu ended with an error.
    """


class KiwiBoxCacheError(KiwiError):
    """
    Raised when the box cache directory cannot be created, written or
    locked, or when a cached box cannot be prepared for a build.
    """


class KiwiBoxDownloadError(KiwiError):
    """
    Raised when a box file cannot be fetched: server unreachable, HTTP
    error, an HTML page instead of the file, or retries exhausted.
    """


class KiwiBoxChecksumError(KiwiError):
    """
    Raised when a fetched box file does not match its published sha256,
    or when a published .sha256 file holds no sha256 digest.
    """


class KiwiBoxDiskFullError(KiwiError):
    """
    Raised when the cache file system has no room for a box file.
    """


class KiwiBoxKernelError(KiwiError):
    """
    Raised when a box's kernel tarball lacks the kernel or initrd the
    box needs, or holds more than one of them.
    """


class KiwiBoxContainerError(KiwiError):
    """
    Raised when a build cannot run in a box container: a foreign
    arch, a --shared-path that hides a box directory, or podman
    failing to create or start the container.
    """


class KiwiBoxContainerImageError(KiwiError):
    """
    Raised when the box has no container image, or its image is
    neither in podman's storage nor pullable.
    """


class KiwiBoxContainerRootError(KiwiError):
    """
    Raised when container mode is asked for by a user who is not root
    and cannot run podman through sudo.
    """


class KiwiBoxTargetDirError(KiwiError):
    """
    Raised when a file that boxbuild keeps in the target dir is a link
    or a special file (a build can plant them), or cannot be read or
    replaced.
    """


class KiwiBoxRedirectError(KiwiBoxDownloadError):
    """
    Raised when a download server redirects where a box file may not
    come from: https to plain http, a checksum file to another host,
    no http(s) URL, or too many redirects.
    """


class KiwiBoxInsecureSourceError(KiwiBoxDownloadError):
    """
    Raised when a box source is plain http and its catalog entry does
    not allow that with 'allow_http: true'.
    """


class KiwiBoxTimeoutError(KiwiError):
    """
    Raised when a build runs longer than --box-timeout allows: the box
    is stopped.
    """


class KiwiBoxStagingError(KiwiError):
    """
    Raised when the results of a box container cannot be moved from its
    staging dir into the target dir, or the staging dir cannot be
    removed.
    """


class KiwiBoxPackageCacheError(KiwiError):
    """
    Raised when the package cache directory of a box cannot be made or
    written.
    """
