"""Two users of one group taking turns on one output folder (a team's: group-writable, setgid; docs/reliability.md,
"A folder a team shares"): what idcli creates there is group-writable whatever the umask, so the second user's
retake, review, select and export of the first user's renders go through; a folder an earlier idcli left shut is
named with the command that opens it.

The tests run as root, whom no mode refuses: the first user's files are given to another uid, and the second user is
the test process refused what the kernel refuses a user of the team's group by the mode bits (second_user.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import render_on_cpu
from second_user import act_as_second_user, give_to, modes
from typer.testing import CliRunner

import idcli
from idcli.cli import app
from idcli.shared_files import make_folders, share_created
from idcli.shell_words import shell_path

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")

runner = CliRunner()
TEAM_GID, ANA, ADMIN = 4343, 4241, 4240  # the team's group (no name), the first user, who made the folder

SHOTS = """\
    version: 1
    project: shared
    model: {preset: tiny-sd}
    defaults: {size: 64x64, steps: 1, guidance: 1.0}
    shots:
      - {id: s1, prompt: "a lighthouse at dusk"}
"""


def team_folder(tmp_path: Path) -> Path:
    """``show``, as an admin makes a team's folder: ``chgrp film; chmod 2775``."""
    show = tmp_path / "show"
    show.mkdir()
    os.chown(show, ADMIN, TEAM_GID)
    show.chmod(0o2775)
    return show


def second_user_renders(monkeypatch: pytest.MonkeyPatch, shots: Path, out: Path) -> Any:
    """`idcli render --force` of OUT as the team's second user, the first user's files refused as the kernel would."""
    act_as_second_user(monkeypatch, out.parent, TEAM_GID)
    result = cli("render", shots, "--out", out, "--device", "cpu", "--force", "-q")
    monkeypatch.undo()
    return result


def cli(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def ana_renders_reviews_and_exports(shots: Path, out: Path, engine_factory: Any) -> None:
    render_on_cpu(shots, out, engine_factory, qa=False)
    for args in (("review", out), ("select", out, "s1=1"), ("export", out, "--otio", out / "cut" / "cut.otio")):
        assert (result := cli(*args)).exit_code == 0, (args, result.output)
    give_to(ANA, out.parent)


def not_shared(show: Path) -> dict[str, str]:
    """What under ``show`` the group may not read and write (a folder: and search), or others may write."""
    wrong = {}
    for name, mode in modes(show).items():
        folder = mode.startswith("d")
        if mode[4:6] != "rw" or (folder and mode[6] not in "xs") or mode[8] == "w":
            wrong[name] = mode
    return wrong


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002], ids=["umask 022", "umask 077", "umask 002"])
def test_what_idcli_creates_in_a_teams_folder_is_group_writable_whatever_the_umask(
        write_shotlist, tmp_path: Path, engine_factory, umask: Any, monkeypatch: pytest.MonkeyPatch,
        mask: int) -> None:
    """Ana renders, reviews, picks and exports under her umask (022, most systems' default) into the team's folder;
    Ben, of the team's group, retakes the shot, restores Ana's take, reviews, picks, exports and delivers there too.
    Every file and folder idcli made took the umask's mode (a shot's folder ``drwxr-sr-x``, the lock ``-rw-r--r--``),
    so Ben's retake was refused the lock; and under ``umask 002`` every file written to a temporary and renamed
    (images, sidecars, the page, the cut) was ``-rw-r--r--`` still. Now all are group-readable and -writable (folders
    group-searchable), none writable by others, the others' bits as the umask left them."""
    shots, show = write_shotlist(SHOTS), team_folder(tmp_path)
    out = show / "renders"  # made by Ana's render
    umask(mask)
    ana_renders_reviews_and_exports(shots, out, engine_factory)
    act_as_second_user(monkeypatch, show, TEAM_GID)
    render_on_cpu(shots, out, engine_factory, qa=False, force=True)  # Ben's retake: ana's take to .idcli/superseded
    for args in (("restore", out, "s1_t1"), ("review", out), ("select", out, "s1=none"),
                 ("export", out, "--otio", out / "cut" / "cut.otio", "--movie", out / "cut" / "cut.mp4"),
                 ("deliver", out, show / "delivery")):
        assert (result := cli(*args)).exit_code == 0, (args, result.output)
    monkeypatch.undo()
    # Ana's take back in place, Ben's kept aside by the restore; the delivery copied it
    assert len([p for p in (out / ".idcli" / "superseded" / "s1").iterdir() if p.suffix == ".png"]) == 1, modes(out)
    assert (show / "delivery" / "s1_take1.png").is_file(), modes(show)
    made = modes(show)
    assert not not_shared(show), not_shared(show)
    readable = not mask & 0o004  # the others' bits as the umask left them
    assert made["renders/s1"] == made["delivery"] == "drwxrws" + ("r-x" if readable else "---"), made
    file_mode = "-rw-rw-" + ("r--" if readable else "---")
    assert made["renders/.idcli/lock"] == made["renders/cut/cut.mp4"] == made["delivery/s1_take1.png"] == file_mode, \
        made


