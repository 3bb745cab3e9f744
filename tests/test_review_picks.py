"""The director picks takes on the storyboard page: in a real Chromium (keys, mouse, reload, the export's
download), the exported picks.json fed to ``idcli select --from`` and checked as strictly as command-line picks,
the place on the page kept across reloads, the prompt shown once per shot."""

from __future__ import annotations

import io
import json
import os
import pty
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser_pipe import CHROMIUM, Browser
from review_helpers import cli

import idcli

pytest.importorskip("insightface", exc_type=ImportError)
# A real Chromium: -m browser selects these, -m "not browser" leaves them out (docs/testing.md, "Running the suite").
pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")


@pytest.fixture
def out(review_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(review_run, target)
    return target



def job_key(out: Path, stem: str) -> str:
    shot = stem.rsplit("_t", 1)[0]
    return json.loads((out / shot / f"{stem}.json").read_text("utf-8"))["job_key"]


def key(out: Path, stem: str) -> str:
    """The take's key as the page shows it and its picks file carries it: the job key's first 16 hex digits."""
    return job_key(out, stem).split(":", 1)[1][:16]


def picks_file(path: Path, picks: dict, project: str = "review", **fields: object) -> Path:
    """A picks file as the page's "export picks" writes it (the browser test checks the page writes this)."""
    path.write_text(json.dumps({"schema": 1, "kind": "idcli-picks", "project": project, "run": "0" * 20,
                                "exported": "2026-11-30T10:00:00.000Z", "picks": picks, **fields}), "utf-8")
    return path


def selects(out: Path) -> dict:
    path = out / "selects.json"
    return json.loads(path.read_text("utf-8"))["selects"] if path.exists() else {}


# -- idcli select --from ------------------------------------------------------------------------------


def test_select_from_json_reports_the_picks_or_the_refusal_as_one_document(out: Path, tmp_path: Path) -> None:
    exported = picks_file(tmp_path / "picks.json", {"sh010": {"take": 2, "key": key(out, "sh010_t2")},
                                                    "sh020": {"take": 1, "key": key(out, "sh020_t1")}})
    result = cli("select", out, "--from", exported, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["selects"] == selects(out)
    assert {shot: pick["take"] for shot, pick in document["selects"].items()} == {"sh010": 2, "sh020": 1}
    assert document["changed"] == ["sh010=t2 (new)", "sh020=t1 (new)"] and document["notes"] == []
    stale = picks_file(tmp_path / "stale.json", {"sh030": {"take": 1, "key": "0" * 16}})
    refused = cli("select", out, "--from", stale, "--json")
    error = json.loads(refused.stdout)
    assert refused.exit_code == 2 and error["ok"] is False and error["exit_code"] == 2
    assert "re-rendered since the picks were made" in error["error"]["message"]
    damaged = cli("select", out, "--from", picks_file(tmp_path / "bad.json", {"sh010": "two"}), "--json")
    error = json.loads(damaged.stdout)
    assert damaged.exit_code == 2 and error["error"]["type"] == "InputError" and error["error"]["message"]
    assert {shot: pick["take"] for shot, pick in selects(out).items()} == {"sh010": 2, "sh020": 1}  # unchanged


def test_select_from_a_picks_file_records_them_and_keeps_an_unchanged_pick_as_it_was(out: Path, tmp_path: Path
                                                                                     ) -> None:
    assert cli("select", out, "sh030=1").exit_code == 0
    first = selects(out)["sh030"]
    exported = picks_file(tmp_path / "picks.json", {
        "sh010": {"take": 2, "key": key(out, "sh010_t2")},
        "sh030": {"take": 1, "key": key(out, "sh030_t1")}})
    result = cli("select", out, "--from", exported)
    assert result.exit_code == 0, result.output
    assert "sh010=t2" in result.stdout and "sh030=t1" in result.stdout
    assert {shot: pick["take"] for shot, pick in selects(out).items()} == {"sh010": 2, "sh030": 1}
    assert selects(out)["sh010"]["job_key"] == job_key(out, "sh010_t2")
    assert selects(out)["sh030"] == first  # picked again as it was: still when it was first picked
    # take null clears a select; command-line picks given with the file win over it
    cleared = picks_file(tmp_path / "clear.json", {"sh030": {"take": None},
                                                   "sh020": {"take": 1, "key": key(out, "sh020_t1")}})
    assert cli("select", out, "--from", cleared, "sh020=2").exit_code == 0
    assert {shot: pick["take"] for shot, pick in selects(out).items()} == {"sh010": 2, "sh020": 2}


def test_select_says_what_each_pick_changed_and_what_it_cleared(out: Path, tmp_path: Path) -> None:
    """A file that cleared sh030 and picked sh010 printed the picks left (`selects.json: sh010=t2`): the cleared
    select went unmentioned, and recording the same file twice read as if it had done it all again."""
    assert cli("select", out, "sh030=1", "sh020=2").exit_code == 0
    exported = picks_file(tmp_path / "picks.json", {"sh010": {"take": 2, "key": key(out, "sh010_t2")},
                                                    "sh020": {"take": 1, "key": key(out, "sh020_t1")},
                                                    "sh030": {"take": None}})
    result = cli("select", out, "--from", exported)
    assert result.exit_code == 0, result.output
    assert "changed: sh010=t2 (new), sh020=t1 (was t2), sh030 cleared (was t1)" in result.stdout
    assert f"{out / 'selects.json'}: sh010=t2, sh020=t1" in result.stdout  # every pick now, as before
    again = cli("select", out, "--from", exported)
    assert again.exit_code == 0, again.output
    assert "changed: nothing; every pick given was recorded already" in again.stdout
    assert cli("select", out, "sh020=2").stdout.startswith("changed: sh020=t2 (was t1)\n")


def test_a_picks_file_is_checked_like_command_line_picks_and_nothing_is_written(out: Path, tmp_path: Path) -> None:
    assert cli("select", out, "sh010=1").exit_code == 0
    before = (out / "selects.json").read_bytes()
    exported = picks_file(tmp_path / "picks.json", {
        "sh01": {"take": 1, "key": key(out, "sh010_t1")},
        "sh020": {"take": 7, "key": "0" * 16},
        "sh030": {"take": 2, "key": key(out, "sh030_t2")}})
    result = cli("select", out, "--from", exported)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "picks.json: sh01: no rendered shot of that id" in message and "did you mean 'sh010'?" in message
    assert "picks.json: sh020=7: no take 7 is rendered (rendered takes: 1, 2)" in message
    assert "nothing was changed" in message and "Traceback" not in result.output
    assert (out / "selects.json").read_bytes() == before


def test_a_command_line_pick_wins_over_the_files_pick_of_its_shot_unchecked(out: Path, tmp_path: Path) -> None:
    """SHOT=TAKE given with --from wins over the file's pick of that shot: the file's pick, replaced, is not
    checked (a take of it no longer rendered refused the whole command, the artist's correction included)."""
    exported = picks_file(tmp_path / "picks.json", {"sh010": {"take": 7, "key": "0" * 16},
                                                    "sh020": {"take": 2, "key": key(out, "sh020_t2")}})
    result = cli("select", out, "--from", exported, "sh010=1")
    assert result.exit_code == 0, result.output
    assert {shot: pick["take"] for shot, pick in selects(out).items()} == {"sh010": 1, "sh020": 2}


def test_a_take_re_rendered_since_the_director_looked_is_refused_unless_forced(out: Path, tmp_path: Path) -> None:
    seen = "ab" * 8  # the key of the take the page showed, before a re-render
    exported = picks_file(tmp_path / "picks.json", {"sh010": {"take": 2, "key": seen},
                                                    "sh020": {"take": 1, "key": key(out, "sh020_t1")}})
    result = cli("select", out, "--from", exported)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "sh010=2: take 2 was re-rendered since the picks were made (picked as abababababab, rendered now " \
           f"{job_key(out, 'sh010_t2').split(':')[1][:12]})" in message
    assert "--force" in message and not (out / "selects.json").exists()  # the good pick is not written either
    from idcli.errors import InputError
    from idcli.review.selects import select

    with pytest.raises(InputError, match=r"or force=True to pick the take as rendered now; nothing was changed"):
        select(out, from_file=exported)  # from Python: the argument as Python names it
    forced = cli("select", out, "--from", exported, "--force")
    assert forced.exit_code == 0, forced.output
    assert selects(out)["sh010"]["job_key"] == job_key(out, "sh010_t2")  # the take as rendered now


def test_a_refused_picks_file_says_how_to_record_its_picks_that_check_out(out: Path, tmp_path: Path) -> None:
    """The artist re-rendered sh010 while the director picked: the file is refused whole (nothing written), and
    the director's other picks could be recorded only by editing the JSON by hand. The refusal now gives the
    command that records those alone."""
    assert cli("select", out, "sh030=2").exit_code == 0
    exported = picks_file(tmp_path / "picks.json", {"sh010": {"take": 2, "key": "ab" * 8},  # re-rendered since
                                                    "sh020": {"take": 1, "key": key(out, "sh020_t1")},
                                                    "sh030": {"take": None}})
    result = cli("select", out, "--from", exported)
    assert result.exit_code == 2 and "sh010=2: take 2 was re-rendered" in result.stderr
    message = " ".join(result.stderr.split())
    assert f"nothing was changed; its other 2 picks check out: record them alone with idcli select {out} " \
           "sh020=1 sh030=none" in message
    assert {shot: pick["take"] for shot, pick in selects(out).items()} == {"sh030": 2}
    assert cli("select", out, "sh020=1", "sh030=none").exit_code == 0
    assert {shot: pick["take"] for shot, pick in selects(out).items()} == {"sh020": 1}


@pytest.mark.parametrize(("content", "expected"), [
    ("{\"schema\": 1,\n \"kind\": ", "line 2: not JSON"),
    (json.dumps({"selects": {}}), "not a picks file"),
    (json.dumps({"schema": 9, "kind": "idcli-picks", "picks": {}}), "schema: 9 is not a picks-file version"),
    (json.dumps({"schema": 1, "kind": "idcli-picks", "picks": {"sh010": {"take": "2"}}}),
     "picks.sh010.take: '2' is not a take: a whole number 1–9999, or null"),
    (json.dumps({"schema": 1, "kind": "idcli-picks", "picks": {"sh010": {"take": 1, "key": 5}}}),
     "picks.sh010.key: 5 is not a take's key as the page gives it (16 hex digits)"),
    (json.dumps({"schema": 1, "kind": "idcli-picks", "picks": {"sh010": {"take": 1, "job_key": "x"}}}),
     "picks.sh010.job_key: not a field of a pick (it has take and key)"),
    (json.dumps({"schema": 1, "kind": "idcli-picks", "picks": {}}), "picks: no picks in it"),
])
def test_a_damaged_picks_file_is_refused_naming_the_file_and_the_field(out: Path, tmp_path: Path, content: str,
                                                                        expected: str) -> None:
    path = tmp_path / "picks.json"
    path.write_text(content, "utf-8")
    result = cli("select", out, "--from", path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{path}: {expected}" in " ".join(result.stderr.split())
    assert not (out / "selects.json").exists()


def test_picks_pasted_into_a_file_by_a_windows_editor_are_recorded(out: Path, tmp_path: Path) -> None:
    """Editorial tour: the page shows the picks' text to copy into a message, and the artist pasted it from the mail
    into a file with Notepad, which saves UTF-8 with a byte order mark (and CRLF line ends). The file was refused as
    "not JSON (Unexpected UTF-8 BOM ...); export the picks from the storyboard page again": the director's picks,
    whole, sent back to a director with no idcli for a mark JSON lets a reader ignore (RFC 8259, section 8.1)."""
    text = json.dumps({"schema": 1, "kind": "idcli-picks", "project": "review", "run": "0" * 20,
                       "exported": "2026-12-01T10:00:00.000Z",
                       "picks": {"sh010": {"take": 2, "key": key(out, "sh010_t2")}}}, indent=1)
    pasted = tmp_path / "picks.json"
    pasted.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    result = cli("select", out, "--from", pasted)
    assert result.exit_code == 0, result.output
    assert selects(out)["sh010"]["job_key"] == job_key(out, "sh010_t2")
    damaged = tmp_path / "damaged.json"  # past the mark, a file that is not JSON still says its line
    damaged.write_bytes(b"\xef\xbb\xbf{\r\n\"schema\": 1,\r\n}")
    refused = cli("select", out, "--from", damaged)
    assert refused.exit_code == 2 and f"{damaged}: line 3: not JSON" in refused.stderr, refused.output


def _select_piped(out: Path, *argv: str, stdin: Any) -> subprocess.CompletedProcess[str]:
    """``idcli select OUT ARGV`` as a shell runs it, standard input from ``stdin`` (bytes, or an open file)."""
    given = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin}
    return subprocess.run([sys.executable, "-m", "idcli", "select", str(out), *argv], capture_output=True,
                          timeout=120, **given)  # type: ignore[call-overload]


def test_picks_piped_from_the_clipboard_are_read_from_standard_input(out: Path, tmp_path: Path) -> None:
    """Editorial tour: the page shows the picks' text when a download is refused, and the laptop's way to hand it over
    is ``pbpaste | idcli select OUT --from -``. ``-`` was read as a file named "-" (``cannot read the picks file
    (missing)``), and ``--from /dev/stdin`` was refused as a special file with no word of another way."""
    text = json.dumps({"schema": 1, "kind": "idcli-picks", "project": "review", "run": "0" * 20,
                       "exported": "2026-12-01T10:00:00.000Z",
                       "picks": {"sh010": {"take": 2, "key": key(out, "sh010_t2")}}})
    piped = _select_piped(out, "--from", "-", stdin=text.encode("utf-8"))
    assert piped.returncode == 0, piped.stderr
    assert selects(out)["sh010"]["job_key"] == job_key(out, "sh010_t2")
    damaged = _select_piped(out, "--from", "-", stdin=b'{"schema": 1,\n}')  # named as what it is, with its line
    assert damaged.returncode == 2 and damaged.stderr.decode().startswith(
        "idcli: error: standard input: line 2: not JSON"), damaged.stderr
    other = json.loads(text.replace('"project": "review"', '"project": "another film"'))
    refused = _select_piped(out, "--from", "-", stdin=json.dumps(other).encode())
    assert refused.returncode == 2 and "standard input: picks of project 'another film'" in refused.stderr.decode()
    by_name = _select_piped(out, "--from", "/dev/stdin", stdin=text.encode("utf-8"))
    assert by_name.returncode == 2 and "to read the picks from a pipe, give --from -" in by_name.stderr.decode()
    primary, secondary = pty.openpty()  # a forgotten pipe: the terminal would wait for JSON typed by hand
    try:
        with os.fdopen(secondary, "rb", closefd=False) as terminal:
            waiting = _select_piped(out, "--from", "-", stdin=terminal)
    finally:
        os.close(primary)
        os.close(secondary)
    assert waiting.returncode == 2 and b"--from -: standard input is a terminal; pipe the picks in" in waiting.stderr
    assert {shot: pick["take"] for shot, pick in selects(out).items()} == {"sh010": 2}  # the refusals wrote nothing
    from idcli.review.selects import select

    with open(os.devnull, "rb") as devnull, pytest.MonkeyPatch.context() as patch, pytest.raises(
            idcli.InputError, match=r"^from_file='-': standard input is a terminal") as err:
        patch.setattr(sys, "stdin", io.TextIOWrapper(_Terminal(devnull.fileno())))
        select(out, from_file="-")
    assert err.value.field == "from_file"


class _Terminal(io.FileIO):
    """A file that says it is a terminal (the Python caller's standard input when run at a prompt)."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd, "rb", closefd=False)

    def isatty(self) -> bool:
        return True


def test_picks_of_another_projects_page_are_refused(out: Path, tmp_path: Path) -> None:
    exported = picks_file(tmp_path / "picks.json", {"sh010": {"take": 1, "key": key(out, "sh010_t1")}},
                          project="another film")
    result = cli("select", out, "--from", exported)
    assert result.exit_code == 2 and "picks of project 'another film'" in result.stderr
    assert "renders of project 'review'" in result.stderr  # the manifest's
    assert not (out / "selects.json").exists()
    assert cli("select", out, "--from", exported, "--force").exit_code == 0


def test_picks_are_checked_against_the_sidecars_project_when_the_manifest_is_lost(out: Path, tmp_path: Path
                                                                                  ) -> None:
    """The manifest (.idcli/shotlist.jsonl) names the folder's project; where it was lost, the sidecars still do,
    as render and plan read them: another project's picks stay refused, this project's are recorded."""
    (out / ".idcli" / "shotlist.jsonl").unlink()
    picks = {"sh010": {"take": 1, "key": key(out, "sh010_t1")}}
    another = cli("select", out, "--from", picks_file(tmp_path / "other.json", picks, project="another film"))
    assert another.exit_code == 2, another.output
    assert "picks of project 'another film'" in another.stderr and "renders of project 'review'" in another.stderr
    assert not (out / "selects.json").exists()
    ours = cli("select", out, "--from", picks_file(tmp_path / "ours.json", picks))
    assert ours.exit_code == 0, ours.output
    assert selects(out)["sh010"]["take"] == 1


@pytest.mark.parametrize(("picks", "project", "expected"), [
    ({"sh\n010\x1b[2J": 5}, "review", "picks.sh\\n010\\x1b[2J: an object"),
    ({"sh010": {"take": 1}}, "a film\n\x1b[2J", "picks of project 'a film\\n\\x1b[2J'"),
])
def test_a_picks_files_own_words_are_quoted_escaped_in_its_errors(out: Path, tmp_path: Path, picks: dict,
                                                                  project: str, expected: str) -> None:
    """A picks file comes from a laptop: a shot id or project with a newline or a terminal escape in it was printed
    raw (one error over two lines; the escape run by the terminal), where a command-line pick's is escaped."""
    result = cli("select", out, "--from", picks_file(tmp_path / "picks.json", picks, project=project))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "\x1b" not in result.stderr, repr(result.stderr)
    assert expected in result.stderr, result.stderr


def test_select_without_picks_or_a_file_lists_the_picks_and_select_from_python_says_what_to_give(out: Path) -> None:
    from idcli.errors import InputError
    from idcli.review.selects import select

    result = cli("select", out)  # the command lists the picks (tests/test_revisions.py says how each stands)
    assert result.exit_code == 0 and "selects.json: no picks" in result.stdout, result.output
    with pytest.raises(InputError, match=r"give at least one SHOT=TAKE or from_file='picks\.json'"):
        select(out, [])  # recording nothing from Python is still a mistake worth a word


def test_select_without_picks_refuses_force_which_only_records(out: Path) -> None:
    """``select OUT --force`` lists, records nothing: --force (record re-rendered or another project's picks) would
    have no effect, and was ignored without a word."""
    result = cli("select", out, "--force")
    assert result.exit_code == 2, result.output
    assert "--force" in result.stderr and "lists the picks" in result.stderr, result.stderr
    document = json.loads(cli("select", out, "--force", "--json").stdout)
    assert document["ok"] is False and "--force" in document["error"]["message"]
    assert not (out / "selects.json").exists()


def test_select_with_picks_but_no_file_refuses_force_which_changes_nothing(out: Path) -> None:
    """``select OUT SHOT=TAKE --force``: a command-line pick is of the take as rendered now, with or without --force
    (it records --from picks only), which was ignored without a word; from Python too."""
    from idcli.review.selects import select

    result = cli("select", out, "sh010=1", "--force")
    assert result.exit_code == 2, result.output
    assert "--force" in result.stderr and "--from" in result.stderr, result.stderr
    with pytest.raises(idcli.InputError, match=r"force=True: .*from_file") as caught:
        select(out, ["sh010=1"], force=True)
    assert caught.value.field == "force"
    assert not (out / "selects.json").exists()
    assert cli("select", out, "sh010=1").exit_code == 0  # without it, the pick is recorded


@pytest.mark.parametrize("notes", ["x", {}, 3])
def test_select_from_python_refuses_notes_of_the_wrong_type(out: Path, notes: object) -> None:
    """``select(out, picks, notes="x")`` was an AttributeError (a str has no .extend) after writing selects.json."""
    from idcli.review.selects import select

    with pytest.raises(idcli.InputError, match=r"notes=.*: give a list the notes are added to, or None") as caught:
        select(out, ["sh010=1"], notes=notes)
    assert caught.value.exit_code == 2 and caught.value.field == "notes"
    assert not (out / "selects.json").exists()
    with pytest.raises(idcli.InputError, match="force="):
        select(out, ["sh010=1"], force="yes")
    with pytest.raises(idcli.InputError, match="from_file="):
        select(out, None, from_file=3)


# -- the page ---------------------------------------------------------------------------------------


def test_takes_sharing_a_prompt_show_it_once_per_shot(out: Path) -> None:
    assert cli("review", out).exit_code == 0
    page = (out / "review" / "index.html").read_text("utf-8")
    # sh010's prompt holds markup: escaped, once for its two takes
    assert page.count("at a &lt;b&gt;table&lt;/b&gt; &amp; laugh") == 1
    assert page.count('<dl class="shot-prompt"><dt>prompt</dt>') == 3
    assert "<dt class=prompt>" not in page
    # a take whose prompt differs from its shot's keeps its own
    from idcli.review.page import page_html, shared_prompt
    from idcli.review.runs import load_run

    run = load_run(out)
    shot = run.shots[0]
    shot.takes[1] = type(shot.takes[1])(**{**shot.takes[1].__dict__, "prompt": "another prompt"})
    assert shared_prompt(shot) is None
    page = page_html(run, {}, [])
    assert page.count("<dt class=prompt>") == 2 and page.count('<dl class="shot-prompt">') == 2


def test_the_browser_keeps_picks_under_the_folder_however_its_path_is_spelt(out: Path, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The page is rewritten by whoever runs ``idcli review``, from wherever: ``../renders/sc12`` from another folder
    or a link to it made another store key, and the director's picks not exported yet seemed lost."""
    from idcli.review.page import run_key
    from idcli.review.runs import load_run

    key = run_key(load_run(out))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert run_key(load_run(Path("..") / out.relative_to(tmp_path))) == key
    (tmp_path / "link").symlink_to(out)
    assert run_key(load_run(tmp_path / "link")) == key
    assert cli("review", Path("..") / "link").exit_code == 0
    page = (out / "review" / "index.html").read_text("utf-8")
    assert f'data-run="{key}"' in page and str(tmp_path) not in page  # the path itself stays on the render box


def test_a_browser_that_stops_answering_fails_the_test_in_time() -> None:
    """The DevTools pipe is read with a deadline: a Chromium that hung without closing the pipe hung the suite."""
    import os
    import time

    from hang_watchdog import no_hang

    browser = Browser.__new__(Browser)  # the protocol side alone, over a pipe nobody writes to
    reads, writes = os.pipe()
    browser._in, browser._buffer, browser.timeout = os.fdopen(reads, "rb", buffering=0), b"", 0.3
    try:
        with no_hang(5), pytest.raises(TimeoutError):  # a read without its deadline fails here, never hangs
            browser._message(time.monotonic() + browser.timeout)
    finally:
        browser._in.close()
        os.close(writes)


def open_page(browser: Browser, out: Path, fragment: str = "") -> None:
    browser.open((out / "review" / "index.html").as_uri() + fragment)


def reopen_page(browser: Browser, out: Path, fragment: str = "") -> None:
    """The director comes back to the page the artist wrote again: the same browser opens it anew, reading its picks
    from the same localStorage. Not a new Chromium: its clean close does not always commit the last pick to the
    profile (tests/browser_pipe.py), and what a restart keeps is Chromium's business, not the page's."""
    browser.open("about:blank")
    open_page(browser, out, fragment)


def reload_until(browser: Browser, expected: list[str], tries: int = 3) -> dict:
    """Reload the page until its pressed picks are ``expected`` (at most ``tries`` reloads); the state last read.
    Once in three clean-clone CI runs (2026-12-03) the reloaded page, its script run after its own load, read the picks
    clicked just before as they were before the clicks: Chromium had not yet handed the old document's localStorage
    writes to the new one. A pick the page lost stays lost at every reload, and still fails here."""
    for _ in range(tries):
        browser.reload()
        state = page_state(browser)
        if pressed(state) == expected:
            break
        time.sleep(1.0)
    return state


def page_state(browser: Browser) -> dict:
    return browser.js("""(function(){var r={};
      document.querySelectorAll('article.take').forEach(function(t){var b=t.querySelector('button.pick');
        if(b){r[t.id]=b.getAttribute('aria-pressed');}});
      return {pressed:r, count:document.querySelector('.pick-count').textContent,
        nav:Array.from(document.querySelectorAll('nav li')).map(function(li){var m=li.querySelector('.navpick');
          return li.querySelector('a').textContent+(m?m.textContent:'');}),
        notes:Array.from(document.querySelectorAll('.pick-note')).map(function(n){return n.textContent;}),
        focus:document.activeElement.id, hash:location.hash, top:window.scrollY};})()""")


def pressed(state: dict) -> list[str]:
    return sorted(take for take, on in state["pressed"].items() if on == "true")


@needs_chromium
def test_the_director_picks_reloads_exports_and_the_artist_records_the_file(out: Path, tmp_path: Path) -> None:
    assert cli("select", out, "sh020=2").exit_code == 0  # a select made with idcli select before
    assert cli("review", out).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        open_page(browser, out)
        assert pressed(page_state(browser)) == ["take-sh020_t2"]  # the select shows as picked
        browser.press("2")  # the current shot (the first, at the top): its take 2 by its digit
        browser.click("#take-sh030_t1 button.pick")  # and sh030's take 1 with the mouse
        browser.click("#take-sh020_t1 button.pick")  # sh020: take 1 instead of the recorded take 2
        state = page_state(browser)
        assert pressed(state) == ["take-sh010_t2", "take-sh020_t1", "take-sh030_t1"]
        assert state["nav"] == ["sh010 ✓t2*", "sh020 ✓t1*", "sh030 ✓t1*", "sh040"]  # sh040: not rendered
        assert state["count"].startswith("3 of 4 shots picked · 3 changed here")
        state = reload_until(browser, ["take-sh010_t2", "take-sh020_t1", "take-sh030_t1"])  # kept in the browser
        assert pressed(state) == ["take-sh010_t2", "take-sh020_t1", "take-sh030_t1"]
        assert state["notes"][:3] == [" picked take 2 (not recorded yet)", " picked take 1 (not recorded yet)",
                                      " picked take 1 (not recorded yet)"]
        exported = browser.download("button.export-picks")
        shown = browser.js("document.querySelector('.picks textarea').value")
        assert browser.problems() == []  # no script error, nothing the page's CSP refused
        assert exported.name == "picks.json" and exported.read_text("utf-8") == shown  # the download: the text shown
        document = json.loads(shown)
        assert document["picks"] == {"sh010": {"take": 2, "key": key(out, "sh010_t2")},
                                     "sh020": {"take": 1, "key": key(out, "sh020_t1")},
                                     "sh030": {"take": 1, "key": key(out, "sh030_t1")}}
        result = cli("select", out, "--from", exported)
        assert result.exit_code == 0, result.output
        assert {shot: (pick["take"], pick["job_key"][13:29]) for shot, pick in selects(out).items()} == {
            shot: (pick["take"], pick["key"]) for shot, pick in document["picks"].items()}
        assert {shot: pick["job_key"] for shot, pick in selects(out).items()} == {
            shot: job_key(out, f"{shot}_t{pick['take']}") for shot, pick in document["picks"].items()}
        # the rewritten page shows them as recorded: nothing left "not recorded" in the browser
        assert cli("review", out).exit_code == 0
        reopen_page(browser, out)
        state = page_state(browser)
        assert pressed(state) == ["take-sh010_t2", "take-sh020_t1", "take-sh030_t1"]
        assert state["nav"] == ["sh010 ✓t2", "sh020 ✓t1", "sh030 ✓t1", "sh040"]
        assert state["count"] == "3 of 4 shots picked"


@needs_chromium
def test_the_page_says_where_picks_are_kept_and_warns_when_the_browser_keeps_none(out: Path, tmp_path: Path) -> None:
    """Director's tour on a locked-down laptop, whose browser does not let sites save data (Chromium's "Don't allow
    sites to save data", the profile's content setting): the page took picks, counted them as "changed here", and a
    reload lost them all without a word; nor did the page say anywhere that picks live in the browser, not in the
    folder sent back. The picks bar now says where they are kept, and, in such a browser, that they are not."""
    assert cli("review", out).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    where = "document.querySelector('.pick-where').textContent.replace(/\\s+/g, ' ')"
    with Browser(tmp_path / "profile", downloads) as browser:
        open_page(browser, out)
        assert browser.js(where) == ("Picks are kept in this browser on this computer, not in the folder: export picks "
                                     "gives the picks.json to send the artist.")
    blocked = tmp_path / "locked-down"
    (blocked / "Default").mkdir(parents=True)
    (blocked / "Default" / "Preferences").write_text(json.dumps(
        {"profile": {"default_content_setting_values": {"cookies": 2}}}), "utf-8")  # 2: block
    unkept = ("This browser keeps no picks for this page (it does not let pages save data): picks made here are lost "
              "when the page is reloaded or closed. Export them before, and send the picks.json to the artist.")
    with Browser(blocked, downloads) as browser:
        open_page(browser, out)
        assert browser.js("(function(){try{return !!localStorage;}catch(e){return e.name;}})()") == "SecurityError"
        assert browser.js(where) == unkept  # said when the page opens, before any pick
        browser.click("#take-sh020_t2 button.pick")
        assert pressed(page_state(browser)) == ["take-sh020_t2"]
        exported = browser.download("button.export-picks")  # what the warning says to do, and it works
        browser.reload()
        assert pressed(page_state(browser)) == [] and browser.js(where) == unkept  # lost, as the page said
        assert browser.problems() == []
    assert json.loads(exported.read_text("utf-8"))["picks"] == {"sh020": {"take": 2, "key": key(out, "sh020_t2")}}


@needs_chromium
def test_an_export_carries_only_what_the_director_changed_so_a_later_select_stands(out: Path, tmp_path: Path
                                                                                   ) -> None:
    """The page is written with sh020=2 recorded; the director picks sh010 take 1 only and exports. Meanwhile the
    artist selects sh020=1. The export held sh020's recorded take 2 as a pick too, and recording the file put
    sh020 back to take 2 without a word: a select made after the page was written, lost."""
    assert cli("select", out, "sh020=2").exit_code == 0
    assert cli("review", out).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        open_page(browser, out)
        browser.click("button.export-picks")  # nothing changed here yet: nothing to send, no download
        assert browser.js("document.querySelector('.picks .export p:not([hidden])').textContent") == \
            "No picks changed here: nothing to send (the picks shown are the ones recorded)."
        browser.click("#take-sh010_t1 button.pick")
        exported = browser.download("button.export-picks")
        assert browser.problems() == []
    assert json.loads(exported.read_text("utf-8"))["picks"] == {"sh010": {"take": 1, "key": key(out, "sh010_t1")}}
    assert cli("select", out, "sh020=1").exit_code == 0  # the artist, meanwhile
    result = cli("select", out, "--from", exported)
    assert result.exit_code == 0, result.output
    assert {shot: pick["take"] for shot, pick in selects(out).items()} == {"sh010": 1, "sh020": 1}


def _pick_then_edit_the_shot_list(browser: Browser, out: Path, takes: list[str],
                                  edit: Callable[[dict[str, Any]], None], fragment: str = "") -> None:
    """The director picks ``takes`` on the page; the artist then edits the shot list and renders (``edit`` changes
    the run manifest as that render records it) and reviews again; the director comes back to the page."""
    assert cli("review", out).exit_code == 0
    open_page(browser, out)
    for take in takes:
        browser.click(f"#take-{take} button.pick")
    manifest_path = out / ".idcli" / "shotlist.jsonl"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    edit(manifest)
    manifest_path.write_text(json.dumps(manifest) + "\n", "utf-8")
    assert cli("review", out).exit_code == 0
    reopen_page(browser, out, fragment)


def _downloads(tmp_path: Path) -> Path:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    return downloads


@needs_chromium
def test_a_shot_taken_out_of_the_shot_list_offers_no_pick_and_its_pick_is_not_exported(out: Path, tmp_path: Path
                                                                                       ) -> None:
    """The director picked sh030; the artist then took sh030 out of the shot list and rendered (its images kept,
    shown under "not in the shot list"). The rewritten page still offered pick buttons there and exported the
    pick, which `idcli select --from` refuses (an orphan) - and with it the whole file, every export again."""
    def take_sh030_out(manifest: dict[str, Any]) -> None:
        manifest["shots"] = [s for s in manifest["shots"] if s["id"] != "sh030"]
        manifest["takes"] = [t for t in manifest["takes"] if t[0] != "sh030"]

    with Browser(tmp_path / "profile", _downloads(tmp_path)) as browser:
        _pick_then_edit_the_shot_list(browser, out, ["sh030_t1", "sh010_t2"], take_sh030_out, "#shot-sh030")
        state = page_state(browser)
        assert browser.js("document.querySelectorAll('#shot-sh030 button.pick').length") == 0  # no pick buttons
        assert pressed(state) == ["take-sh010_t2"] and state["count"].startswith("1 of 3 shots picked")
        browser.press("2")  # a digit on that shot picks nothing
        assert pressed(page_state(browser)) == ["take-sh010_t2"]
        exported = browser.download("button.export-picks")
        assert browser.problems() == []
    assert json.loads(exported.read_text("utf-8"))["picks"] == {"sh010": {"take": 2, "key": key(out, "sh010_t2")}}
    assert cli("select", out, "--from", exported).exit_code == 0


@needs_chromium
def test_a_pick_made_here_of_a_shot_since_renamed_or_taken_out_is_said_not_dropped(out: Path, tmp_path: Path
                                                                                     ) -> None:
    """Director's tour: picks made on the page, not exported yet; the artist renamed sh020 to sh025 and took sh030
    out, rendered and reviewed again. On the reloaded page the two picks were gone without a word (the header's
    count fell from 3 to 1, no heading said which, and a pick of a renamed shot looked as if never made). They are
    still not exported (idcli select refuses orphans), but each heading says so, and so does the count."""
    def rename_sh020_and_take_sh030_out(manifest: dict[str, Any]) -> None:
        manifest["shots"] = [{**s, "id": "sh025"} if s["id"] == "sh020" else s for s in manifest["shots"]
                             if s["id"] != "sh030"]
        manifest["takes"] = [["sh025", t[1]] if t[0] == "sh020" else t for t in manifest["takes"] if t[0] != "sh030"]

    note = "(function(){var n=document.querySelector('#h-%s .pick-note');return n?n.textContent:null;})()"
    with Browser(tmp_path / "profile", _downloads(tmp_path)) as browser:
        _pick_then_edit_the_shot_list(browser, out, ["sh010_t2", "sh020_t1", "sh030_t2"],
                                      rename_sh020_and_take_sh030_out)
        said = " here: the shot is no longer in the shot list, so the pick is not exported; if it was renamed, pick " \
               "again under its new name"
        assert browser.js(note % "sh020") == " picked take 1" + said
        assert browser.js(note % "sh030") == " picked take 2" + said
        assert browser.js(note % "sh025") is None  # the renamed shot: not rendered yet, nothing picked
        assert page_state(browser)["count"] == ("1 of 3 shots picked · 1 changed here, not recorded yet: export them "
                                                "for the artist · 2 picked here of shots no longer in the shot list "
                                                "(see their headings): not exported")
        exported = browser.download("button.export-picks")
        browser.click("button.forget-picks")  # twice: forgets what was changed here, these picks too
        browser.click("button.forget-picks")
        assert browser.js(note % "sh030") == "" and page_state(browser)["count"] == "0 of 3 shots picked"
        assert browser.problems() == []
    assert json.loads(exported.read_text("utf-8"))["picks"] == {"sh010": {"take": 2, "key": key(out, "sh010_t2")}}


@needs_chromium
def test_a_take_beyond_the_shots_takes_offers_no_pick_and_its_pick_is_not_exported(out: Path, tmp_path: Path
                                                                                 ) -> None:
    """The director picked sh010's take 2; the artist then lowered sh010 to `takes: 1` and rendered (take 2 kept,
    an orphan inside a live shot). The rewritten page still offered a pick button on take 2 and exported the pick,
    which `idcli select --from` refuses, and with it the whole file."""
    def lower_sh010_to_one_take(manifest: dict[str, Any]) -> None:
        manifest["shots"] = [{**s, "takes": 1} if s["id"] == "sh010" else s for s in manifest["shots"]]
        manifest["takes"] = [t for t in manifest["takes"] if t != ["sh010", 2]]

    with Browser(tmp_path / "profile", _downloads(tmp_path)) as browser:
        _pick_then_edit_the_shot_list(browser, out, ["sh010_t2", "sh020_t1"], lower_sh010_to_one_take, "#shot-sh010")
        assert browser.js("document.querySelectorAll('#take-sh010_t2 button.pick').length") == 0
        assert browser.js("document.querySelectorAll('#take-sh010_t1 button.pick').length") == 1
        heading = browser.js("document.querySelector('#h-sh010').textContent")
        assert "picked take 2: beyond the takes of the shot now" in heading, heading
        # the header counts picks that stand: sh020's, not the orphan take's kept in the browser
        count = browser.js("document.querySelector('.pick-count').textContent")
        assert count.startswith("1 of ") and "1 changed here" in count, count
        exported = browser.download("button.export-picks")  # the pick of take 2 kept in the browser is left out
        assert json.loads(exported.read_text("utf-8"))["picks"] == {"sh020": {"take": 1, "key": key(out, "sh020_t1")}}
        browser.press("2")  # the digit of the orphan take on its shot picks nothing
        browser.press("1")
        assert "take-sh010_t1" in pressed(page_state(browser)) and "take-sh010_t2" not in pressed(page_state(browser))
        exported = browser.download("button.export-picks")
        assert browser.problems() == []
    assert json.loads(exported.read_text("utf-8"))["picks"] == {"sh010": {"take": 1, "key": key(out, "sh010_t1")},
                                                                "sh020": {"take": 1, "key": key(out, "sh020_t1")}}
    assert cli("select", out, "--from", exported).exit_code == 0


@needs_chromium
def test_a_pick_of_a_take_re_rendered_since_is_marked_and_refused(out: Path, tmp_path: Path) -> None:
    assert cli("review", out).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        open_page(browser, out)
        browser.click("#take-sh010_t1 button.pick")
        # sh010 take 1 re-rendered after the director looked: another job key on the rewritten page
        sidecar = out / "sh010" / "sh010_t1.json"
        record = json.loads(sidecar.read_text("utf-8"))
        record["job_key"] = "idcli-job-v2:" + "cd" * 32
        sidecar.write_text(json.dumps(record), "utf-8")
        assert cli("review", out).exit_code == 0
        reopen_page(browser, out)
        assert page_state(browser)["notes"][0] == " picked take 1: re-rendered since you picked it; look again"
        exported = browser.download("button.export-picks")
    result = cli("select", out, "--from", exported)
    assert result.exit_code == 2 and "was re-rendered since the picks were made" in result.stderr


@needs_chromium
def test_picking_a_re_rendered_take_again_picks_it_as_rendered_now(out: Path, tmp_path: Path) -> None:
    """The page says "re-rendered since you picked it; look again"; the director looks and picks that take again
    (its digit, or its button): that unpicked it, so the shot was left without a pick (and a select recorded for
    it was exported as cleared). It now picks the take as rendered now."""
    assert cli("select", out, "sh020=2").exit_code == 0
    assert cli("review", out).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        open_page(browser, out)
        browser.click("#take-sh010_t1 button.pick")
        browser.click("#take-sh020_t1 button.pick")
        for stem in ("sh010_t1", "sh020_t1"):  # both re-rendered after the director looked
            sidecar = out / stem.split("_")[0] / f"{stem}.json"
            record = json.loads(sidecar.read_text("utf-8"))
            record["job_key"] = "idcli-job-v2:" + stem[-1] * 64
            sidecar.write_text(json.dumps(record), "utf-8")
        assert cli("review", out).exit_code == 0
        reopen_page(browser, out)
        assert page_state(browser)["notes"][:2] == [" picked take 1: re-rendered since you picked it; look again"] * 2
        browser.click("#take-sh010_t1 button.pick")  # looked again: the same take, as it is now
        browser.press("j")  # to sh020, and its take 1 by its digit
        browser.press("1")
        state = page_state(browser)
        assert pressed(state) == ["take-sh010_t1", "take-sh020_t1"]
        assert state["notes"][:2] == [" picked take 1 (not recorded yet)"] * 2
        exported = browser.download("button.export-picks")
    assert json.loads(exported.read_text("utf-8"))["picks"] == {"sh010": {"take": 1, "key": "1" * 16},
                                                                "sh020": {"take": 1, "key": "1" * 16}}
    assert cli("select", out, "--from", exported).exit_code == 0
    assert {shot: pick["take"] for shot, pick in selects(out).items()} == {"sh010": 1, "sh020": 1}


@needs_chromium
def test_a_recorded_select_re_rendered_since_and_left_as_it_was_is_not_exported(out: Path, tmp_path: Path) -> None:
    """A select recorded with ``idcli select`` whose take was re-rendered since: the page exported it with the new
    render's key, so ``select --from`` of picks the director never touched recorded the re-render as looked at
    (the page's own "re-rendered since picked" badge ignored)."""
    assert cli("select", out, "sh010=1").exit_code == 0
    sidecar = out / "sh010" / "sh010_t1.json"  # take 1 re-rendered after it was picked
    record = json.loads(sidecar.read_text("utf-8"))
    record["job_key"] = "idcli-job-v2:" + "cd" * 32
    sidecar.write_text(json.dumps(record), "utf-8")
    assert cli("review", out).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        open_page(browser, out)
        assert page_state(browser)["notes"][0] == " picked take 1: re-rendered since you picked it; look again"
        browser.click("#take-sh020_t2 button.pick")  # another shot picked; sh010 left as it was
        exported = browser.download("button.export-picks")
    # only what the director changed: sh010, left as it was, is not in the file (nor recorded as looked at)
    assert list(json.loads(exported.read_text("utf-8"))["picks"]) == ["sh020"]
    before = selects(out)["sh010"]
    result = cli("select", out, "--from", exported)
    assert result.exit_code == 0, result.output
    assert selects(out)["sh010"] == before  # still the render that was picked


@needs_chromium
def test_a_select_whose_record_is_damaged_is_said_so_on_the_page_as_the_notes_say(out: Path, tmp_path: Path) -> None:
    """A hand-edited selects.json whose pick's job_key is no string: select, review and export say "its record in
    selects.json is damaged" (pick_standing.py), while the page badged it "re-rendered since picked" and its script
    took the pick for one that stands (no note in the heading; picking the take again unpicked it). The page now says
    what the notes say, and picking that take again picks it as rendered now, for select --from to record whole."""
    assert cli("select", out, "sh020=2").exit_code == 0
    data = json.loads((out / "selects.json").read_text("utf-8"))
    data["selects"]["sh020"]["job_key"] = 12345
    (out / "selects.json").write_text(json.dumps(data), "utf-8")
    reviewed = cli("review", out)
    assert reviewed.exit_code == 0, reviewed.output
    assert "idcli: note: sh020: the director's select, take 2: its record in selects.json is damaged" in reviewed.stderr
    page = (out / "review" / "index.html").read_text("utf-8")
    assert "re-rendered since picked" not in page
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    note = "(function(){var n=document.querySelector('#h-sh020 .pick-note');return n?n.textContent:null;})()"
    with Browser(tmp_path / "profile", downloads) as browser:
        open_page(browser, out)
        browser.wait_until(note, " picked take 2: its record in selects.json is damaged; look again",
                           "the damaged record said in the shot's heading")
        badges = browser.js("document.querySelector('#take-sh020_t2 .badges').textContent")
        assert "its record in selects.json is damaged" in badges, badges
        assert pressed(page_state(browser)) == ["take-sh020_t2"]  # still the select shown, as review shows it
        browser.click("#take-sh020_t2 button.pick")  # looked again: that take, as rendered now (not unpicked)
        assert pressed(page_state(browser)) == ["take-sh020_t2"]
        browser.wait_until(note, " picked take 2 (not recorded yet)", "the take picked again, as rendered now")
        exported = browser.download("button.export-picks")
        assert browser.problems() == []
    assert json.loads(exported.read_text("utf-8"))["picks"] == {"sh020": {"take": 2, "key": key(out, "sh020_t2")}}
    recorded = cli("select", out, "--from", exported)
    assert recorded.exit_code == 0, recorded.output
    assert selects(out)["sh020"]["job_key"] == job_key(out, "sh020_t2")  # the record whole again


@needs_chromium
def test_a_damaged_store_in_the_browser_costs_its_picks_not_the_page(out: Path, tmp_path: Path) -> None:
    """localStorage is shared by every page from file:// and outlives page versions: a pick there whose take is no
    number (``"]``) made the page's selector throw, and the script stopped before any pick showed or worked."""
    assert cli("review", out).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        open_page(browser, out)
        browser.js("localStorage.setItem('idcli-review:' + document.body.dataset.run, JSON.stringify({picks: {"
                   "sh010: {take: '\"]', key: 'x'}, sh020: {take: 2.5}, sh030: {take: 1, key: 7}}, last: 5}))")
        browser.reload()
        assert browser.problems() == []
        assert pressed(page_state(browser)) == []  # the damaged picks are dropped, none half-shown
        browser.click("#take-sh030_t2 button.pick")
        assert pressed(page_state(browser)) == ["take-sh030_t2"]


@needs_chromium
def test_two_output_folders_keep_their_own_picks_and_the_page_reopens_where_it_was_left(out: Path,
                                                                                         tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(out, other)  # the same project rendered into a second folder
    assert cli("review", out).exit_code == 0 and cli("review", other).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        open_page(browser, out)
        for key in ("j", "1"):  # to the next shot, sh020, and pick its take 1
            browser.press(key)
        assert page_state(browser)["hash"] == "#shot-sh020"  # the place in the URL as j/k move
        open_page(browser, other)
        state = page_state(browser)
        assert pressed(state) == [] and state["top"] == 0  # nothing of the first folder's
        open_page(browser, out)  # reopened without the #fragment: back at sh020, its pick kept
        state = page_state(browser)
        assert pressed(state) == ["take-sh020_t1"] and state["focus"] == "shot-sh020" and state["top"] > 0
        # 400 ms after the scroll back to sh020 the page writes the place into the URL. A person reloads later than
        # that; a reload racing the timer came back without the #fragment (the shot focused, as just above), one
        # after it with it (the browser scrolls to the shot, the page leaves the focus alone): wait for the URL.
        browser.wait_until("location.hash", "#shot-sh020", "the place written into the URL")
        browser.reload()
        assert page_state(browser)["hash"] == "#shot-sh020"  # reopened there: the keys act on sh020, below
        top_shot = ("Array.from(document.querySelectorAll('section.shot'))"
                    ".filter(function(s){return s.offsetTop<=window.scrollY+8;}).map(function(s){return s.id;}).pop()")
        browser.wait_until(top_shot, "shot-sh020", "the reloaded page scrolled back to sh020")  # as the keys read it
        browser.press("0")  # the current shot without a pick
        assert pressed(page_state(browser)) == []
        browser.press("2")
        stored = "localStorage.getItem('idcli-review:' + document.body.dataset.run)"
        assert json.loads(browser.js(stored))["last"] == "sh020"  # a pick records its shot as the place
        browser.click("button.forget-picks")  # once arms it, twice forgets what was changed here
        assert pressed(page_state(browser)) == ["take-sh020_t2"]
        browser.click("button.forget-picks")
        assert pressed(page_state(browser)) == []
        # What the browser keeps for this folder: no picks, and its place. The click scrolled up to the button, and the
        # page records the place 400 ms after a scroll stops: the top ("", reopen there). A single read raced that
        # timer (sh020 on a quiet machine, "" on a loaded one): wait for the place the page settles on.
        browser.wait_until(stored, '{"picks":{},"last":""}', "the store holding no picks and the top as the place")
        assert browser.problems() == []


def settled_scroll(browser: Browser, scroll: Callable[[], None]) -> None:
    """``scroll``, then wait until the page has moved and stopped (scrollY the same on three reads 50 ms apart):
    each Page Down lands whole before the next, as a scroll begun from a half-done one lands elsewhere, and a loaded
    machine draws a scroll late. At most 5 s for each."""
    before = browser.js("window.scrollY")
    scroll()
    for _ in range(100):  # the page scrolls after the key is handled
        if browser.js("window.scrollY") != before:
            break
        time.sleep(0.05)
    seen, same = browser.js("window.scrollY"), 0
    for _ in range(100):
        time.sleep(0.05)
        now = browser.js("window.scrollY")
        same = same + 1 if now == seen else 0
        seen = now
        if same >= 3:
            return


@needs_chromium
def test_keys_act_on_the_shot_in_view_after_paging_away_from_the_focused_one(out: Path, tmp_path: Path) -> None:
    """On a phone-sized screen, keyboard only: `j` to sh020, then Page Down until sh020 is out of view. A digit
    picked sh020's take (the focus stayed there, off screen) while the director looked at another shot."""
    assert cli("review", out).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        browser.send("Emulation.setDeviceMetricsOverride", page=True, width=390, height=844, deviceScaleFactor=1,
                     mobile=True)
        open_page(browser, out)
        browser.press("j")
        assert page_state(browser)["focus"] == "shot-sh020"
        in_view = ("(function(){var r=document.getElementById('shot-sh020').getBoundingClientRect();"
                   "return r.bottom>0&&r.top<innerHeight;})()")
        for _ in range(12):  # Page Down, as a keyboard scrolls; a shot of two stacked takes is over a screen tall
            if not browser.js(in_view):
                break
            settled_scroll(browser, lambda: browser.key("PageDown"))
        # Where the last Page Down lands depends on every shot's height (a wider heading in the faces table moved
        # it out of the gap below, 2026-12-01): the view is put in that gap itself, 12 px above sh030, as a wheel
        # leaves it.
        settled_scroll(browser, lambda: browser.js(
            "window.scrollTo({top: window.scrollY + document.getElementById('shot-sh030').getBoundingClientRect().top"
            " - 12, behavior: 'instant'})"))
        assert not browser.js(in_view) and page_state(browser)["focus"] == "shot-sh020"
        top = browser.js("Array.from(document.querySelectorAll('section.shot')).filter(function(s){"
                         "return s.getBoundingClientRect().bottom>8;})[0].id")
        assert top == "shot-sh030"
        # The view lands in the 18 px between sh020 and sh030: the page took the last shot whose top had reached
        # the view's, sh020, off screen, and a digit picked there (the test passed only while Page Down's smooth
        # scroll left the view elsewhere, until a loaded machine and --disable-smooth-scrolling did not).
        assert browser.js("document.getElementById('shot-sh030').getBoundingClientRect().top") > 8
        browser.press("1")  # the shot in view, not the one the focus was left on
        assert pressed(page_state(browser)) == ["take-sh030_t1"]
        browser.press("k")  # and back from the shot in view: sh020, not sh010
        assert page_state(browser)["focus"] == "shot-sh020"
        assert browser.problems() == []


@needs_chromium
def test_s_picks_the_focused_take_only_while_it_is_in_view(out: Path, tmp_path: Path) -> None:
    """On a 1280 × 720 screen, keyboard only: `j` to sh020, Tab to its take 1's pick button, then Page Down to sh030.
    `s` ("pick the take with the focus") picked sh020's take 1, off screen, while the director looked at sh030: the
    digits had stopped doing so, `s` had not. It now picks only a take in view."""
    assert cli("review", out).exit_code == 0
    with Browser(tmp_path / "profile", tmp_path / "downloads") as browser:
        browser.send("Emulation.setDeviceMetricsOverride", page=True, width=1280, height=720, deviceScaleFactor=1,
                     mobile=False)
        open_page(browser, out)
        browser.press("j")
        browser.key("Tab")  # the thumbnail
        browser.key("Tab")  # the pick button
        focused = "document.activeElement.closest('article.take').id"
        assert browser.js(focused) == "take-sh020_t1"
        browser.press("s")  # in view: picked, and again: unpicked
        assert pressed(page_state(browser)) == ["take-sh020_t1"]
        browser.press("s")
        assert pressed(page_state(browser)) == []
        in_view = ("(function(){var r=document.getElementById('take-sh020_t1').getBoundingClientRect();"
                   "return r.bottom>0&&r.top<innerHeight;})()")
        for _ in range(12):
            if not browser.js(in_view):
                break
            settled_scroll(browser, lambda: browser.key("PageDown"))
        assert not browser.js(in_view) and browser.js(focused) == "take-sh020_t1"
        browser.press("s")  # the focus off screen: nothing picked where the director cannot see
        assert pressed(page_state(browser)) == []
        browser.press("1")  # the keys act on the shot in view
        assert pressed(page_state(browser)) == ["take-sh030_t1"]
        assert browser.problems() == []


@needs_chromium
def test_e_brings_the_keyboard_back_to_export_picks_from_anywhere_in_the_page(out: Path, tmp_path: Path) -> None:
    """Keyboard only, picks made down the page: `export picks` is in the header, and neither Home nor Tab goes back
    to it (Tab goes on from the shot holding the focus): Shift+Tab back through every take above (four stops each:
    thumbnail, pick, full image, sidecar) and the index was the way to send the picks. `e` puts the focus on it, in
    view; Enter exports."""
    assert cli("review", out).exit_code == 0
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        browser.send("Emulation.setDeviceMetricsOverride", page=True, width=1280, height=720, deviceScaleFactor=1,
                     mobile=False)
        open_page(browser, out)
        browser.press("j")
        browser.press("j")
        browser.press("2")  # sh030 take 2, the header scrolled away
        assert pressed(page_state(browser)) == ["take-sh030_t2"] and browser.js("window.scrollY") > 0
        browser.press("e")
        assert browser.js("document.activeElement.className") == "export-picks"
        assert browser.js("(function(){var r=document.activeElement.getBoundingClientRect();"
                          "return r.top>=0&&r.bottom<=innerHeight;})()")
        browser.key("Enter")
        exported = browser.downloaded()
        assert browser.problems() == []
    assert json.loads(exported.read_text("utf-8"))["picks"] == {"sh030": {"take": 2, "key": key(out, "sh030_t2")}}


@needs_chromium
def test_the_csp_still_refuses_an_injected_script_while_the_pages_own_picks_work(out: Path, tmp_path: Path) -> None:
    assert cli("review", out).exit_code == 0
    index = out / "review" / "index.html"
    hostile = index.with_name("hostile.html")  # beside the page: the same relative links, the same CSP
    hostile.write_text(index.read_text("utf-8").replace(
        "</main>", "</main><script>window.pwned = 'script'; localStorage.clear();</script>"
        "<img src=\"nothing.png\" alt=\"\" onerror=\"window.pwned = 'onerror'\">", 1), "utf-8")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(tmp_path / "profile", downloads) as browser:
        browser.open(hostile.as_uri())
        browser.press("1")
        assert browser.js("window.pwned === undefined")
        assert pressed(page_state(browser)) == ["take-sh010_t1"]  # the page's own script runs
        refused = browser.problems()
        # what the console says: the CSP blocked the injected script, and nothing.png is missing; nothing else
        assert any(line.startswith("Executing inline script violates") and "Content Security Policy" in line
                   for line in refused), refused
        assert all("Content Security Policy" in line or "ERR_FILE_NOT_FOUND" in line for line in refused), refused
        exported = json.loads(browser.download("button.export-picks").read_text("utf-8"))
    assert exported["picks"] == {"sh010": {"take": 1, "key": key(out, "sh010_t1")}}
