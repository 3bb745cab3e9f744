"""``idcli review OUT --to DIR`` (docs/review.md, "Reviewing a folder you can only read"): a director reaching the
renders through a read-only share writes the page into a folder of her own; OUT is only read. On the review tests'
run (a two-shot, a close-up of mara, a shot with no one), copied."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from browser_pipe import CHROMIUM, Browser
from review_helpers import cli

pytest.importorskip("insightface", exc_type=ImportError)
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")


@pytest.fixture
def out(review_run: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "renders on the nas"  # a space, as a share's name often has
    shutil.copytree(review_run, folder)
    return folder


def walk(folder: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every entry under ``folder``: its mode, its mtime in ns, and a file's bytes (links not followed)."""
    found: dict[str, tuple[int, int, bytes | None]] = {}
    for parent, folders, files in os.walk(folder):
        for name in [*folders, *files]:
            path = Path(parent) / name
            facts = path.lstat()
            data = path.read_bytes() if path.is_file() and not path.is_symlink() else None
            found[str(path.relative_to(folder))] = (facts.st_mode, facts.st_mtime_ns, data)
    facts = folder.stat()
    found["."] = (facts.st_mode, facts.st_mtime_ns, None)
    return found


def test_the_page_goes_into_dir_and_nothing_into_out(out: Path, tmp_path: Path) -> None:
    before = walk(out)
    to = tmp_path / "my review"
    result = cli("review", out, "--to", to, "--json")
    assert result.exit_code == 0, result.output
    assert walk(out) == before  # no review/, no lock, no thumbnail, no timestamp: byte for byte, mtimes too
    assert not (out / "review").exists()
    document = json.loads(result.stdout)
    assert document["page"] == {"path": str(to / "index.html"), "abs_path": str((to / "index.html").resolve())}
    assert document["review_dir"] == {"path": str(to), "abs_path": str(to.resolve())}
    assert document["out_dir"] == str(out.resolve())
    assert [s["path"] for s in document["contact_sheets"]] == [str(to / "contact-sheet.png")]
    assert sorted(p.name for p in to.iterdir()) == ["contact-sheet.png", "index.html", "thumbs"]
    assert len(list((to / "thumbs").iterdir())) == document["counts"]["thumbnails_made"] == 6
    page = (to / "index.html").read_text(encoding="utf-8")
    # the links lead back into OUT, relative (a file:// page follows them), its space quoted
    assert 'href="../renders%20on%20the%20nas/sh010/' in page and 'href="../sh010/' not in page
    # the page says which folder it reviews, and the picks' command names it (she sends picks.json to the artist)
    assert f"Reviews the output folder <code>{out.resolve()}</code>" in page
    assert f"idcli select &#x27;{out.resolve()}&#x27; --from picks.json" in page