def test_a_take_an_earlier_idcli_left_shut_is_named_with_the_fix(write_shotlist, tmp_path: Path, engine_factory,
                                                                  umask: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shot's folder an idcli before 2026-12-02 made under ``umask 022`` (``drwxr-sr-x``, ana's): Ben's retake
    was told ``cannot move OUT/s1/s1_t1.png aside to …: Permission denied``, naming neither whose folder it is nor
    what to change. It names the folder, its owner and mode, and ``chmod -R g+rwX OUT``; the take stays where it is."""
    shots, out = write_shotlist(SHOTS), team_folder(tmp_path) / "renders"
    umask(0o022)
    render_on_cpu(shots, out, engine_factory, qa=False)
    give_to(ANA, out.parent)
    (out / "s1").chmod(0o2755)  # as an earlier idcli made it under umask 022
    before = modes(out)
    result = second_user_renders(monkeypatch, shots, out)
    assert result.exit_code == 5, result.output
    image = out / "s1" / "s1_t1.png"
    assert result.stderr.startswith(f"idcli: error: {image} cannot be moved by root: its folder {out / 's1'} belongs "
                                    f"to uid {ANA} (group gid {TEAM_GID}, drwxr-sr-x) and is not group-writable; "), \
        result.stderr
    assert f"`chmod -R g+rwX {shell_path(out)}`" in result.stderr, result.stderr
    assert "Traceback" not in result.output
    after = modes(out)
    assert {name: after[name] for name in before} == before and (out / "s1" / "s1_t1.json").is_file(), after


def test_a_file_written_in_a_folder_left_shut_is_named_with_the_fix(write_shotlist, tmp_path: Path,
                                                                     engine_factory, umask: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The review page's folder an earlier idcli made ``drwxr-sr-x`` (ana's): Ben's ``idcli review`` was told
    ``permission denied while writing OUT/review/index.html (Permission denied)``. It names the folder and the fix."""
    shots, out = write_shotlist(SHOTS), team_folder(tmp_path) / "renders"
    umask(0o022)
    render_on_cpu(shots, out, engine_factory, qa=False)
    assert cli("review", out).exit_code == 0
    give_to(ANA, out.parent)
    (out / "review").chmod(0o2755)
    act_as_second_user(monkeypatch, out.parent, TEAM_GID)
    result = cli("review", out)
    monkeypatch.undo()
    assert result.exit_code == 5, result.output
    assert f"cannot be created by root: its folder {out / 'review'} belongs to uid {ANA} (group gid {TEAM_GID}, " \
           "drwxr-sr-x) and is not group-writable" in result.stderr, result.stderr
    assert f"`chmod -R g+rwX {shell_path(out)}`" in result.stderr, result.stderr


