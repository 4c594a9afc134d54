"""Object storage for private media: one interface, a local-disk backend and a MinIO backend."""

from __future__ import annotations

import builtins
import errno
import hashlib
import hmac
import io
import os
import re
import socket
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from minio import Minio
    from urllib3 import BaseHTTPResponse

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "InvalidKey",
    "LocalStorage",
    "MinioStorage",
    "ObjectNotFound",
    "Readable",
    "Storage",
    "StorageConfigError",
    "StorageError",
    "StorageFull",
    "StorageUnavailable",
    "StoredObject",
    "content_type_for",
    "sign",
    "storage_from_config",
    "validate_key",
    "verify",
]

CHUNK_SIZE = 256 * 1024
# S3 refuses multipart parts under 5 MiB (except the last); the MinIO SDK buffers two or three.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PRESIGN_S = 7 * 24 * 3600
MAX_KEY_LENGTH = 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"

# A segment never starts with a dot: that rules out "." and "..", and keeps the
# local backend's hidden temp files out of the key space.
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}"
_KEY_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_PREFIX_RE = re.compile(rf"(?:{_SEGMENT}/)*(?:{_SEGMENT})?")
_TMP_PREFIX = ".tmp-"
# LocalStorage writes each object to a temporary file first, in a folder of the writing
# process under the root (`.tmp/<host>-<pid>`, outside the key space): the leftovers of a
# process killed mid-write are then found without walking the store (see remove_dead_temp).
_TEMP_DIR = ".tmp"


class StorageError(Exception):
    """Anything the object store could not do."""


class StorageFull(StorageError):
    """No room left: the disk or quota is full (ENOSPC, EDQUOT, EFBIG), or MinIO says so."""


class StorageUnavailable(StorageError):
    """The store cannot be used just now: unwritable, unreachable, refusing; retry later."""


