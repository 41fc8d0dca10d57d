"""
The local box cache: every box in it is complete and verified, or absent.

Layout (upstream's, so an existing upstream cache is reused)::

    <root>/<box>/<Name>.<arch>-System.qcow2     the system disk
    <root>/<box>/<Name>.<arch>-Kernel.tar.xz    the kernel tarball
    <root>/<box>/kernel.<arch>, initrd.<arch>   extracted from the tarball
    <root>/<box>/<packages file>                what the box contains

File names carry the arch, so one folder per box keeps its arches apart.
Beside them, hidden, live what this cache adds:

    <root>/<box>/.<arch>.verified.json   digest and stat signature of each
                                         file as verified, and of the
                                         extracted kernel/initrd
    <root>/<box>/.<arch>.lock            flock: one process prepares a box
    <root>/<box>/.<file>.<digest>.part   a download in progress (resumed)
    <root>/.tmp/<box>.<arch>.<random>/   one per running build

A running build gets hard links to the verified files in its own temp
directory: an update that lands meanwhile renames new files into the box
folder, and the running build keeps the old inodes until its temp
directory is removed. No lock is held while a build runs, so an update
never waits for a long build.
"""
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

from kiwi_boxed_plugin.catalog import Box, BoxArch
from kiwi_boxed_plugin.defaults import Defaults
from kiwi_boxed_plugin.exceptions import (
    KiwiBoxCacheError,
    KiwiBoxChecksumError,
    KiwiBoxDiskFullError,
    KiwiBoxDownloadError,
    KiwiBoxInsecureSourceError,
    KiwiBoxKernelError,
)
from kiwi_boxed_plugin.fetch import Fetcher, parse_sha256_file
from kiwi_plugin_support.locks import lock_if_free

log = logging.getLogger('kiwi')

# a stat signature: a file whose inode, size and mtime are those recorded
# at verification is the verified file without reading it again
Signature = Dict[str, int]

TEMP_AREA = '.tmp'


@dataclass(frozen=True)
class BoxFiles:
    """
    The files of a verified box for one build

    :param str kernel: the extracted kernel
    :param str initrd: the extracted initrd, '' if the box has none
    :param str system_disk: the verified qcow2
    :param str temp_dir: private directory in the cache, removed after
        the build; the build's overlay and other temporary files go there
    """
    kernel: str
    initrd: str
    system_disk: str
    temp_dir: str