def test_an_output_folder_an_earlier_idcli_left_shut_is_named_with_the_fix(write_shotlist, tmp_path: Path,
                                                                          engine_factory, umask: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The output folder itself made ``drwxr-sr-x`` by an earlier idcli under ``umask 022`` (Ana's): every command of
    Ben's that writes there said ``output folder OUT is not writable`` (checked as two real users: render, restore,
    review, select, export alike), as for a read-only share. It names whose folder it is, its mode and the fix."""
    shots, out = write_shotlist(SHOTS), team_folder(tmp_path) / "renders"
    umask(0o022)
    render_on_cpu(shots, out, engine_factory, qa=False)
    give_to(ANA, out.parent)
    out.chmod(0o2755)
    result = second_user_renders(monkeypatch, shots, out)
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith(f"idcli: error: {out} (the output folder) cannot be written in by root: it "
                                    f"belongs to uid {ANA} (group gid {TEAM_GID}, drwxr-sr-x) and is not "
                                    "group-writable; "), result.stderr
    assert f"`chmod -R g+rwX {shell_path(out)}`" in result.stderr, result.stderr


def _copied_in(out: Path, owner: int, group: int) -> None:
    """``out`` and everything in it given to ``owner`` and ``group``, modes kept: as ``cp -a`` run by root (or a
    tarball unpacked by root) leaves a folder brought in from another machine."""
    for path in (out, *sorted(out.rglob("*"))):
        os.chown(path, owner, group, follow_symlinks=False)


def _group_of_this_machine(monkeypatch: pytest.MonkeyPatch, name: str, gid: int, members: list[str]) -> None:
    """The system's group database lists ``name`` (``gid``) with ``members``, as ``/etc/group`` lists a team's group
    (``film:x:4444:ana,carl``); the test cannot add one to the machine's."""
    import grp

    entry = grp.struct_group((name, "x", gid, members))
    real_getgrgid, real_getgrall = grp.getgrgid, grp.getgrall
    monkeypatch.setattr(grp, "getgrgid", lambda wanted: entry if wanted == gid else real_getgrgid(wanted))
    monkeypatch.setattr(grp, "getgrall", lambda: [*real_getgrall(), entry])


def test_a_strangers_folder_copied_in_is_not_answered_with_a_group_to_join(
        write_shotlist, tmp_path: Path, engine_factory, umask: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Failed before 2026-12-02: an output folder copied in from another machine (its owner a uid and its group a
    number this machine has no name for, none of Ben's) told Ben to "add root to group gid 4445" and to have the
    team's folder made group-writable, when it is already: no group of his gives it to him. It says whose it is and
    the fixes that do: root's ``chown``, or a copy of his own."""
    shots, out = write_shotlist(SHOTS), team_folder(tmp_path) / "renders"
    umask(0o002)
    render_on_cpu(shots, out, engine_factory, qa=False)
    stranger, strangers_group = 4239, 4445
    _copied_in(out, stranger, strangers_group)
    before = modes(out)
    result = second_user_renders(monkeypatch, shots, out)
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith(f"idcli: error: {out} (the output folder) cannot be written in by root: it "
                                    f"belongs to uid {stranger} (group gid {strangers_group}, drwxrwsr-x), who shares "
                                    "no group with root "), result.stderr
    assert f"root gives it to root, `chown -R root: {shell_path(out)}`" in result.stderr, result.stderr
    assert f"`cp -R {shell_path(out)} COPY`" in result.stderr, result.stderr
    assert "add root to group" not in result.stderr.replace("adding root to group gid 4445 is no fix", "")
    assert "umask 002" not in result.stderr and "Traceback" not in result.output
    assert modes(out) == before


def test_a_teams_folder_of_a_group_the_user_is_not_in_says_to_join_it(
        write_shotlist, tmp_path: Path, engine_factory, umask: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stranger's words are not given to a team's folder whose group Ben has not joined yet (``film``, which ana
    and carl are in): adding him to it is the fix."""
    shots, out = write_shotlist(SHOTS), team_folder(tmp_path) / "renders"
    umask(0o002)
    render_on_cpu(shots, out, engine_factory, qa=False)
    film = 4445
    _copied_in(out, ANA, film)
    _group_of_this_machine(monkeypatch, "film", film, ["ana", "carl"])
    result = second_user_renders(monkeypatch, shots, out)
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith(f"idcli: error: {out} (the output folder) cannot be written in by root: it "
                                    f"belongs to uid {ANA} (group film, drwxrwsr-x), and root is not in its group: "
                                    "add root to group film; "), result.stderr
    assert "shares no group" not in result.stderr, result.stderr


def test_a_folder_only_its_owner_writes_in_keeps_the_umasks_modes(write_shotlist, tmp_path: Path, engine_factory,
                                                                  umask: Any) -> None:
    """Outside a team's folder nothing changes: a render into a ``drwxr-xr-x`` folder under ``umask 022`` leaves
    ``drwxr-xr-x`` folders and ``-rw-r--r--`` files."""
    shots, out = write_shotlist(SHOTS), tmp_path / "mine"
    out.mkdir()
    out.chmod(0o755)
    umask(0o022)
    render_on_cpu(shots, out, engine_factory, qa=False)
    made = modes(out)
    assert {m for m in made.values() if m.startswith("d")} == {"drwxr-xr-x"}, made
    assert {m for m in made.values() if not m.startswith("d")} == {"-rw-r--r--"}, made


def test_idcli_render_makes_its_missing_output_folders_group_writable_in_a_teams_folder(
        write_shotlist, tmp_path: Path, engine_factory, umask: Any) -> None:
    """``--out renders/ep1/day3`` made with ``Path.mkdir(parents=True)`` under ``umask 022``: ``ep1`` and ``day3``
    ``drwxr-sr-x`` in the team's folder; now group-writable, as what is made inside them."""
    shots, team = write_shotlist(SHOTS), team_folder(tmp_path)
    umask(0o022)
    idcli.render(idcli.load_shotlist(shots), team / "ep1" / "day3", device="cpu", engine_factory=engine_factory,
                 qa=False)
    made = modes(team)
    assert made["ep1"] == made["ep1/day3"] == "drwxrwsr-x", made
    assert stat.S_IMODE((team / "ep1" / "day3" / "s1" / "s1_t1.png").stat().st_mode) == 0o664


def test_an_identity_pack_written_into_a_teams_folder_is_group_writable(selfies: Path, tmp_path: Path,
                                                                      umask: Any) -> None:
    """``encode-identity -o show/characters/mara.idpack`` under ``umask 022``: the pack (and its contact sheet) were
    ``-rw-r--r--`` and ``characters`` ``drwxr-sr-x``, so the next user of the group could not encode Mara again; now
    the group's, as a render's takes."""
    show = team_folder(tmp_path)
    umask(0o022)
    pack = show / "characters" / "mara.idpack"
    result = cli("encode-identity", selfies / "mara_1.jpg", "--name", "mara", "-o", pack)
    assert result.exit_code == 0, result.output
    made = modes(show)
    assert made["characters"] == "drwxrwsr-x" and made["characters/mara.idpack"] == "-rw-rw-r--", made
    assert not not_shared(show), made


@pytest.mark.parametrize("folder_mode", [0o775, 0o1777], ids=["group-writable, not setgid", "like /tmp"])
def test_a_group_writable_folder_whose_group_what_idcli_makes_does_not_get_keeps_the_umasks_modes(
        write_shotlist, tmp_path: Path, engine_factory, umask: Any, folder_mode: int) -> None:
    """A folder its group may write in but that is not setgid (``chmod 775``, or ``/tmp``'s ``1777``): what idcli
    creates there gets the user's own group, not the folder's (on many systems ``users``, every account on the
    machine). Giving that group write made every take, sidecar and shot folder of a `render --out /tmp/renders`
    writable by every user in it. The group's write is given only where what is made has the folder's group (a setgid
    folder); elsewhere the umask's modes, as in a folder only its owner writes in."""
    shots, show = write_shotlist(SHOTS), tmp_path / "show"
    show.mkdir()
    os.chown(show, ADMIN, TEAM_GID)
    show.chmod(folder_mode)
    umask(0o022)
    out = show / "renders"
    render_on_cpu(shots, out, engine_factory, qa=False)
    assert (out / "s1" / "s1_t1.png").stat().st_gid != TEAM_GID  # made with this process's own group
    made = modes(show)
    assert {m for m in made.values() if m.startswith("d")} == {"drwxr-xr-x"}, made
    assert {m for m in made.values() if not m.startswith("d")} == {"-rw-r--r--"}, made


def test_a_link_planted_where_idcli_just_made_something_is_not_given_to_the_group(tmp_path: Path, umask: Any,
                                                                                  monkeypatch: pytest.MonkeyPatch
                                                                                  ) -> None:
    """Another user of the team's folder swaps the folder idcli just made (or an export's temporary a library wrote
    by name) for a hard link to a file of this user's outside it (``-rw-------``, the team's group: a key, a config):
    the group's read and write given by path went to that file, and the other user could read and change it. A
    file with more than one name, or a file where a folder was made, keeps its mode."""
    show = team_folder(tmp_path)
    private = tmp_path / "private.key"
    private.write_bytes(b"secret")
    os.chown(private, 0, TEAM_GID)
    private.chmod(0o600)
    umask(0o022)
    planted = show / "cut.mp4"
    os.link(private, planted)
    share_created(planted, show)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    real_mkdir = os.mkdir

    def swapped(path: Any, *args: Any, **kwargs: Any) -> None:
        real_mkdir(path, *args, **kwargs)
        if os.path.basename(path) == "s1":  # the swap between idcli's mkdir and its chmod
            os.rmdir(path)
            os.link(private, path)

    monkeypatch.setattr(os, "mkdir", swapped)
    make_folders(show / "renders" / "s1")
    monkeypatch.undo()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert modes(show)["renders"] == "drwxrwsr-x"
