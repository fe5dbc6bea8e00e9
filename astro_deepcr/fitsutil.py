# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Safe in-place updates of FITS files: checks, a per-file lock and atomic replacement.

A FITS file updated with ``fits.open(path, mode="update")`` is rewritten in
place; a crash (or ``kill -9``) half-way leaves a truncated or mixed file.
The helpers here never touch the original until the new content is
complete on disk:

1. `check_updatable` refuses what cannot be updated safely (missing, not a
   regular file, compressed, read-only, in a read-only directory);
2. `FileLock` serialises concurrent updates of one file (a `filelock` lock on
   ``<file>.lock``, released by the operating system if the holder dies);
3. `atomic_write` hands out a temporary file in the same directory; on
   success it is flushed, ``fsync``-ed, given the original's permission
   bits and moved over the original with `os.replace` (atomic on POSIX); on
   failure it is removed and the original is untouched;
4. `update_fits` combines them: it reads the whole file into memory, lets
   the caller modify the `~astropy.io.fits.HDUList`, and replaces the file
   atomically, leaving raw data of untouched HDUs bit-for-bit identical.

Example
-------
>>> from astro_deepcr.fitsutil import update_fits
>>> with update_fits("j12345abq_flc.fits") as hdul:  # doctest: +SKIP
...     hdul["DQ", 1].data[10, 10] |= 4096
...     hdul[0].header["HISTORY"] = "flagged one pixel"
"""

import contextlib
import errno
import os
import stat
import tempfile
import time
import warnings

from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

__all__ = [
    "FitsUpdateError",
    "FileLockError",
    "check_updatable",
    "FileLock",
    "atomic_write",
    "update_fits",
    "refresh_checksums",
    "strict_truncation",
]

_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".z", ".fz")
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"PK\x03\x04")


class FitsUpdateError(OSError):
    """A FITS file cannot be updated safely (compressed, read-only, not a file...)."""


class FileLockError(FitsUpdateError):
    """Another process is updating the same file."""


def check_updatable(path):
    """Raise `FitsUpdateError` unless ``path`` can be rewritten safely in place.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    path : str
        The absolute path.

    Raises
    ------
    FitsUpdateError
        The file is missing, not a regular file, compressed (gzip, bzip2,
        xz, zip or tile-compressed ``.fz``), not writable, or its directory
        does not allow creating the temporary file.
    """
    path = os.path.abspath(os.fspath(path))
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FitsUpdateError(errno.ENOENT, "FITS file not found", path) from None
    if not stat.S_ISREG(info.st_mode):
        raise FitsUpdateError(f"{path} is not a regular file")
    if path.lower().endswith(_COMPRESSED_SUFFIXES):
        raise FitsUpdateError(f"{path} is compressed; decompress it first (it cannot be updated in place)")
    with open(path, "rb") as stream:
        head = stream.read(6)
    if head.startswith(_COMPRESSED_MAGIC):
        raise FitsUpdateError(f"{path} is compressed (by its content); decompress it first")
    if not head.startswith(b"SIMPLE"):
        raise FitsUpdateError(f"{path} is not a FITS file (it does not start with SIMPLE)")
    # a file without any write permission bit is read-only on purpose, even for root
    if not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
        raise FitsUpdateError(errno.EACCES, "FITS file is read-only; it will not be modified", path)
    if not os.access(os.path.dirname(path), os.W_OK | os.X_OK):
        raise FitsUpdateError(errno.EACCES, "directory is not writable (needed for the temporary file)",
                              os.path.dirname(path))
    return path


class _StaleLockFile(Exception):
    """The lock file was unlinked by its previous holder between our open and our lock."""


class FileLock:
    """Exclusive advisory lock on ``<path>.lock`` (the `filelock` package).

    Parameters
    ----------
    path : str or path-like
        The file to protect; the lock file is ``path + ".lock"``.
    timeout : float
        Seconds to wait for a lock held by another process; 0 (default)
        fails at once.

    Raises
    ------
    FileLockError
        On entering, when the lock is still held after ``timeout``.

    Notes
    -----
    `filelock` uses the platform's own locks (``flock`` on POSIX, ``msvcrt``
    on Windows), so nothing here needs ``fcntl``. The operating system
    releases the lock when its holder exits, even by ``SIGKILL``; a
    leftover ``.lock`` file is therefore harmless and reused. The holder
    removes the lock file before releasing it, and a process that locked a
    file removed meanwhile tries again on the new one, so two processes
    never both hold the lock. The lock is advisory: it serialises
    cooperating processes (all users of this module), not arbitrary writers.
    """

    def __init__(self, path, timeout=0.0):
        self.path = os.fspath(path)
        self.lock_path = self.path + ".lock"
        self.timeout = float(timeout)
        self._lock = None

    def _check_same_file(self, fd):
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
        except FileNotFoundError:
            same = False
        if not same:
            raise _StaleLockFile(self.lock_path)

    def acquire(self):
        import filelock

        deadline = time.monotonic() + self.timeout
        while True:
            lock = filelock.FileLock(self.lock_path, timeout=max(0.0, deadline - time.monotonic()),
                                     thread_local=False, on_acquired=self._check_same_file)
            try:
                lock.acquire()
            except filelock.Timeout:
                raise FileLockError(
                    f"{self.path} is being updated by another process (lock {self.lock_path} is held)"
                ) from None
            except _StaleLockFile:
                continue  # the holder we waited for removed the file: lock the one on disk now
            self._lock = lock
            return self

    def release(self):
        if self._lock is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock_path)
        self._lock.release()
        self._lock = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def _fsync_directory(directory):
    with contextlib.suppress(OSError):  # not supported on every file system
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode=None):
    """Write a file atomically: yield a temporary path, then replace ``path`` by it.

    Parameters
    ----------
    path : str or path-like
        Final location. Its directory must be writable.
    mode : int, optional
        Permission bits of the result; default those of the existing
        ``path`` (or ``0o644`` minus the umask for a new file).

    Yields
    ------
    tmp_path : str
        Write the complete new content here (the file exists and is empty).

    Notes
    -----
    On a clean exit the temporary file is ``fsync``-ed, chmod-ed and moved
    over ``path`` with `os.replace`, then the directory is ``fsync``-ed. On an
    exception it is deleted and ``path`` is untouched. A process killed in
    between leaves ``path`` intact and a stray ``.<name>.*.tmp`` file.
    """
    path = os.path.realpath(os.fspath(path))  # a symlink: replace its target, keep the link (issue #28)
    directory, name = os.path.split(path)
    try:
        existing = os.stat(path)
    except FileNotFoundError:
        existing = None
    if mode is None:
        if existing is not None:
            mode = stat.S_IMODE(existing.st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o644 & ~umask
    fd, tmp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as stream:
            stream.flush()
            os.fsync(stream.fileno())
        if existing is not None:
            _keep_owner(tmp_path, existing)
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise
    _fsync_directory(directory)


def _keep_owner(tmp_path, existing):
    """Give ``tmp_path`` the owner and group of the file it replaces, as far as the OS allows."""
    if not hasattr(os, "chown"):
        return
    for uid in (existing.st_uid, -1):  # only root may give a file away; the group often can be kept
        try:
            os.chown(tmp_path, uid, existing.st_gid)
            return
        except OSError:
            continue


@contextlib.contextmanager
def update_fits(path, lock_timeout=0.0):
    """Modify a FITS file in memory and replace it atomically.

    Parameters
    ----------
    path : str or path-like
        An uncompressed, writable FITS file.
    lock_timeout : float
        Seconds to wait for another process updating the same file.

    Yields
    ------
    hdul : `~astropy.io.fits.HDUList`
        The whole file, read into memory with ``do_not_scale_image_data=True``
        (``.data`` are the raw stored values, so untouched HDUs are written
        back bit-for-bit). Modify it in place.

    Raises
    ------
    FitsUpdateError, FileLockError
        See `check_updatable` and `FileLock`.

    Notes
    -----
    The new file is written, re-opened and verified (same number of HDUs)
    before it replaces the original. ``CHECKSUM`` / ``DATASUM`` are
    recomputed in each HDU that carried them, and added to no other.
    """
    path = check_updatable(os.path.realpath(os.fspath(path)))
    with FileLock(path, timeout=lock_timeout):
        # our own handle: closed even when astropy raises while reading (a truncated file, issue #28)
        with open(path, "rb") as stream, fits.open(stream, memmap=False, do_not_scale_image_data=True,
                                                   lazy_load_hdus=False) as hdul:
            for hdu in hdul:
                _ = hdu.data  # read everything before the file is closed
            if any(isinstance(hdu, fits.CompImageHDU) for hdu in hdul):
                raise FitsUpdateError(f"{path} has tile-compressed HDUs; decompress it first (funpack)")
            yield hdul
            with atomic_write(path) as tmp_path:
                refresh_checksums(hdul)
                hdul.writeto(tmp_path, overwrite=True, output_verify="exception")
                with fits.open(tmp_path, memmap=False, do_not_scale_image_data=True) as written:
                    if len(written) != len(hdul):
                        raise FitsUpdateError(f"verification of the rewritten {path} failed; original kept")


def refresh_checksums(hdul):
    """Recompute ``CHECKSUM`` / ``DATASUM`` in the HDUs that carry them, and add them to no other.

    Call it just before writing: the sums then cover the headers and data as
    written (astropy changes no card on the way). A file whose sums were
    copied from its input would fail verification after any change.
    """
    for hdu in hdul:
        if "CHECKSUM" in hdu.header:
            hdu.add_checksum()
        elif "DATASUM" in hdu.header:
            hdu.add_datasum()


def strict_truncation():
    """Make astropy's "File may have been truncated" warning an error in this process.

    A truncated file then fails with that reason instead of a warning plus a
    confusing read error. The command line tool and the ``jobs`` workers call
    this.
    """
    warnings.filterwarnings("error", message="File may have been truncated", category=AstropyUserWarning)
