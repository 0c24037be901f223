"""A run's files in the browser: safe content types, never HTML or SVG from the UI's origin."""

from __future__ import annotations

import io

import pytest

from runhistory import Experiment, Workspace

from tests.helpers import served
from tests.ui.pages_support import client, ui_app_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def run_with_files(embedded: Workspace) -> str:
    run = Experiment(embedded, "files").start_logging()
    files = {
        "outputs/plot.png": PNG,
        "outputs/notes.txt": b"plain <b>text</b>",
        "outputs/page.html": b"<script>alert(1)</script>",
        "outputs/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        "outputs/model.pkl": b"\x80\x04binary",
    }
    for name, data in files.items():
        embedded.artifacts.write(run.id, name, io.BytesIO(data))
    run.complete()
    return run.id


def test_images_inline_text_as_plain_text_the_rest_downloaded(embedded: Workspace, run_with_files: str) -> None:
    with served(ui_app_for(embedded)) as url, client(url) as http:
        image = http.get(f"/ui/files/{run_with_files}/outputs/plot.png")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png" and image.content == PNG
        assert image.headers["content-disposition"].startswith("inline")
        text = http.get(f"/ui/files/{run_with_files}/outputs/notes.txt")
        assert text.headers["content-type"] == "text/plain; charset=utf-8" and text.text == "plain <b>text</b>"
        for name in ("outputs/page.html", "outputs/logo.svg", "outputs/model.pkl"):
            answer = http.get(f"/ui/files/{run_with_files}/{name}")
            assert answer.status_code == 200, name
            assert answer.headers["content-type"] == "application/octet-stream", name
            assert answer.headers["content-disposition"].startswith("attachment"), name
        for name in ("outputs/plot.png", "outputs/notes.txt", "outputs/page.html"):
            headers = http.get(f"/ui/files/{run_with_files}/{name}").headers
            assert headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in headers["content-security-policy"] and "default-src 'none'" in headers["content-security-policy"]


def test_a_path_escaping_the_run_is_refused(embedded: Workspace, run_with_files: str) -> None:
    with served(ui_app_for(embedded)) as url, client(url) as http:
        for path in ("%2E%2E/%2E%2E/ui.db", "outputs/%2E%2E/%2E%2E/x", "..%2F..%2Fui.db", "%2Fetc%2Fpasswd"):
            answer = http.get(f"/ui/files/{run_with_files}/{path}")
            assert answer.status_code in (400, 404), path
            assert b"SQLite" not in answer.content and b"root:" not in answer.content
        assert http.get(f"/ui/files/{run_with_files}/outputs/missing.txt").status_code == 404
        assert http.get("/ui/files/no-such-run/outputs/notes.txt").status_code == 404