def signature(path: str) -> Optional[Signature]:
    """
    Inode, size and mtime of a file, None if there is no such file
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return {'ino': info.st_ino, 'size': info.st_size, 'mtime_ns': info.st_mtime_ns}


def file_state(recorded: Optional[Signature], current: Optional[Signature]) -> str:
    """
    What a box file is compared with its verification record

    A file written in place keeps its inode; a file replaced by a rename
    gets another one. A file deleted and written anew may get its old
    inode back from the file system and then counts as modified too.

    :return: 'absent', 'verified', 'modified' (written in place since, as a
        --no-snapshot build does with the system disk) or 'unverified'
    """
    if current is None:
        return 'absent'
    if recorded is None:
        return 'unverified'
    if all(recorded.get(key) == value for key, value in current.items()):
        return 'verified'
    if recorded.get('ino') == current['ino']:
        return 'modified'
    return 'unverified'


def box_state(states: Dict[str, str], system_disk: str) -> str:
    """
    The state of a box from the states of its files

    Only the system disk may be 'modified' (by a --no-snapshot build) and
    still be used; any other difference makes the box unverified.
    """
    values = set(states.values())
    if values == {'absent'}:
        return 'absent'
    if values == {'verified'}:
        return 'verified'
    if states[system_disk] == 'modified' and \
            set(state for name, state in states.items() if name != system_disk) <= {'verified'}:
        return 'modified'
    return 'unverified'


def needs_download(
    state: str, recorded_digest: str, published_digest: str, is_system_disk: bool
) -> bool:
    """
    Whether a cached file must be fetched again to match the published one

    An unverified file is hashed instead (see BoxCache) before this is
    asked; a system disk modified by a --no-snapshot build is kept until
    the published box changes.
    """
    if state == 'verified':
        return recorded_digest != published_digest
    if state == 'modified' and is_system_disk:
        return recorded_digest != published_digest
    return True


def pick_boot_members(names: List[str], use_initrd: bool) -> Tuple[str, str]:
    """
    The kernel and initrd members of a kernel tarball

    :return: kernel member, initrd member ('' when the box boots without)
    :raises KiwiBoxKernelError: if either is missing or ambiguous
    """
    picked = []
    for suffix in ('.kernel', '.initrd'):
        found = [name for name in names if os.path.basename(name).endswith(suffix)]
        if suffix == '.initrd' and not use_initrd:
            picked.append('')
            continue
        if len(found) != 1:
            raise KiwiBoxKernelError(
                f'the kernel tarball holds {len(found)} *{suffix} files '
                f'({", ".join(found) or "none"}), expected exactly one'
            )
        picked.append(found[0])
    return picked[0], picked[1]


def check_plain_http(box: Box, arch: BoxArch, base_url: str) -> None:
    """
    Refuse a plain http source unless the box's catalog entry allows it,
    and warn when it does: over http anyone on the way can swap the box
    and the checksums it is verified against alike

    :param str base_url: where the box files come from, as resolved
    :raises KiwiBoxInsecureSourceError: if it is http and not allowed
    """
    if urlsplit(base_url).scheme != 'http':
        return
    if arch.allow_http:
        log.warning(
            f"box '{box.name}' ({arch.name}): fetching over plain http from {base_url}, "
            f'as {box.origin} allows'
        )
        return
    # an obs:// source is http only through kiwi's config, which names the server
    remedy = "an https 'obs: download_url' in kiwi's config" \
        if arch.source.startswith('obs:') else 'an https source'
    # the packaged catalog is not the user's to edit: a user catalog
    # entry of the same name replaces the box
    catalog = 'a user catalog' if box.origin == Defaults.get_packaged_catalog() \
        else box.origin
    raise KiwiBoxInsecureSourceError(
        f"box '{box.name}' ({arch.name}): {base_url} is plain http, where anyone on the "
        f"way could swap the box and its checksums: use {remedy}, or allow it with "
        f"'allow_http: true' in the box's entry of {catalog}"
    )


class BoxCache:
    """
    The local cache of verified boxes

    :param str root: cache directory, default Defaults.get_cache_root()
    :param Fetcher fetcher: how files are fetched
    :param str obs_download_url: server of obs:// sources, default
        from kiwi's runtime config
    :raises KiwiBoxCacheError: if the root cannot be created or written
    """
    def __init__(
        self, root: Optional[str] = None, fetcher: Optional[Fetcher] = None,
        obs_download_url: Optional[str] = None
    ) -> None:
        self.root = os.path.abspath(root or Defaults.get_cache_root())
        self.fetcher = fetcher or Fetcher()
        self.obs_download_url = obs_download_url
        _make_dir(self.root)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise KiwiBoxCacheError(
                f'box cache {self.root} is not writable: fix its permissions '
                'or set KIWI_BOXED_CACHE_DIR to a writable directory'
            )

    def state(self, box: Box, arch: BoxArch) -> str:
        """
        'absent', 'verified', 'modified' (system disk changed by a
        --no-snapshot build), 'unverified' (e.g. an upstream cache or an
        interrupted update) or 'container-only'; reads no box file
        """
        if not arch.boxfiles:
            return 'container-only'
        record = self._read_record(box, arch)
        return box_state(self._file_states(box, arch, record), arch.system_disk)

    @contextmanager
    def use(
        self, box: Box, arch: BoxArch, update_check: bool = True
    ) -> Iterator[BoxFiles]:
        """
        Make the box verified and current, and lend its files to a build

        Preparation runs under the box's lock: concurrent callers wait and
        then use what the first one fetched. The files yielded are hard
        links in a private temp dir, so an update by another process does
        not touch them; the temp dir is removed when the block ends.

        :param bool update_check: compare the published .sha256 files with
            the verified ones and fetch what changed; without it a cached
            verified box is used as it is
        :raises KiwiBoxCacheError: if the box has no box files or the cache
            cannot be used
        """
        if not arch.boxfiles:
            raise KiwiBoxCacheError(
                f"box '{box.name}' has no VM files for {arch.name}: use --container"
            )
        box_dir = os.path.join(self.root, box.name)
        temp_area = os.path.join(self.root, TEMP_AREA)
        _make_dir(box_dir)
        _make_dir(temp_area)
        with _locked(os.path.join(box_dir, f'.{arch.name}.lock'), box, arch):
            self._remove_stale_temp_dirs(temp_area, f'{box.name}.{arch.name}.')
            boot = self._prepare(box, arch, update_check)
            temp_dir = tempfile.mkdtemp(prefix=f'{box.name}.{arch.name}.', dir=temp_area)
            # held until the block ends: tells the stale temp dir sweep
            # that this build is alive
            holder = os.open(temp_dir, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(holder, fcntl.LOCK_SH)
            try:
                files = BoxFiles(
                    kernel=_link(boot[0], temp_dir),
                    initrd=_link(boot[1], temp_dir) if boot[1] else '',
                    system_disk=_link(os.path.join(box_dir, arch.system_disk), temp_dir),
                    temp_dir=temp_dir
                )
            except BaseException:
                _remove_temp_dir(temp_dir, holder)
                raise
        try:
            yield files
        finally:
            _remove_temp_dir(temp_dir, holder)

    def _prepare(self, box: Box, arch: BoxArch, update_check: bool) -> Tuple[str, str]:
        record = self._read_record(box, arch)
        states = self._file_states(box, arch, record)
        usable = box_state(states, arch.system_disk) in ('verified', 'modified')
        if usable and not update_check:
            log.info(f'box {box.name} ({arch.name}): using the cache without update check')
        else:
            try:
                record = self._update(box, arch, record, states)
            except (KiwiBoxDownloadError, KiwiBoxChecksumError, KiwiBoxDiskFullError) as issue:
                if not usable:
                    raise
                # same class, so callers still see what failed; the hint
                # is what the user can do about it right now
                raise type(issue)(
                    f'{issue}; the cached box is intact: --no-update-check builds with it'
                )
        if box_state(self._file_states(box, arch, record), arch.system_disk) == 'modified':
            log.warning(
                f'box {box.name} ({arch.name}): the system disk was changed by a '
                '--no-snapshot build since it was verified; using it as it is'
            )
        return self._boot_files(box, arch, record)

    def _update(
        self, box: Box, arch: BoxArch, record: dict, states: Dict[str, str]
    ) -> dict:
        """
        Fetch the published .sha256 files, fetch and verify what differs
        from them, then swap

        Every changed file is downloaded and verified into its partial file
        before any of them replaces a cached file, so a failure leaves the
        previous box whole. The record naming the new files is written
        before the renames: after a crash between them, a file that was not
        renamed yet has another inode than recorded and counts as
        unverified.
        """
        box_dir = os.path.join(self.root, box.name)
        base_url = arch.url(self._obs_url())
        check_plain_http(box, arch, base_url)
        published = {
            name: parse_sha256_file(
                self.fetcher.read_small(f'{base_url}{name}.sha256'), f'{base_url}{name}.sha256'
            ) for name in arch.boxfiles
        }
        files = dict(record['files'])
        fetched: Dict[str, str] = {}
        for name in arch.boxfiles:
            path = os.path.join(box_dir, name)
            recorded = files.get(name, {}).get('sha256', '')
            if states[name] == 'unverified' and _sha256_of(path) == published[name]:
                log.info(f'{name}: the cached file matches the published one')
                files[name] = dict(signature(path) or {}, sha256=published[name])
                continue
            if not needs_download(
                states[name], recorded, published[name], name == arch.system_disk
            ):
                continue
            partial = os.path.join(box_dir, f'.{name}.{published[name][:16]}.part')
            _remove_other_partials(box_dir, name, partial)
            log.info(f'fetching {name} of box {box.name} ({arch.name})')
            self.fetcher.download(base_url + name, partial, published[name], name)
            fetched[name] = partial
            files[name] = dict(signature(partial) or {}, sha256=published[name])
        if not fetched and files == record['files']:
            log.info(f'box {box.name} ({arch.name}) is up to date')
            if arch.packages_file and \
                    not os.path.exists(os.path.join(box_dir, arch.packages_file)):
                self._fetch_packages_file(box_dir, arch, base_url)
            return record
        record = dict(record, files=files)
        self._write_record(box, arch, record)
        for name, partial in fetched.items():
            os.replace(partial, os.path.join(box_dir, name))
        if arch.packages_file:
            self._fetch_packages_file(box_dir, arch, base_url)
        return record

    def _fetch_packages_file(self, box_dir: str, arch: BoxArch, base_url: str) -> None:
        # only informative (the .sha256 files decide): a broken one is
        # worth a warning, not a failed build
        try:
            content = self.fetcher.read_small(base_url + arch.packages_file)
            _write_atomically(os.path.join(box_dir, arch.packages_file), content)
        except (KiwiBoxDownloadError, OSError) as issue:
            log.warning(f'packages file {arch.packages_file} not updated: {issue}')

    def _boot_files(self, box: Box, arch: BoxArch, record: dict) -> Tuple[str, str]:
        """
        Kernel and initrd, extracted from the tarball once per verified tarball
        """
        box_dir = os.path.join(self.root, box.name)
        kernel, initrd = arch.boot_files
        targets = {
            'kernel': os.path.join(box_dir, kernel),
            'initrd': os.path.join(box_dir, initrd) if arch.use_initrd else ''
        }
        tarball_digest = record['files'][arch.kernel_tarball]['sha256']
        boot = record.get('boot', {})
        current = boot.get('tarball_sha256') == tarball_digest and all(
            file_state(boot.get(role), signature(path)) == 'verified'
            for role, path in targets.items() if path
        )
        if not current:
            log.info(f'box {box.name} ({arch.name}): extracting kernel and initrd')
            boot = {'tarball_sha256': tarball_digest}
            boot.update(self._extract(
                os.path.join(box_dir, arch.kernel_tarball), arch.use_initrd, targets
            ))
            self._write_record(box, arch, dict(record, boot=boot))
        return targets['kernel'], targets['initrd']

    @staticmethod
    def _extract(
        tarball: str, use_initrd: bool, targets: Dict[str, str]
    ) -> Dict[str, Signature]:
        signatures: Dict[str, Signature] = {}
        try:
            with tarfile.open(tarball) as archive:
                members = pick_boot_members(archive.getnames(), use_initrd)
                for role, member in zip(('kernel', 'initrd'), members):
                    if not member:
                        continue
                    # extractfile follows links inside the archive and
                    # never writes outside the target we name
                    source = archive.extractfile(member)
                    if source is None:
                        raise KiwiBoxKernelError(
                            f'{member} in {tarball} is not a regular file'
                        )
                    with source:
                        _write_atomically(targets[role], source)
                    signatures[role] = signature(targets[role]) or {}
        except (tarfile.TarError, EOFError, KeyError, OSError) as issue:
            raise KiwiBoxKernelError(f'cannot extract the kernel from {tarball}: {issue}')
        return signatures

    def _file_states(self, box: Box, arch: BoxArch, record: dict) -> Dict[str, str]:
        box_dir = os.path.join(self.root, box.name)
        return {
            name: file_state(
                record['files'].get(name), signature(os.path.join(box_dir, name))
            ) for name in arch.boxfiles
        }

    def _record_path(self, box: Box, arch: BoxArch) -> str:
        return os.path.join(self.root, box.name, f'.{arch.name}.verified.json')

    def _read_record(self, box: Box, arch: BoxArch) -> dict:
        # a missing or damaged record makes every file unverified: the
        # next use hashes them once instead of trusting them
        try:
            with open(self._record_path(box, arch)) as handle:
                record = json.load(handle)
            if isinstance(record.get('files'), dict) and isinstance(record.get('boot'), dict):
                return record
        except (OSError, ValueError, AttributeError):
            pass
        return {'files': {}, 'boot': {}}

    def _write_record(self, box: Box, arch: BoxArch, record: dict) -> None:
        _write_atomically(
            self._record_path(box, arch), json.dumps(record, indent=1).encode()
        )

    def _obs_url(self) -> str:
        if self.obs_download_url is None:
            self.obs_download_url = Defaults.get_obs_download_url()
        return self.obs_download_url

    @staticmethod
    def _remove_stale_temp_dirs(temp_area: str, prefix: str) -> None:
        """
        Remove temp dirs of builds that died without cleaning up: their
        hard links would keep old boxes on disk for good
        """
        for name in os.listdir(temp_area):
            if not name.startswith(prefix):
                continue
            path = os.path.join(temp_area, name)
            handle = lock_if_free(path, os.O_RDONLY | os.O_DIRECTORY)
            if handle is None:
                continue
            log.info(f'removing {path} left by a build that ended abnormally')
            _remove_temp_dir(path, handle)


@contextmanager
def _locked(path: str, box: Box, arch: BoxArch) -> Iterator[None]:
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as issue:
        raise KiwiBoxCacheError(f'cannot create lock file {path}: {issue.strerror}')
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(
                f'box {box.name} ({arch.name}) is being prepared by another '
                'process: waiting for it'
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _make_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as issue:
        raise KiwiBoxCacheError(
            f'cannot create box cache directory {path}: {issue.strerror}: '
            'set KIWI_BOXED_CACHE_DIR to a writable directory'
        )


def _link(path: str, temp_dir: str) -> str:
    target = os.path.join(temp_dir, os.path.basename(path))
    try:
        os.link(path, target)
    except OSError as issue:
        raise KiwiBoxCacheError(
            f'cannot hard link {path} into {temp_dir}: {issue.strerror}; '
            'the box cache must be one local file system supporting hard links'
        )
    return target


def _remove_temp_dir(path: str, holder: int) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.close(holder)


def _remove_other_partials(box_dir: str, name: str, keep: str) -> None:
    """
    Drop partial downloads of older uploads of a file
    """
    for entry in os.listdir(box_dir):
        path = os.path.join(box_dir, entry)
        if entry.startswith(f'.{name}.') and entry.endswith('.part') and path != keep:
            os.unlink(path)


def _sha256_of(path: str) -> str:
    """
    Digest of a cached file that has no verification record yet ('' if
    there is no file); read once, then recorded
    """
    if not os.path.exists(path):
        return ''
    log.info(f'{os.path.basename(path)}: verifying the cached file once')
    hasher = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(Defaults.get_download_chunk_size()), b''):
            hasher.update(chunk)
    return hasher.hexdigest()


def _write_atomically(path: str, content: object) -> None:
    """
    Write bytes or a readable binary stream to path through a temp file
    beside it, so readers see the old or the new file, never a part
    """
    handle, temp = tempfile.mkstemp(
        prefix=f'.{os.path.basename(path)}.', dir=os.path.dirname(path)
    )
    try:
        with os.fdopen(handle, 'wb') as target:
            if isinstance(content, bytes):
                target.write(content)
            else:
                shutil.copyfileobj(content, target)  # type: ignore
        os.replace(temp, path)
    except OSError as issue:
        if os.path.exists(temp):
            os.unlink(temp)
        if issue.errno in (errno.ENOSPC, errno.EDQUOT):
            raise KiwiBoxDiskFullError(
                f'no space left in {os.path.dirname(path)}: free some space '
                'or point KIWI_BOXED_CACHE_DIR elsewhere'
            )
        raise
