"""log_image keeps PNG and JPEG images (by their bytes) and refuses anything else at once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from runhistory import Experiment, Run
from runhistory.core.errors import ArtifactNotFoundError, MetricValueError


@pytest.fixture
def run(exp: Experiment) -> Run:
    return exp.start_logging()


def _image_bytes(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(out, format=kind)
    return out.getvalue()


def test_a_png_file_is_kept_as_png(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "digits.png"
    path.write_bytes(_image_bytes("PNG"))
    run.log_image("digits", path=path)
    name = run.get_metrics()["digits"]
    assert name.startswith("images/digits/") and name.endswith(".png")
    assert run.download_file(name, tmp_path / "back.png").read_bytes() == path.read_bytes()


def test_a_jpeg_file_is_kept_as_jpg_whatever_its_name(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"  # a JPEG misnamed: its bytes decide
    path.write_bytes(_image_bytes("JPEG"))
    run.log_image("photo", path=path, step=7)
    series = run.get_metric_series(["photo"])["photo"]
    (name,) = series.values
    assert name.startswith("images/photo/") and name.endswith(".jpg")
    assert series.steps.tolist() == [7]
    assert run.download_file(name, tmp_path / "back.jpg").read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    "content, says",
    [(b"epoch,loss\n1,0.5\n", "neither a PNG nor a JPEG"), (b"", "is empty"), (b"\x89PN", "neither a PNG")],
)
def test_a_file_that_is_no_png_or_jpeg_is_refused_and_nothing_is_stored(
    run: Run, tmp_path: Path, content: bytes, says: str
) -> None:
    path = tmp_path / "not-an-image.png"
    path.write_bytes(content)
    with pytest.raises(MetricValueError, match=says) as raised:
        run.log_image("pic", path=path)
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)
    assert run.get_metrics() == {} and run.get_file_names() == []


def test_a_missing_path_or_a_folder_is_refused_in_one_sentence(run: Run, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        run.log_image("pic", path=tmp_path / "nope.png")
    with pytest.raises(MetricValueError, match="is a folder"):
        run.log_image("pic", path=tmp_path)
    assert run.get_metrics() == {} and run.get_file_names() == []


@pytest.mark.parametrize("plot", ["x", 42, object()])
def test_a_plot_that_is_no_figure_is_refused_in_one_sentence(run: Run, plot: object) -> None:
    with pytest.raises(MetricValueError, match="plot= takes a matplotlib Figure"):
        run.log_image("curve", plot=plot)
    assert run.get_metrics() == {} and run.get_file_names() == []


def test_a_plot_whose_savefig_fails_or_writes_no_png_is_refused(run: Run) -> None:
    class Broken:
        def savefig(self, out, format):
            raise RuntimeError("no renderer")

    class Silent:
        def savefig(self, out, format):
            out.write(b"GIF89a")

    with pytest.raises(MetricValueError, match="saving the plot as PNG failed .RuntimeError: no renderer"):
        run.log_image("curve", plot=Broken())
    with pytest.raises(MetricValueError, match="wrote no PNG"):
        run.log_image("curve", plot=Silent())
    assert run.get_metrics() == {} and run.get_file_names() == []