def test_a_second_run_reuses_the_thumbnails_and_a_new_one_for_a_changed_image(out: Path, tmp_path: Path) -> None:
    to = tmp_path / "review"
    assert cli("review", out, "--to", to).exit_code == 0
    thumbs = {p.name: p.stat().st_mtime_ns for p in (to / "thumbs").iterdir()}
    again = cli("review", out, "--to", to, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["counts"]["thumbnails_made"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in (to / "thumbs").iterdir()} == thumbs


def test_a_dir_holding_a_strangers_file_is_refused_with_nothing_deleted(out: Path, tmp_path: Path) -> None:
    to = tmp_path / "downloads"
    to.mkdir()
    (to / "budget.xlsx").write_bytes(b"hers")
    (to / "thumbs").mkdir()
    (to / "thumbs" / "holiday.jpg").write_bytes(b"hers too")
    before = walk(to)
    result = cli("review", out, "--to", to)
    assert result.exit_code == 2, result.output
    assert "holds files idcli did not write there (budget.xlsx, thumbs/holiday.jpg)" in result.stderr
    assert walk(to) == before
    assert "Traceback" not in result.output


def test_dir_inside_out_is_refused_naming_the_default(out: Path) -> None:
    before = walk(out)
    result = cli("review", out, "--to", out / "elsewhere")
    assert result.exit_code == 2, result.output
    assert "lies inside the output folder" in result.stderr and "idcli review" in result.stderr
    assert walk(out) == before


def test_an_unwritable_out_names_the_way_out(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The words of exit 5 as any refusal gives them (a folder whose mode shuts her out; a share, below)."""
    import errno

    from idcli import store

    def refused(final: Path, data: bytes, **kwargs: object) -> None:
        raise store.write_error(final, OSError(errno.EACCES, os.strerror(errno.EACCES), str(final)))

    monkeypatch.setattr(store, "atomic_write", refused)
    result = cli("review", out)
    assert result.exit_code == 5, result.output
    assert (f"or write the page elsewhere: idcli review '{out}' --to '~/review-renders on the nas'"
            not in result.stderr)  # the ~ outside the quotes, or the shell never reads it as her home
    assert f"or write the page elsewhere: idcli review '{out}' --to ~/'review-renders on the nas'" in result.stderr


def _mounted_read_only(source: Path, target: Path) -> bool:
    """``source`` seen read-only at ``target`` (a share exported read-only), where this test may mount."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    target.mkdir()
    done = subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        return False
    try:
        (target / ".probe").touch()
    except OSError:
        return True
    (target / ".probe").unlink()  # an old kernel bound it writable: not the case this test is about
    subprocess.run(["umount", str(target)], check=False)
    return False


def test_a_read_only_share_gets_the_way_out_and_then_the_page(out: Path, tmp_path: Path) -> None:
    share = tmp_path / "share"
    if not _mounted_read_only(out, share):
        pytest.skip("cannot bind-mount a folder read-only here (needs root and mount)")
    try:
        before = walk(share)
        refused = cli("review", share)
        assert refused.exit_code == 5, refused.output
        assert f"output folder {share} is not writable" in refused.stderr
        assert f"or write the page elsewhere: idcli review {share} --to ~/review-share" in refused.stderr
        written = cli("review", share, "--to", tmp_path / "page")
        assert written.exit_code == 0, written.output
        assert walk(share) == before
    finally:
        subprocess.run(["umount", str(share)], check=False)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_every_image_of_a_page_written_elsewhere_loads_from_dir(out: Path, tmp_path: Path) -> None:
    to = tmp_path / "page elsewhere"
    assert cli("review", out, "--to", to).exit_code == 0
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        browser.open((to / "index.html").as_uri())
        count = browser.js("document.images.length")
        assert count >= 6  # the thumbnails, and the mask strips from OUT
        for i in range(count):  # each scrolled to (the other takes' load lazily), then waited for
            browser.js(f"document.images[{i}].scrollIntoView()")
            browser.wait_until(f"document.images[{i}].complete && document.images[{i}].naturalWidth > 0", True,
                               f"image {i} loaded")
        # the full images in OUT, tried by the page itself: were they not found, it would say it was sent alone
        assert browser.js("document.querySelectorAll('.sent-alone').length") == 0
        assert browser.js("document.querySelectorAll('main a.thumb[href^=\"../\"]').length") == 6
        assert browser.problems() == []


def test_folders_not_named_in_utf8_get_a_page_linked_by_their_bytes(out: Path, tmp_path: Path) -> None:
    """A Latin-1 share (``caf\\xe9``): `review` and `review --to` ended in an internal error (UnicodeEncodeError
    while the page's key and links were made)."""
    latin = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9"))
    out.rename(latin)
    to = Path(os.fsdecode(bytes(tmp_path) + b"/p\xe9ge"))
    result = cli("review", latin, "--to", to)
    assert result.exit_code == 0, result.output
    page = (to / "index.html").read_text(encoding="utf-8")
    assert 'href="../caf%E9/sh010/sh010_t1.png"' in page
    assert "Reviews the output folder <code>" in page and "caf\\xe9</code>" in page
    assert cli("review", latin).exit_code == 0