# MinIO's codes for a store out of room.
_FULL_CODES = frozenset({"XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "QuotaExceeded"})
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_error_from_os(exc: OSError, what: str) -> StorageError:
    """StorageFull or StorageUnavailable for an operating-system error on the store's disk."""
    kind = StorageFull if exc.errno in _FULL_ERRNOS else StorageUnavailable
    return kind(f"{what}: {exc.strerror or exc}")


@contextmanager
def _disk_errors(what: str) -> Iterator[None]:
    """OSError from the local disk as StorageFull or StorageUnavailable; our own errors pass."""
    try:
        yield
    except OSError as exc:
        raise storage_error_from_os(exc, what) from exc


class ObjectNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no object under key {key!r}")
        self.key = key


class InvalidKey(StorageError):
    def __init__(self, key: str, reason: str = "not a valid object key") -> None:
        super().__init__(f"{key!r}: {reason}")
        self.key = key


class StorageConfigError(StorageError):
    """The STORAGE_* / MINIO_* settings are missing or inconsistent."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str  # lowercase hex


def validate_key(key: object) -> str:
    """Return key if it is a safe object key, else raise InvalidKey (whatever it was given).

    Keys are relative, '/'-separated, made of [A-Za-z0-9._-] segments that do not start
    with a dot, so a key can never name a path outside the store's root.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey(str(key), "empty key")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(key, "key too long")
    if not _KEY_RE.fullmatch(key):
        raise InvalidKey(key)
    return key


def _validate_prefix(prefix: object, *, allow_empty: bool) -> str:
    if not isinstance(prefix, str) or len(prefix) > MAX_KEY_LENGTH:
        raise InvalidKey(str(prefix), "not a valid prefix")
    if not prefix and not allow_empty:
        raise InvalidKey(prefix, "empty prefix would match every object")
    if not _PREFIX_RE.fullmatch(prefix):
        raise InvalidKey(prefix, "not a valid prefix")
    return prefix


_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}


def content_type_for(name: str) -> str:
    """Content type by file extension from a fixed map; the host's mime table varies by machine."""
    dot = name.rfind(".")
    if dot < 0 or "/" in name[dot:]:
        return DEFAULT_CONTENT_TYPE
    return _CONTENT_TYPES.get(name[dot:].lower(), DEFAULT_CONTENT_TYPE)


# --- URL signing for the local backend, which cannot presign ---------------------------------

_SIGN_CONTEXT = b"veriskill-storage-get-v1\x00"


def sign(secret: bytes, key: str, expires_at: int) -> str:
    """HMAC-SHA256 over (key, expires_at) as hex, for the app's own download URLs."""
    if not secret:
        raise ValueError("signing secret must not be empty")
    # expires_at is an int, so the ':' separator cannot be forged from either side.
    message = _SIGN_CONTEXT + f"{int(expires_at)}:{key}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify(secret: bytes, key: str, expires_at: int, signature: str, now: int) -> bool:
    """True if signature is sign(secret, key, expires_at) and now is before expires_at."""
    if now >= expires_at:
        return False
    expected = sign(secret, key, expires_at)
    # compare_digest refuses non-ASCII str, so compare bytes: a garbage signature is False.
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


# --- streaming helpers -----------------------------------------------------------------------


class Readable(Protocol):
    """What put_stream reads from: anything with read(size), a request body or a file."""

    def read(self, size: int = -1, /) -> bytes: ...


class _HashingReader:
    """Passes a stream through, counting and hashing; enforces the declared length at EOF."""

    def __init__(self, source: Readable, expected: int | None) -> None:
        if expected is not None and expected < 0:
            raise ValueError("length must be >= 0 or None")
        self._source = source
        self.expected = expected
        self._hash = hashlib.sha256()
        self.size = 0
        self.at_eof = False
        self.source_error: OSError | None = None

    def read(self, size: int = -1, /) -> bytes:
        """Up to size bytes (CHUNK_SIZE if size < 0), short only at the end of the stream."""
        if self.at_eof or size == 0:
            return b""
        # Never pass -1 on: that would pull the whole body into memory.
        want = size if size > 0 else CHUNK_SIZE
        first = self._pull(want)
        if len(first) >= want or self.at_eof:
            return first
        # Fill the request in one bytes object: the MinIO SDK otherwise concatenates short
        # reads into a part, copying it each time and holding three parts at its peak.
        buffer = io.BytesIO()
        buffer.write(first)
        del first
        while (missing := want - buffer.tell()) > 0:
            data = self._pull(missing)
            if not data:
                break
            buffer.write(data)
        return buffer.getvalue()

    def _pull(self, size: int) -> bytes:
        if self.at_eof:
            return b""
        try:
            data = self._source.read(size)
        except OSError as exc:
            # The sender's connection broke: the caller's problem, not the store's.
            self.source_error = exc
            raise
        if not data:
            self.at_eof = True
            if self.expected is not None and self.size != self.expected:
                raise StorageError(
                    f"stream ended after {self.size} bytes, expected {self.expected}"
                )
            return b""
        self.size += len(data)
        if self.expected is not None and self.size >= self.expected:
            # Check for surplus bytes now, while a consumer that stops at the declared length
            # (the MinIO SDK) has not yet committed the object.
            if self.size > self.expected or self._source.read(1):
                raise StorageError(f"stream is longer than the declared {self.expected} bytes")
            self.at_eof = True
        self._hash.update(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _ChainReader:
    """Reads several stored objects one after another, opening each only when needed."""

    def __init__(self, storage: Storage, keys: builtins.list[str]) -> None:
        self._storage = storage
        self._pending = list(reversed(keys))
        self._current: BinaryIO | None = None

    def read(self, size: int = -1, /) -> bytes:
        want = size if size > 0 else CHUNK_SIZE
        while True:
            if self._current is None:
                if not self._pending:
                    return b""
                self._current = self._storage.open(self._pending.pop())
            data = self._current.read(want)
            if data:
                return data
            self._current.close()
            self._current = None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None


def _temp_file(folder: Path, attempts: int = 3) -> tuple[int, str]:
    """A new temporary file in folder, made if missing: mkstemp's (fd, name).

    LocalStorage.delete prunes empty directories; a concurrent delete can remove the folder
    between mkdir and mkstemp, so the last of a few attempts is the one whose error counts.
    """
    for _ in range(attempts - 1):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            return tempfile.mkstemp(dir=folder, prefix=_TMP_PREFIX, suffix=".part")
        except FileNotFoundError:
            continue
    folder.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=folder, prefix=_TMP_PREFIX, suffix=".part")


def _copy_to_file(source: Readable, dest: Path, tmp_dir: Path | None = None) -> None:
    """Write source to dest atomically: a temp file (in tmp_dir, which must be on dest's file
    system, or else beside dest), then os.replace."""
    fd, tmp_name = _temp_file(tmp_dir or dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK_SIZE):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        _replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _replace(tmp_name: str, dest: Path) -> None:
    """os.replace, making dest's folder again if a concurrent delete pruned it meanwhile."""
    for attempt in range(3):
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp_name, dest)
            return
        except FileNotFoundError:
            if attempt == 2 or not Path(tmp_name).exists():
                raise


