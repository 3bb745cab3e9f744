"""A take carrying its plate's colour profile looks the same in every file made from it (docs/review.md, "Colour";
docs/plates.md, "Colour"): the review page's thumbnail, the contact sheet, the animatic movie and the plate job's
``--save-masks`` overlay are converted to sRGB (idcli/display_colour.py), where until 2026-12-02 they showed the
take's Display P3 values as sRGB, a saturated red 30 levels off in a channel next to the image itself. A take without
a profile is used exactly as before."""

from __future__ import annotations

import io
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from colour_profiles import DISPLAY_P3, ONE_PLATE_SHOT, with_float_pipeline
from PIL import Image
from typer.testing import CliRunner

from idcli.cli import app
from idcli.display_colour import to_srgb
from idcli.hashing import sha256_bytes

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
RED_P3 = (220, 30, 40)  # a saturated red of a Display P3 plate: sRGB (241, 0, 12) by LittleCMS


def converted(colour: tuple[int, int, int], profile: bytes = DISPLAY_P3) -> np.ndarray:
    return to_srgb(np.array([[colour]], np.uint8), profile)[0, 0].astype(int)


def distance(pixel: np.ndarray, colour: np.ndarray | tuple[int, int, int]) -> int:
    return int(np.abs(np.asarray(pixel, int)[:3] - np.asarray(colour, int)).max())


@pytest.fixture
def out(review_run: Path, tmp_path: Path) -> Path:
    """The review run with sh020's shown take (take 1) a Display P3 picture: a red field, as a plate take of a P3
    plate is a PNG carrying the plate's profile (iCCP)."""
    target = tmp_path / "out"
    shutil.copytree(review_run, target)
    image = target / "sh020" / "sh020_t1.png"
    with Image.open(image) as take:
        size = take.size
    Image.new("RGB", size, RED_P3).save(image, icc_profile=DISPLAY_P3)
    return target


def test_the_conversion_is_littlecms_to_srgb_and_an_untagged_picture_is_left_as_it_is() -> None:
    assert distance(converted(RED_P3), (241, 0, 12)) == 0  # the shift docs/plates.md measured: 30 in green
    pixels = np.full((2, 2, 4), 200, np.uint8)
    assert to_srgb(pixels, None) is pixels  # no profile: the same values, not a copy through LittleCMS
    assert to_srgb(pixels, b"not a profile" * 20) is pixels  # one LittleCMS refuses: shown as sRGB, as before
    assert (to_srgb(pixels, DISPLAY_P3)[:, :, 3] == 200).all()  # alpha kept


def test_a_profiles_floating_point_pipeline_is_passed_over_as_chromium_passes_it_over() -> None:
    """LittleCMS prefers a profile's floating-point pipeline (ICC v4 D2Bx tags) to its matrix and curves and evaluates
    it element by element as it builds the transform: a take edited outside idcli (or a stray plate) carrying a 524 KB
    profile of 65,535 chained matrices took 120 s a 384-pixel thumbnail (docs/performance.md), and it was read as
    Chromium (skcms), which never reads those tags, does not read it: here three identity matrices turned Display P3's
    red into (255, 0, 138). The conversion now reads the profile as Chromium does: its matrix and curves."""
    pixels = np.array([[RED_P3, (10, 200, 30)]], np.uint8)
    assert np.array_equal(to_srgb(pixels, with_float_pipeline(DISPLAY_P3, 3)), to_srgb(pixels, DISPLAY_P3))
    assert distance(converted(RED_P3, with_float_pipeline(DISPLAY_P3, 3)), (241, 0, 12)) == 0


