"""A run's files for the browser: images shown, text as plain text, everything else downloaded.

Nothing is ever served as HTML or SVG from the UI's origin (a stored file must not run script
there): the content type is chosen from a short list by the name's extension, never sniffed or
taken from the file, and every answer carries ``nosniff`` and a sandboxing CSP.
"""

from __future__ import annotations

from typing import Iterator
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from runhistory.artifacts.base import ArtifactStore, validate_artifact_name
from runhistory.core import errors
from runhistory.ui.session import Session

router = APIRouter(include_in_schema=False)
CHUNK = 4 << 20
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}
TEXT_SUFFIXES = frozenset(
    ".txt .log .out .err .json .jsonl .csv .tsv .yaml .yml .toml .ini .cfg .md .rst .py .sh .ipynb .xml".split()
)
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def content_type(name: str) -> tuple[str, bool]:
    """The type a file is served with, and whether it is shown inline (else downloaded)."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""
    if suffix in IMAGE_TYPES:
        return IMAGE_TYPES[suffix], True
    if suffix in TEXT_SUFFIXES:
        return "text/plain; charset=utf-8", True
    return "application/octet-stream", False


def chunks(artifacts: ArtifactStore, run_id: str, name: str, size: int) -> Iterator[bytes]:
    """The file's bytes, :data:`CHUNK` at a time."""
    offset = 0
    while offset < size:
        data = artifacts.read(run_id, name, offset, min(CHUNK, size - offset))
        if not data:
            return
        offset += len(data)
        yield data


@router.get("/ui/files/{run_id}/{name:path}")
def run_file(request: Request, run_id: str, name: str, _session: Session) -> Response:
    """One of a run's files, with a safe content type (see the module)."""
    name = validate_artifact_name(name, run_id)
    if request.app.state.store.get_run(run_id) is None:
        raise errors.NotFoundError(f"No run with id {run_id[:100]!r}.")
    artifacts: ArtifactStore = request.app.state.artifacts
    size = artifacts.size(run_id, name)
    if size is None:
        raise errors.ArtifactNotFoundError(f"Run {run_id} has no file {name[:200]!r}.")
    media_type, inline = content_type(name)
    filename = name.rsplit("/", 1)[-1].replace('"', "")
    disposition = "inline" if inline else "attachment"
    headers = {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(filename, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_CSP,
        "Content-Length": str(size),
    }
    return StreamingResponse(chunks(artifacts, run_id, name, size), media_type=media_type, headers=headers)