# --- the interface ---------------------------------------------------------------------------


class Storage(ABC):
    """Private objects under generated keys (`<kind>/<uuid>/...`); client file names are never keys.

    Every method validates its key and raises InvalidKey, ObjectNotFound or StorageError.
    """

    # -- primitives each backend provides

    @abstractmethod
    def _write(self, key: str, reader: _HashingReader, content_type: str) -> None:
        """Store everything reader yields under key; nothing appears under key on failure."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A streaming reader over the object; the caller closes it."""

    @abstractmethod
    def read_range(self, key: str, start: int, end_inclusive: int) -> Iterator[bytes]:
        """Bytes start..end_inclusive in chunks; end is clipped to the object's last byte.

        Raises ValueError if start is negative, past the end, or after end_inclusive.
        Missing objects raise ObjectNotFound at the call, not on first iteration.
        """

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    @abstractmethod
    def list(self, prefix: str) -> builtins.list[str]:
        """Keys starting with prefix (a plain string prefix, as in S3), sorted."""

    @abstractmethod
    def presigned_get(
        self, key: str, expires_s: int, *, content_type: str | None = None
    ) -> str | None:
        """A URL the browser can GET directly, or None: then the app serves the bytes itself."""

    # -- built on the primitives

    def put_stream(
        self,
        key: str,
        stream: Readable,
        *,
        content_type: str,
        length: int | None = None,
    ) -> StoredObject:
        """Store stream under key in chunks, hashing as it goes.

        If length is given the stream must hold exactly that many bytes, else StorageError
        and nothing is stored.
        """
        validate_key(key)
        return self._store(key, _HashingReader(stream, length), content_type)

    def _store(self, key: str, reader: _HashingReader, content_type: str) -> StoredObject:
        self._write(key, reader, content_type)
        if not reader.at_eof:  # a backend that stopped early has stored a truncated object
            self.delete(key)
            raise StorageError(f"backend stopped reading {key!r} before the end of the stream")
        return StoredObject(key=key, size=reader.size, sha256=reader.hexdigest())

    def put_file(self, key: str, path: Path | str, content_type: str) -> StoredObject:
        with open(path, "rb") as f:
            return self.put_stream(
                key, f, content_type=content_type, length=os.fstat(f.fileno()).st_size
            )

    def concat(self, keys: builtins.list[str], dest_key: str, content_type: str) -> StoredObject:
        """Stream the objects under keys, in order, into dest_key (e.g. resumable-upload parts)."""
        if not keys:
            raise ValueError("concat needs at least one source key")
        for key in keys:
            validate_key(key)
        validate_key(dest_key)
        chain = _ChainReader(self, keys)
        try:
            return self._store(dest_key, _HashingReader(chain, None), content_type)
        finally:
            chain.close()

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with prefix; returns how many. '' is refused."""
        _validate_prefix(prefix, allow_empty=False)
        keys = self.list(prefix)
        for key in keys:
            self.delete(key)
        return len(keys)

    def download_to(self, key: str, path: Path | str) -> None:
        """Copy the object to a local file, atomically replacing path."""
        with self.open(key) as src:
            _copy_to_file(src, Path(path))

    def upload_dir(
        self, prefix: str, local_dir: Path | str, content_types: Callable[[str], str]
    ) -> builtins.list[StoredObject]:
        """Upload every file below local_dir to `<prefix>/<relative path>` (an HLS output folder).

        content_types gets the relative path ('720p/seg_001.ts') and returns its content type.
        """
        base = _validate_prefix(prefix, allow_empty=False).rstrip("/")
        if not base:
            raise InvalidKey(prefix, "not a valid prefix")
        root = Path(local_dir)
        if not root.is_dir():
            raise StorageError(f"{root} is not a directory")
        files: builtins.list[tuple[str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                if path.is_symlink() or not path.is_file():
                    raise StorageError(f"{path} is not a regular file")
                rel = path.relative_to(root).as_posix()
                files.append((validate_key(f"{base}/{rel}"), path))
        # Every key is checked before the first upload, so a bad name uploads nothing.
        return [
            self.put_file(key, path, content_types(key[len(base) + 1 :])) for key, path in files
        ]


# --- local disk ------------------------------------------------------------------------------


class LocalStorage(Storage):
    """Objects as files under root. Writes are atomic; files are created mode 0600."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def temp_root(self) -> Path:
        """Where every process keeps its unfinished writes, one folder each."""
        return self.root / _TEMP_DIR

    def temp_dir(self) -> Path:
        """This process's folder of unfinished writes: `<host>-<pid>` under temp_root."""
        return self.temp_root() / f"{socket.gethostname()}-{os.getpid()}"

    def local_path(self, key: str) -> Path:
        """Path of an existing object, for the app to serve itself (with Range support)."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _write(self, key: str, reader: _HashingReader, content_type: str) -> None:
        try:
            _copy_to_file(reader, self._path(key), self.temp_dir())
        except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
            # On disk 'a/b' cannot be both an object and a folder of objects.
            raise StorageError(f"{key!r} collides with an existing object or prefix") from exc
        except OSError as exc:
            if exc is reader.source_error:
                raise
            raise storage_error_from_os(exc, f"writing {key!r}") from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise storage_error_from_os(exc, f"opening {key!r}") from exc

    def read_range(self, key: str, start: int, end_inclusive: int) -> Iterator[bytes]:
        f = self.open(key)
        try:
            total = os.fstat(f.fileno()).st_size
            end = _check_range(start, end_inclusive, total)
            f.seek(start)
        except BaseException:
            f.close()
            raise
        return _Chunks(_file_chunks(f, end - start + 1), f.close)

    def size(self, key: str) -> int:
        path = self._path(key)
        with _disk_errors(f"reading the size of {key!r}"):
            if not path.is_file():
                raise ObjectNotFound(key)
            return path.stat().st_size

    def exists(self, key: str) -> bool:
        with _disk_errors(f"looking for {key!r}"):
            return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        except OSError as exc:
            raise storage_error_from_os(exc, f"deleting {key!r}") from exc
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        """Remove now-empty directories up to (not including) root."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def list(self, prefix: str) -> builtins.list[str]:
        _validate_prefix(prefix, allow_empty=True)
        base = self.root.joinpath(*prefix.split("/")[:-1])
        if not base.is_dir():
            return []
        keys: builtins.list[str] = []

        def unreadable(exc: OSError) -> None:
            raise storage_error_from_os(exc, f"listing {prefix!r}") from exc

        for dirpath, dirnames, filenames in os.walk(base, onerror=unreadable):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue  # in-flight temp files are not objects
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def presigned_get(
        self, key: str, expires_s: int, *, content_type: str | None = None
    ) -> str | None:
        validate_key(key)
        return None