def test_reading_a_takes_profile_opens_no_bomb_warning() -> None:
    """A take's profile is read from its header before the hardened reader decodes it, and was read through
    Image.open, whose decompression-bomb check warns past 89 million pixels: a 95-megapixel PNG of 92 KB at a take's
    place (a stray, an edit) printed Pillow's ``DecompressionBombWarning`` with its source path under ``idcli review``,
    ahead of the hardened reader's own refusal, which opens images without that check so as never to warn
    (idcli/identity/images.py). The profile is read the hardened reader's way now."""
    from idcli.display_colour import file_rgb_profile

    buffer = io.BytesIO()
    Image.new("L", (10_000, 9_500)).save(buffer, format="PNG")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert file_rgb_profile(buffer.getvalue()) is None
    assert [str(w.message) for w in caught] == []
    tagged = io.BytesIO()
    Image.new("RGB", (8, 8), RED_P3).save(tagged, format="PNG", icc_profile=DISPLAY_P3)
    assert file_rgb_profile(tagged.getvalue()) == DISPLAY_P3


def test_a_tagged_takes_thumbnail_and_contact_sheet_cell_are_converted_and_untagged_ones_unchanged(out: Path) -> None:
    result = CliRunner().invoke(app, ["review", str(out)])
    assert result.exit_code == 0, result.output
    thumbs = out / "review" / "thumbs"
    (tagged,) = thumbs.glob("sh020_t1-*.jpg")
    with Image.open(tagged) as thumb:
        assert "icc_profile" not in thumb.info  # shown as sRGB, which it now is
        middle = np.asarray(thumb.convert("RGB"))[thumb.height // 2, thumb.width // 2]
    assert distance(middle, converted(RED_P3)) <= 3, middle  # JPEG's error on a flat field; raw red is 30 off
    assert distance(middle, RED_P3) > 20

    # The contact sheet (drawn from the thumbnails) shows the converted red in sh020's cell (the second of four).
    with Image.open(out / "review" / "contact-sheet.png") as sheet:
        pixels = np.asarray(sheet.convert("RGB"))
    cell_x = 8 + (256 + 8) + 128
    column = pixels[8:8 + 256, cell_x]
    reds = [p for p in column if distance(p, converted(RED_P3)) <= 3]
    assert len(reds) > 100 and not any(distance(p, RED_P3) <= 3 for p in column)

    # A take without a profile: named by its bytes alone, and the thumbnail the plain resize and JPEG it always was.
    image = out / "sh010" / "sh010_t1.png"
    data = image.read_bytes()
    plain = thumbs / f"sh010_t1-{sha256_bytes(data)[:12]}.jpg"
    with Image.open(image) as take:
        expected = take.convert("RGB")
    expected.thumbnail((384, 384 * 4))
    buffer = io.BytesIO()
    expected.save(buffer, format="JPEG", quality=85)
    assert plain.read_bytes() == buffer.getvalue()


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_in_chromium_the_thumbnail_looks_as_the_image_does(out: Path, tmp_path: Path) -> None:
    """What the director sees: Chromium colour-manages the take's PNG (iCCP) and takes the untagged thumbnail as sRGB;
    on an sRGB screen the two now show one red, where the thumbnail was 30 levels off."""
    assert CHROMIUM is not None
    assert CliRunner().invoke(app, ["review", str(out)]).exit_code == 0
    (thumb,) = (out / "review" / "thumbs").glob("sh020_t1-*.jpg")
    page = tmp_path / "side-by-side.html"
    page.write_text('<html><body style="margin:0;background:#000;display:flex">'
                    f'<img src="{(out / "sh020" / "sh020_t1.png").as_uri()}" width="200" height="200">'
                    f'<img src="{thumb.as_uri()}" width="200" height="200"></body></html>', "utf-8")
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}",
         "--force-color-profile=srgb", "--virtual-time-budget=5000", "--window-size=500,300", f"--screenshot={shot}",
         page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as screen:
        pixels = np.asarray(screen.convert("RGB"))
    image, thumbnail = pixels[100, 100], pixels[100, 300]
    assert distance(image, converted(RED_P3)) <= 2, image  # Chromium converts the tagged PNG as LittleCMS does
    assert distance(thumbnail, image) <= 4, (thumbnail, image)


