"""The artifact store on S3 (or any S3-compatible server): ``s3://bucket/prefix``.

Layout under ``prefix``::

    files/<run id>/<name>                  a file as one object (uploads, compacted files)
    parts/<run id>/<name>/<offset:020d>    pieces appended to a growing file

S3 objects are immutable, so :meth:`S3ArtifactStore.append` stores each appended piece as
an object of its own, named by the byte offset where it starts. The logical file is the
base object ``files/...`` (when there is one) followed by the chain of pieces that starts
where the base ends: the piece at offset ``len(base)``, then the one at the end of that,
and so on. Pieces outside the chain (left over from a compaction or a replacement) are
ignored and cleaned up by the next append. So:

- ``size`` and ``list`` cost one HEAD and/or one LIST (no object is read), and show the
  logical file with its logical size;
- ``read(offset, length)`` is one ranged GET per object the range touches (a follower that
  reads the bytes new since its last pass usually touches one or two pieces);
- ``append`` at the end is one PUT; a retry at an older offset rewrites the piece that
  offset falls in (or the base) and drops the pieces after it;
- when more than :data:`MAX_SMALL_PARTS` pieces smaller than :data:`SMALL_PART_BYTES`
  trail the file, the newest of them are merged into one piece, size-tiered (a piece is
  merged again only with at least as many newer bytes), so the number of pieces stays
  bounded by the file's size over ``SMALL_PART_BYTES`` plus ``MAX_SMALL_PARTS``, each
  byte is rewritten a logarithmic number of times, and no merge rewrites big data;
- :meth:`S3ArtifactStore.compact` turns a file into one object again (streamed, multipart).

Every replacement (a merged piece, a compacted base) keeps the bytes already there, so a
reader in the middle of a pass never sees bytes change; a piece that disappears under a
reader makes it read again. One writer per file at a time is assumed (a job's supervisor
is the only writer of its ``logs/`` and driver log).

Endpoint and credentials come from the standard places:

- ``RUNHISTORY_S3_ENDPOINT_URL``, else ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``:
  the server's URL for S3-compatible servers (SeaweedFS, MinIO, ...); AWS when none is set;
- ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``), or
  ``AWS_PROFILE`` and ``~/.aws/credentials``, or an instance role: botocore's usual chain;
- ``AWS_DEFAULT_REGION`` / ``AWS_REGION`` for the region.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from types import ModuleType
from typing import TYPE_CHECKING, BinaryIO, Iterator

from runhistory.artifacts.base import (
    ArtifactStore,
    file_conflict,
    folder_conflict,
    validate_artifact_name,
    validate_prefix,
    validate_range,
    validate_run_folder,
)
from runhistory.core import extras, settings
from runhistory.core.errors import ArtifactNotFoundError, ArtifactPathError, RunHistoryError, StoreUnavailableError

if TYPE_CHECKING:
    import s3fs

ENV_ENDPOINT_URLS = (settings.S3_ENDPOINT_URL.name, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_AWS_ENDPOINT_URLS = ENV_ENDPOINT_URLS[1:]  # botocore's own variables, read as it reads them
_FEATURE = "an s3:// artifact store"
SMALL_PART_BYTES = 4 * 1024 * 1024
MAX_SMALL_PARTS = 32
UPLOAD_BLOCK_BYTES = 8 * 1024 * 1024  # multipart above this, in parts of this size
COPY_CHUNK_BYTES = 4 * 1024 * 1024
_OFFSET_DIGITS = 20
MAX_KEY_BYTES = 1024  # S3's limit on an object's key
_MAX_KNOWN_FOLDERS = 100_000
_READ_ATTEMPTS = 4


class S3AccessError(StoreUnavailableError, PermissionError):
    """The S3 server refused the credentials, or the bucket does not exist. Unavailable, not
    refused for good: a server answers 503, so its clients keep spooled files until it is fixed."""


class _Piece:
    """One object of a logical file: where it starts in the file, its size, its key."""

    __slots__ = ("start", "size", "key")

    def __init__(self, start: int, size: int, key: str) -> None:
        self.start, self.size, self.key = start, size, key

    @property
    def end(self) -> int:
        return self.start + self.size


class _Layout:
    """A logical file: its base object (if any) and the chain of appended pieces after it."""

    def __init__(self, base: _Piece | None, parts: dict[int, _Piece]) -> None:
        self.base = base
        self.chain: list[_Piece] = []
        position = base.size if base else 0
        while position in parts and parts[position].size > 0:
            piece = parts[position]
            self.chain.append(piece)
            position = piece.end
        self.size = position
        self.exists = base is not None or bool(self.chain)
        chained = {id(piece) for piece in self.chain}
        self.garbage = [piece.key for piece in parts.values() if id(piece) not in chained]

    @property
    def pieces(self) -> list[_Piece]:
        return ([self.base] if self.base else []) + self.chain


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (the prefix without slashes at its ends)."""
    if not uri.startswith("s3://"):
        raise RunHistoryError(f"Artifact URI {uri!r} is not an s3://bucket/prefix URI.")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise RunHistoryError(f"Artifact URI {uri!r} names no bucket; use s3://bucket/prefix.")
    return bucket, prefix.strip("/")