def _check_range(start: int, end_inclusive: int, total: int) -> int:
    if start < 0 or end_inclusive < start:
        raise ValueError(f"invalid range {start}-{end_inclusive}")
    if start >= total:
        raise ValueError(f"range start {start} is past the end of a {total}-byte object")
    return min(end_inclusive, total - 1)


def _file_chunks(f: BinaryIO, remaining: int) -> Iterator[bytes]:
    while remaining > 0:
        chunk = f.read(min(CHUNK_SIZE, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


class _Chunks(Iterator[bytes]):
    """Chunks that release their file or connection when exhausted, closed or dropped.

    A bare generator would not run its cleanup if it is never started; close() also lets a
    WSGI server release the source when the client disconnects.
    """

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None]) -> None:
        self._chunks = chunks
        self._close: Callable[[], None] | None = close

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close()

    def __del__(self) -> None:
        self.close()


# --- MinIO / S3 ------------------------------------------------------------------------------


class _ResponseReader(io.RawIOBase):
    """An HTTP response as a raw stream whose close() hands the connection back to the pool."""

    def __init__(self, response: BaseHTTPResponse) -> None:
        self._response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._response.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._response.release_conn()
        super().close()


class MinioStorage(Storage):
    """Objects in a private MinIO (or S3-compatible) bucket, created on first use if missing."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool,
        region: str | None,
        part_size: int = MIN_PART_SIZE,
    ) -> None:
        from minio import Minio

        if "://" in endpoint or "/" in endpoint:
            raise StorageConfigError(
                f"MinIO endpoint {endpoint!r} must be host[:port]; set secure for https"
            )
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE}")
        self.bucket = bucket
        self.region = region
        self.part_size = part_size
        self.client: Minio = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region
        )
        self._bucket_ready = False
        self._lock = threading.Lock()

    def ensure_bucket(self) -> None:
        """Create the bucket if missing. No bucket policy is set: objects stay private."""
        if self._bucket_ready:
            return
        from minio.error import S3Error

        with self._lock, self._errors(None):
            if not self._bucket_ready:
                if not self.client.bucket_exists(self.bucket):
                    try:
                        self.client.make_bucket(self.bucket, location=self.region)
                    except S3Error as exc:
                        # Another process won the race to create it.
                        if exc.code != "BucketAlreadyOwnedByYou":
                            raise
                self._bucket_ready = True

    @contextmanager
    def _errors(self, key: str | None) -> Iterator[None]:
        """Translate the SDK's and urllib3's errors into ours."""
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError

        try:
            yield
        except S3Error as exc:
            if key is not None and exc.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectNotFound(key) from None
            if exc.code == "InvalidRange":
                raise ValueError(f"range outside object {key!r}") from None
            # Anything else (a full disk, a missing bucket, refused credentials) is the
            # operator's to fix, not the caller's.
            kind = StorageFull if exc.code in _FULL_CODES else StorageUnavailable
            raise kind(f"object store: {exc.code}: {exc.message}") from exc
        except (MinioException, HTTPError) as exc:
            raise StorageUnavailable(f"object store unavailable: {exc}") from exc

    def _write(self, key: str, reader: _HashingReader, content_type: str) -> None:
        if reader.expected == 0:
            reader.read(1)  # the SDK will not read at all; this checks the stream is empty
        self.ensure_bucket()
        with self._errors(key):
            # The SDK uploads part by part, one at a time here, holding two parts in memory
            # when the length is known and three when it is not (-1). An exception from the
            # stream aborts the multipart upload, so nothing appears under key.
            self.client.put_object(
                self.bucket,
                key,
                reader,  # type: ignore[arg-type]  # only read() is used
                length=-1 if reader.expected is None else reader.expected,
                content_type=content_type,
                part_size=self.part_size,
                num_parallel_uploads=1,
            )

    def open(self, key: str) -> BinaryIO:
        validate_key(key)
        self.ensure_bucket()
        with self._errors(key):
            response = self.client.get_object(self.bucket, key)
        return io.BufferedReader(_ResponseReader(response), buffer_size=CHUNK_SIZE)

    def read_range(self, key: str, start: int, end_inclusive: int) -> Iterator[bytes]:
        validate_key(key)
        if start < 0 or end_inclusive < start:
            raise ValueError(f"invalid range {start}-{end_inclusive}")
        self.ensure_bucket()
        with self._errors(key):
            response = self.client.get_object(
                self.bucket, key, offset=start, length=end_inclusive - start + 1
            )

        def release() -> None:
            response.close()
            response.release_conn()

        return _Chunks(response.stream(CHUNK_SIZE), release)

    def size(self, key: str) -> int:
        validate_key(key)
        self.ensure_bucket()
        with self._errors(key):
            stat = self.client.stat_object(self.bucket, key)
        if stat.size is None:
            raise StorageError(f"object store reported no size for {key!r}")
        return stat.size

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        self.ensure_bucket()
        with self._errors(key):
            self.client.remove_object(self.bucket, key)

    def delete_prefix(self, prefix: str) -> int:
        from minio.deleteobjects import DeleteObject

        _validate_prefix(prefix, allow_empty=False)
        keys = self.list(prefix)
        with self._errors(None):
            # remove_objects is lazy: errors only arrive while iterating.
            errors = builtins.list(
                self.client.remove_objects(self.bucket, (DeleteObject(k) for k in keys))
            )
        if errors:
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} objects under {prefix!r}, "
                f"first {first.name!r}: {first.code}"
            )
        return len(keys)

    def list(self, prefix: str) -> builtins.list[str]:
        _validate_prefix(prefix, allow_empty=True)
        self.ensure_bucket()
        with self._errors(None):
            objects = self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
            keys = [o.object_name for o in objects if o.object_name and not o.is_dir]
        return sorted(keys)

    def presigned_get(
        self, key: str, expires_s: int, *, content_type: str | None = None
    ) -> str | None:
        validate_key(key)
        if not 1 <= expires_s <= MAX_PRESIGN_S:
            raise ValueError(f"expires_s must be between 1 and {MAX_PRESIGN_S}")
        headers = {"response-content-type": content_type} if content_type else None
        with self._errors(key):
            return self.client.presigned_get_object(
                self.bucket,
                key,
                expires=timedelta(seconds=expires_s),
                response_headers=headers,  # type: ignore[arg-type]  # SDK's alias is too narrow
            )


# --- configuration ---------------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _setting(config: Mapping[str, object], name: str) -> str | None:
    value = config.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _flag(config: Mapping[str, object], name: str, default: bool) -> bool:
    value = config.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise StorageConfigError(f"{name}={value!r} is not a boolean (use true or false)")


def storage_from_config(config: Mapping[str, object]) -> Storage:
    """Build the backend named by STORAGE_BACKEND ('local' or 'minio') from a config mapping.

    local: STORAGE_ROOT. minio: MINIO_ENDPOINT (host:port), MINIO_ACCESS_KEY, MINIO_SECRET_KEY,
    MINIO_BUCKET, and optional MINIO_SECURE (default true) and MINIO_REGION.
    """
    backend = (_setting(config, "STORAGE_BACKEND") or "").lower()
    if backend == "local":
        root = _setting(config, "STORAGE_ROOT")
        if root is None:
            raise StorageConfigError("STORAGE_BACKEND=local needs STORAGE_ROOT")
        return LocalStorage(Path(root))
    if backend == "minio":
        required = ("MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_BUCKET")
        values = {name: _setting(config, name) for name in required}
        missing = [name for name, value in values.items() if value is None]
        if missing:
            raise StorageConfigError(f"STORAGE_BACKEND=minio needs {', '.join(missing)}")
        return MinioStorage(
            str(values["MINIO_ENDPOINT"]),
            str(values["MINIO_ACCESS_KEY"]),
            str(values["MINIO_SECRET_KEY"]),
            str(values["MINIO_BUCKET"]),
            secure=_flag(config, "MINIO_SECURE", default=True),
            region=_setting(config, "MINIO_REGION"),
        )
    raise StorageConfigError(
        f"STORAGE_BACKEND must be 'local' or 'minio', got {config.get('STORAGE_BACKEND')!r}"
    )
