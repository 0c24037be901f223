"""The artifact store of a runhistory server, over HTTP: whole-file uploads, appends, ranged reads."""

from __future__ import annotations

from typing import BinaryIO, Iterator
from urllib.parse import quote

from runhistory.artifacts.base import ArtifactStore, validate_artifact_name, validate_prefix, validate_range, validate_run_folder
from runhistory.client.credentials import normalize_server_url
from runhistory.client.http import HttpClient
from runhistory.client.records import quote_part, request_record
from runhistory.client.store import RemoteRunStore

UPLOAD_CHUNK = 1 << 20
READ_CHUNK = 1 << 22


class RemoteArtifactStore(ArtifactStore):
    """Files of runs kept by a runhistory server (which keeps them in its own artifact store).

    Given the run store of the same server (``spool_with``), small uploads (images, notes)
    wait in its spool while the server is away, as metrics do; larger ones retry for
    ``$RUNHISTORY_HTTP_RETRY_TIMEOUT`` seconds, then raise.
    """

    def __init__(self, url: str, token: str | None = None, spool_with: RemoteRunStore | None = None) -> None:
        self.http = HttpClient(url, token)
        self.uri = normalize_server_url(url)
        self._spooler = spool_with if spool_with is not None and spool_with.uri == self.uri else None

    def _path(self, run_id: str, name: str, what: str = "files") -> str:
        run = validate_run_folder(run_id)
        name = validate_artifact_name(name, run_id)
        return f"/runs/{quote_part(run)}/{what}/{quote(name, safe='/')}"

    def write(self, run_id: str, name: str, source: BinaryIO) -> int:
        path = self._path(run_id, name)
        data = source.read(UPLOAD_CHUNK)
        if len(data) < UPLOAD_CHUNK:  # small: one body, which a retry (or the spool) can send again
            if self._spooler is None:
                return self.http.json("PUT", path, content=data)["size"]
            self._spooler.send_or_spool(request_record("PUT", path, content=data))
            return len(data)

        def stream() -> Iterator[bytes]:
            yield data
            while chunk := source.read(UPLOAD_CHUNK):
                yield chunk

        return self.http.json("PUT", path, content=stream(), idempotent=False)["size"]

    def append(self, run_id: str, name: str, data: bytes, offset: int | None = None) -> int:
        path = self._path(run_id, name)
        if offset is not None:
            validate_range(offset, None, name, run_id)
        params = {} if offset is None else {"offset": offset}
        return self.http.json("POST", path, content=data, params=params, idempotent=offset is not None)[
            "size"
        ]

    def read(self, run_id: str, name: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(run_id, name)
        validate_range(offset, length, name, run_id)
        if length is not None:
            return self.http.request("GET", path, params={"offset": offset, "length": length}).content
        parts = []
        while True:
            chunk = self.http.request("GET", path, params={"offset": offset, "length": READ_CHUNK}).content
            parts.append(chunk)
            offset += len(chunk)
            if len(chunk) < READ_CHUNK:
                return b"".join(parts)

    def list(self, run_id: str, prefix: str = "") -> dict[str, int]:
        run = validate_run_folder(run_id)
        validate_prefix(prefix, run_id)
        return self.http.json("GET", f"/runs/{quote_part(run)}/files", params={"prefix": prefix})

    def size(self, run_id: str, name: str) -> int | None:
        return self.http.json("GET", self._path(run_id, name, "file-size"))["size"]

    def seal(self, run_id: str) -> int:
        """Ask the server to seal the run's files (it does so in the background); returns 0."""
        self.http.request("POST", f"/runs/{quote_part(validate_run_folder(run_id))}/seal-files")
        return 0

    def download(self, run_id: str, name: str, destination: BinaryIO, chunk_size: int = READ_CHUNK) -> None:
        super().download(run_id, name, destination, min(chunk_size, READ_CHUNK))

    def after_fork(self) -> None:
        self.http.after_fork()