def endpoint_url_from_env() -> str | None:
    """The S3 endpoint named by the environment (``RUNHISTORY_S3_ENDPOINT_URL``, else botocore's
    own ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``), or None (AWS)."""
    if settings.S3_ENDPOINT_URL.is_set():
        return settings.S3_ENDPOINT_URL.text()
    for name in _AWS_ENDPOINT_URLS:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _s3fs() -> ModuleType:
    """The s3fs module, or :class:`~runhistory.core.errors.MissingExtraError` naming ``runhistory[s3]``."""
    return extras.require("s3fs", extra="s3", feature=_FEATURE)


def _check_s3fs_installed() -> None:
    """Refuse an s3:// store at once when s3fs is missing, without paying for its import yet
    (a job's supervisor opens its store while it starts the run)."""
    if importlib.util.find_spec("s3fs") is None:
        _s3fs()


class S3ArtifactStore(ArtifactStore):
    """Files of each run under ``s3://bucket/prefix``, appendable through pieces (see the module)."""

    def __init__(self, uri: str, endpoint_url: str | None = None, **storage_options: object) -> None:
        self.bucket, self.prefix = parse_s3_uri(uri)
        _check_s3fs_installed()
        self.uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.endpoint_url = endpoint_url or endpoint_url_from_env()
        self._options = storage_options
        self._root = f"{self.prefix}/" if self.prefix else ""
        self._fs: s3fs.S3FileSystem | None = None
        self._fs_pid = 0
        self._fs_lock = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._folders: set[tuple[str, str]] = set()  # (run, folder) seen holding files: files are never deleted

    # -- plumbing -------------------------------------------------------------------------

    @property
    def fs(self) -> "s3fs.S3FileSystem":
        """The S3 filesystem of this process (a forked child makes its own)."""
        with self._fs_lock:
            if self._fs is None or self._fs_pid != os.getpid():
                s3fs = _s3fs()

                options: dict[str, object] = {"skip_instance_cache": True, "use_listings_cache": False}
                if self.endpoint_url:
                    options["endpoint_url"] = self.endpoint_url
                options.update(self._options)
                self._fs = s3fs.S3FileSystem(**options)
                self._fs_pid = os.getpid()
            return self._fs

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Clear errors for missing or refused credentials, missing buckets and an unreachable
        endpoint (:class:`StoreUnavailableError`: worth retrying); other errors as they are."""
        import botocore.exceptions  # comes with the [s3] extra's s3fs, which the store checked for; slow to import

        where = f"s3://{self.bucket} at {self.endpoint_url or 'AWS'}"
        try:
            yield
        except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError) as exc:
            raise S3AccessError(
                f"Cannot {action} in {where}: {exc}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                f"(or AWS_PROFILE) where runhistory runs."
            ) from exc
        except botocore.exceptions.ConnectionError as exc:
            raise StoreUnavailableError(f"Cannot {action} in {where}: the endpoint cannot be reached ({exc}).") from exc
        except PermissionError as exc:
            raise S3AccessError(
                f"S3 refused to {action} in {where}: {exc} Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                f"(and RUNHISTORY_S3_ENDPOINT_URL for a server other than AWS)."
            ) from exc
        except FileNotFoundError as exc:
            if "bucket" in str(exc).lower():
                raise S3AccessError(f"Cannot {action} in {where}: the bucket does not exist ({exc}).") from exc
            raise

    def _call(self, method: str, **kwargs: object) -> dict:
        with self._errors(method.replace("_", " ")):
            return self.fs.call_s3(method, Bucket=self.bucket, **kwargs)

    def _lock(self, run_id: str, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault((run_id, name), threading.Lock())

    def _names(self, run_id: str, name: str) -> tuple[str, str]:
        run = validate_run_folder(run_id)
        name = validate_artifact_name(name, run_id)
        key_bytes = len(self._part_key(run, name, 0).encode("utf-8"))
        if key_bytes > MAX_KEY_BYTES:
            room = MAX_KEY_BYTES - (key_bytes - len(name.encode("utf-8")))
            raise ArtifactPathError(
                f"File name {name[:60]!r} of run {run_id} is too long for {self.uri}: S3 keys hold at most "
                f"{MAX_KEY_BYTES} bytes, which leaves {max(room, 0)} bytes (UTF-8) for a file name of this run."
            )
        return run, name

    def _is_file(self, run: str, name: str) -> bool:
        """Whether ``name`` is a file: it has a base object, or a chain of pieces (which starts at 0)."""
        if self._head(self._base_key(run, name)) is not None:
            return True
        return bool(self._head(self._part_key(run, name, 0)))

    def _under(self, run: str, name: str) -> tuple[str | None, list[str]]:
        """The name of one file under the folder ``name`` (None when there is no such folder),
        and the keys of the pieces appended to the file ``name`` itself: two LISTs."""
        files_root = f"{self._root}files/{run}/"
        page = self._call("list_objects_v2", Prefix=f"{files_root}{name}/", MaxKeys=1)
        if page.get("Contents"):
            return page["Contents"][0]["Key"][len(files_root) :], []
        parts_root = f"{self._root}parts/{run}/"
        folder = f"{parts_root}{name}/"
        pieces: list[str] = []
        kwargs: dict[str, object] = {"Prefix": folder, "Delimiter": "/"}
        while True:  # direct objects are pieces of `name` itself; a sub-prefix holds a file under it
            page = self._call("list_objects_v2", **kwargs)
            for sub in page.get("CommonPrefixes", []):
                for key, _size in self._list_objects(sub["Prefix"]):
                    return key[len(parts_root) :].rpartition("/")[0], []
            pieces += [item["Key"] for item in page.get("Contents", []) if _offset_of(item["Key"][len(folder) :]) is not None]
            if not page.get("IsTruncated"):
                return None, pieces
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _check_new_name(self, run_id: str, run: str, name: str) -> list[str]:
        """Refuse a name that collides with a file or folder of the run (S3 itself would keep both);
        returns the keys of the pieces of ``name`` (what replacing the file drops)."""
        inside, pieces = self._under(run, name)
        if inside is not None:
            raise folder_conflict(name, run_id, inside)
        parts = name.split("/")
        ancestors = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
        for ancestor in ancestors:
            if (run, ancestor) not in self._folders and self._is_file(run, ancestor):
                raise file_conflict(name, run_id, ancestor)
        if len(self._folders) > _MAX_KNOWN_FOLDERS:
            self._folders.clear()
        self._folders.update((run, ancestor) for ancestor in ancestors)
        self._folders.discard((run, name))  # it is about to be a file (an upload under it that failed left it empty)
        return pieces

    def _base_key(self, run: str, name: str) -> str:
        return f"{self._root}files/{run}/{name}"

    def _part_key(self, run: str, name: str, offset: int) -> str:
        return f"{self._root}parts/{run}/{name}/{offset:0{_OFFSET_DIGITS}d}"

    def _list_objects(self, prefix: str, delimiter: str | None = None) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of the objects whose keys start with ``prefix``."""
        kwargs: dict[str, object] = {"Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        while True:
            page = self._call("list_objects_v2", **kwargs)
            for item in page.get("Contents", []):
                yield item["Key"], int(item["Size"])
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _head(self, key: str) -> int | None:
        try:
            return int(self._call("head_object", Key=key)["ContentLength"])
        except FileNotFoundError:
            return None

    def _layout(self, run: str, name: str) -> _Layout:
        # Pieces first, then the base: a compaction writes the base before it deletes the
        # pieces, so whatever it is in the middle of, this sees the whole file.
        parts: dict[int, _Piece] = {}
        folder = self._part_key(run, name, 0)[: -_OFFSET_DIGITS]
        for key, size in self._list_objects(folder, delimiter="/"):
            offset = _offset_of(key[len(folder) :])
            if offset is not None:
                parts[offset] = _Piece(offset, size, key)
        base_key = self._base_key(run, name)
        base_size = self._head(base_key)
        return _Layout(_Piece(0, base_size, base_key) if base_size is not None else None, parts)

    def _get(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of one object."""
        if end <= start:
            return b""
        with self._errors("get object"):
            return self.fs.cat_file(f"{self.bucket}/{key}", start=start, end=end)

    def _put(self, key: str, data: bytes) -> None:
        self._call("put_object", Key=key, Body=data)

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            self._call("delete_objects", Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})

    def _read_range(self, pieces: list[_Piece], offset: int, end: int) -> bytes:
        chunks = []
        for piece in pieces:
            if piece.end <= offset or piece.start >= end:
                continue
            start = max(offset, piece.start)
            stop = min(end, piece.end)
            chunks.append(self._get(piece.key, start - piece.start, stop - piece.start))
        return b"".join(chunks)

    def _stream_into(self, key: str, chunks: Iterator[bytes]) -> int:
        """Write an object from chunks, as a multipart upload once it is big; returns its size."""
        written = 0
        with self._errors("put object"):
            out = self.fs.open(f"{self.bucket}/{key}", "wb", block_size=UPLOAD_BLOCK_BYTES)
            try:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
            except BaseException:
                # Closing would commit what was written so far over the previous object: abort instead.
                with contextlib.suppress(Exception):
                    out.discard()
                out.closed = True
                raise
            out.close()
        return written

    def _not_found(self, run_id: str, name: str) -> ArtifactNotFoundError:
        return ArtifactNotFoundError(f"Run {run_id} has no file {name!r}.")

    # -- the interface ----------------------------------------------------------------------

    def write(self, run_id: str, name: str, source: BinaryIO) -> int:
        run, name = self._names(run_id, name)

        def chunks() -> Iterator[bytes]:
            while chunk := source.read(COPY_CHUNK_BYTES):
                yield chunk

        with self._lock(run, name):
            pieces = self._check_new_name(run_id, run, name)  # listed before: one writer per file
            size = self._stream_into(self._base_key(run, name), chunks())
            self._delete(pieces)
        return size

    def append(self, run_id: str, name: str, data: bytes, offset: int | None = None) -> int:
        run, name = self._names(run_id, name)
        if offset is not None:
            validate_range(offset, None, name, run_id)
        data = bytes(data)
        with self._lock(run, name):
            layout = self._layout(run, name)
            if not layout.exists:
                self._check_new_name(run_id, run, name)
            end = layout.size
            if offset is None:
                offset = end
            if offset > end or offset < 0:
                raise ArtifactPathError(f"Cannot append {name!r} of run {run_id} at {offset}: it has {end} bytes.")
            if offset == end:
                key = self._part_key(run, name, offset)
                if data:
                    self._put(key, data)
                    layout.chain.append(_Piece(offset, len(data), key))
                elif not layout.exists:
                    self._put(self._base_key(run, name), b"")
                self._delete([other for other in layout.garbage if other != key or not data])
                self._merge_small_tail(run, name, layout.chain)
                return end + len(data)
            self._rewrite_from(run, name, layout, offset, data)
            return offset + len(data)

    def _rewrite_from(self, run: str, name: str, layout: _Layout, offset: int, data: bytes) -> None:
        """Truncate the file at ``offset`` (inside it) and append ``data`` there."""
        if layout.base is not None and offset < layout.base.size:
            base = layout.base

            def chunks() -> Iterator[bytes]:
                for start in range(0, offset, COPY_CHUNK_BYTES):
                    yield self._get(base.key, start, min(offset, start + COPY_CHUNK_BYTES))
                if data:
                    yield data

            self._stream_into(base.key, chunks())
            self._delete([piece.key for piece in layout.chain] + layout.garbage)
            return
        piece = next(piece for piece in layout.chain if piece.start <= offset < piece.end)
        content = self._get(piece.key, 0, offset - piece.start) + data
        later = [other.key for other in layout.chain if other.start > piece.start]
        if content:
            self._put(piece.key, content)
        else:
            later.append(piece.key)
        self._delete(later + layout.garbage)

    def _merge_small_tail(self, run: str, name: str, chain: list[_Piece]) -> None:
        """Merge the small pieces at the end of the file into one when there are too many."""
        tail: list[_Piece] = []
        for piece in reversed(chain):
            if piece.size >= SMALL_PART_BYTES:
                break
            tail.insert(0, piece)
        if len(tail) <= MAX_SMALL_PARTS:
            return
        # Merge the newest pieces, reaching back over older ones only while they are no bigger
        # than what is merged with them: each byte is rewritten a logarithmic number of times.
        group = [tail[-1]]
        total = tail[-1].size
        for piece in reversed(tail[:-1]):
            if len(group) >= 2 and piece.size > total:
                break
            group.insert(0, piece)
            total += piece.size
        merged = self._read_range(group, group[0].start, group[-1].end)
        self._put(group[0].key, merged)
        self._delete([piece.key for piece in group[1:]])

    def compact(self, run_id: str, name: str) -> int:
        """Turn a file made of appended pieces into one object again; returns its size."""
        run, name = self._names(run_id, name)
        with self._lock(run, name):
            layout = self._layout(run, name)
            if not layout.exists:
                raise self._not_found(run_id, name)
            if layout.chain:
                pieces = layout.pieces

                def chunks() -> Iterator[bytes]:
                    for piece in pieces:
                        for start in range(0, piece.size, COPY_CHUNK_BYTES):
                            yield self._get(piece.key, start, min(piece.size, start + COPY_CHUNK_BYTES))

                self._stream_into(self._base_key(run, name), chunks())
            self._delete([piece.key for piece in layout.chain] + layout.garbage)
            return layout.size

    def verify(self) -> None:
        """Raise a clear error unless the bucket can be listed with the credentials at hand."""
        with self._errors("list the runs' files"):
            self.fs.call_s3("list_objects_v2", Bucket=self.bucket, Prefix=self._root, MaxKeys=1)

    def seal(self, run_id: str) -> int:
        """Compact every file of the run that was appended to (a job's logs), one object each."""
        parts_root = f"{self._root}parts/{validate_run_folder(run_id)}/"
        appended = {key[len(parts_root) :].rpartition("/")[0] for key, _size in self._list_objects(parts_root)}
        for name in sorted(appended):
            with contextlib.suppress(ArtifactNotFoundError):  # only leftover pieces: nothing to compact
                self.compact(run_id, name)
        return len(appended)

    def read(self, run_id: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        run, name = self._names(run_id, name)
        validate_range(offset, length, name, run_id)
        for attempt in range(_READ_ATTEMPTS):
            layout = self._layout(run, name)
            if not layout.exists:
                raise self._not_found(run_id, name)
            end = layout.size if length is None else min(layout.size, offset + length)
            try:
                return self._read_range(layout.pieces, offset, end)
            except FileNotFoundError:  # a piece merged or compacted away under us: look again
                if attempt == _READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def list(self, run_id: str, prefix: str = "") -> dict[str, int]:
        run = validate_run_folder(run_id)
        validate_prefix(prefix, run_id)
        files_root = f"{self._root}files/{run}/"
        parts_root = f"{self._root}parts/{run}/"
        parts: dict[str, dict[int, _Piece]] = {}
        for key, size in self._list_objects(parts_root + prefix):  # pieces first, as in _layout
            file_name, _, leaf = key[len(parts_root) :].rpartition("/")
            offset = _offset_of(leaf)
            if offset is not None and file_name.startswith(prefix):
                parts.setdefault(file_name, {})[offset] = _Piece(offset, size, key)
        bases = {key[len(files_root) :]: size for key, size in self._list_objects(files_root + prefix)}
        found = {}
        for file_name in set(bases) | set(parts):
            base = bases.get(file_name)
            layout = _Layout(_Piece(0, base, "") if base is not None else None, parts.get(file_name, {}))
            if layout.exists:
                found[file_name] = layout.size
        return dict(sorted(found.items()))

    def size(self, run_id: str, name: str) -> int | None:
        run, name = self._names(run_id, name)
        layout = self._layout(run, name)
        return layout.size if layout.exists else None


def _offset_of(leaf: str) -> int | None:
    """The offset a piece's last key segment names, or None when it is no piece."""
    return int(leaf) if len(leaf) == _OFFSET_DIGITS and leaf.isdigit() else None