def test_a_thumbnail_made_before_takes_were_converted_is_made_again(out: Path) -> None:
    """A tagged take's thumbnail made by 2026-12-01's code (named by the image's bytes, unconverted) would have been
    reused as it was: a tagged take's thumbnail is named apart, so it is made again and the old one removed."""
    data = (out / "sh020" / "sh020_t1.png").read_bytes()
    stale = out / "review" / "thumbs" / f"sh020_t1-{sha256_bytes(data)[:12]}.jpg"
    stale.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (256, 256), RED_P3).save(stale, format="JPEG", quality=85)
    result = CliRunner().invoke(app, ["review", str(out)])
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    (thumb,) = (out / "review" / "thumbs").glob("sh020_t1-*.jpg")
    with Image.open(thumb) as made:
        assert distance(np.asarray(made.convert("RGB"))[5, 5], converted(RED_P3)) <= 3


def test_the_animatic_movie_shows_a_tagged_take_converted(out: Path, tmp_path: Path) -> None:
    av = pytest.importorskip("av", exc_type=ImportError)
    from av.video.reformatter import ColorRange, Colorspace

    target = tmp_path / "animatic.mp4"
    result = CliRunner().invoke(app, ["export", str(out), "--movie", str(target), "--fps", "25"])
    assert result.exit_code == 0, result.output
    with av.open(str(target)) as container:
        frames = [frame.reformat(format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=ColorRange.MPEG,
                                 dst_color_range=ColorRange.JPEG).to_ndarray()
                  for frame in container.decode(container.streams.video[0])]
    middle = frames[50 + 10][128, 256]  # sh020 starts at frame 50 (sh010's 2 seconds), letterboxed at the centre
    assert distance(middle, converted(RED_P3)) <= 6, middle  # yuv420p's rounding on a flat field
    assert distance(middle, RED_P3) > 20


def test_a_plate_jobs_mask_overlay_is_converted_and_an_untagged_one_is_unchanged() -> None:
    from idcli.masks import plate_mask_png

    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:] = RED_P3
    mask = np.zeros((64, 64), np.float32)
    faces = [{"character": "mara", "box": [40, 40, 16, 16]}]
    with Image.open(io.BytesIO(plate_mask_png(pixels, mask, faces, DISPLAY_P3))) as overlay:
        assert "icc_profile" not in overlay.info
        assert distance(np.asarray(overlay)[5, 5], converted(RED_P3)) == 0  # outside the mask: the take, in sRGB
    with Image.open(io.BytesIO(plate_mask_png(pixels, mask, faces))) as overlay:
        assert np.asarray(overlay)[5, 5].tolist() == list(RED_P3)  # no profile: the values as they are




def test_a_rendered_p3_plate_takes_save_masks_overlay_is_in_srgb(write_shotlist, tmp_path: Path,
                                                                 engine_factory) -> None:
    """The render passes the plate's profile to the overlay (idcli/executors/output.py): its pixels far from the
    faces are the image's converted, where before they were the image's values, untagged."""
    import idcli

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "plates" / "two_people.png"
    with Image.open(recipe) as source:
        plate = source.convert("RGB")
    plate.paste(RED_P3, (0, 0, plate.width, 12))  # a red band along the top, far from the faces
    plate.save(tmp_path / "plate.png", icc_profile=DISPLAY_P3)
    out = tmp_path / "out"
    shots = write_shotlist(ONE_PLATE_SHOT.replace("PLATE", "plate.png"))
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", engine_factory=engine_factory, save_masks=True)
    assert (report.rendered, report.failed) == (1, 0)
    import json

    record = json.loads((out / "shot" / "shot_t1.json").read_text("utf-8"))
    with Image.open(out / record["plate"]["mask"]) as overlay:
        assert "icc_profile" not in overlay.info
        band = np.asarray(overlay.convert("RGB"))[5, plate.width // 2]
    assert distance(band, converted(RED_P3)) == 0 and distance(band, RED_P3) > 20
