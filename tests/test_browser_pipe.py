"""The browser test harness (tests/browser_pipe.py): what a page stored reaches the profile about 1 s after the
write, read back from disk as Chromium wrote it (tests/chromium_storage.py: logs and tables), so a test that
restarts Chromium can wait for it (``wait_for_storage``) and a restart or a crash after that loses nothing; a
Chromium that does not close is killed with its children and said to be.

Chromium commits localStorage to the profile's LevelDB on a timer, after the page writes it; a Chromium killed
before that loses the write without a word. Its clean close usually commits what is left, not always (the
harness's docstring), so the review page's own tests do not restart Chromium at all."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from browser_pipe import CHROMIUM, Browser
from chromium_storage import committed, storage_folder

# A real Chromium: -m browser selects these, -m "not browser" leaves them out (docs/testing.md, "Running the suite").
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")]

BIG = "x" * 40_000  # over one of the log's 32 KiB blocks: a record in fragments (70 kB moved into a table)
WIDE = "picked \u2713t2 \u00e9"  # beyond Latin-1: Chromium stores it as UTF-16


def page(tmp_path: Path) -> str:
    path = tmp_path / "page.html"
    path.write_text("<!doctype html><title>store</title><button id=store>store</button><script>"
                    "document.getElementById('store').addEventListener('click',function(){"
                    f"localStorage.setItem('big','{BIG}');localStorage.setItem('wide','{WIDE}');"
                    "localStorage.setItem('gone','soon');localStorage.removeItem('gone');});</script>", "utf-8")
    return path.as_uri()


def in_group(pgid: int) -> list[int]:
    """The live processes of a process group (zombies not counted)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                found.append(int(entry.name))
    return found


def test_what_the_page_stored_is_on_disk_when_close_returns_and_survives_a_crash(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    with Browser(profile, tmp_path) as browser:
        browser.open(page(tmp_path))
        browser.click("#store")
        browser.wait_for_storage()
        assert committed(profile, "file://") == {"big": BIG, "wide": WIDE}  # the log read as Chromium wrote it
        os.killpg(browser.process.pid, signal.SIGKILL)  # a crash now loses nothing the page stored
        browser.process.wait()
        browser.close(check=False)
    with Browser(profile, tmp_path) as browser:
        browser.open(page(tmp_path))
        assert browser.stored() == ("file://", {"big": BIG, "wide": WIDE})


def test_writes_after_a_sessions_first_commit_reach_the_profile_too(tmp_path: Path) -> None:
    """Each write reaches the profile a moment later, the first of a session and those after it alike (a comment
    here had it that the second was rate-limited), so a test that restarts Chromium can wait for its last write;
    close() does not (the harness's docstring says why)."""
    profile = tmp_path / "profile"
    with Browser(profile, tmp_path) as browser:
        browser.open(page(tmp_path))
        browser.js("localStorage.setItem('first','1'); 1")
        browser.wait_for_storage()
        browser.js("localStorage.setItem('wide','picked t3'); localStorage.setItem('second','2'); 1")
        browser.wait_for_storage()
        assert committed(profile, "file://") == {"first": "1", "wide": "picked t3", "second": "2"}


def test_writes_moved_into_a_table_are_read_under_the_newer_ones_in_the_log(tmp_path: Path) -> None:
    """Past the database's 64 kB write buffer, the next Chromium opening the profile moves the log's records into
    a table (``*.ldb``, Snappy-compressed) and deletes the log. Read from the logs alone, every earlier write then
    looked lost: close() failed "Chromium closed without writing" on a profile holding all of it (two of four
    parallel suite runs, where timing decided how many commits a session made)."""
    profile = tmp_path / "profile"
    with Browser(profile, tmp_path) as browser:
        browser.open(page(tmp_path))
        browser.click("#store")
        browser.js(f"localStorage.setItem('more','{BIG}'); localStorage.setItem('soon gone','1'); 1")
        browser.wait_for_storage()
    with Browser(profile, tmp_path) as browser:  # opening the profile recovers the 80 kB log into a table
        browser.open(page(tmp_path))
        browser.js("localStorage.setItem('wide','picked t4'); localStorage.removeItem('soon gone'); 1")
        browser.wait_for_storage()
    folder = storage_folder(profile)
    tables = list(folder.glob("*.ldb"))
    assert tables, sorted(path.name for path in folder.iterdir())
    logs_only = tmp_path / "logs only"  # the profile as a reader of the logs alone saw it
    shutil.copytree(profile, logs_only)
    for table in storage_folder(logs_only).glob("*.ldb"):
        table.unlink()
    assert committed(logs_only, "file://") == {"wide": "picked t4"}
    assert committed(profile, "file://") == {"big": BIG, "wide": "picked t4", "more": BIG}
    with Browser(profile, tmp_path) as browser:
        browser.open(page(tmp_path))
        assert browser.stored() == ("file://", {"big": BIG, "wide": "picked t4", "more": BIG})


def test_a_write_not_on_disk_in_time_is_named_with_the_folder_read(tmp_path: Path) -> None:
    with Browser(tmp_path / "profile", tmp_path) as browser:
        browser.open(page(tmp_path))
        browser.click("#store")  # committed about 1 s later (5 s without --enable-aggressive-domstorage-flushing)
        with pytest.raises(TimeoutError) as caught:
            browser.wait_for_storage(within=0.2)
        assert str(storage_folder(tmp_path / "profile")) in str(caught.value)
        assert "big, wide" in str(caught.value) and "a restart would lose it" in str(caught.value)


def test_a_chromium_that_does_not_close_is_killed_with_its_children_and_reported(tmp_path: Path) -> None:
    browser = Browser(tmp_path / "profile", tmp_path)
    browser.open(page(tmp_path))
    group = browser.process.pid
    assert len(in_group(group)) > 1  # the browser and its zygotes, renderers, storage and network services
    browser.timeout = 1.0
    os.kill(group, signal.SIGSTOP)  # hung: it neither answers nor exits
    with pytest.raises(RuntimeError, match=r"did not exit in 1 s after Browser\.close and was killed"):
        browser.close()
    assert browser.process.returncode == -signal.SIGKILL
    # nothing of it left holding the profile: SIGKILL reaches every process of the group at once, but a loaded
    # kernel takes a moment to end them all (seen: five still listed right after killpg, none a moment later)
    deadline = time.monotonic() + 20
    while in_group(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_group(group) == []
