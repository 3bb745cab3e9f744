"""An output folder a team shares (group-writable, setgid: docs/reliability.md, "A folder a team shares"): the lock
file every run opens read-write is created group-writable when its folder is (the umask still applies), and a user
who still may not open it is told whose file it is and what permission to fix, with nothing written.

The tests run as root, whom no mode refuses: the second user is simulated by giving the lock file to another user
(root may) and making ``os.open`` refuse it as the system would refuse that user."""

from __future__ import annotations

import errno
import os
import pwd
import stat
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import render_on_cpu
from typer.testing import CliRunner

from idcli.cli import app
from idcli.review.selects import select
from idcli.shell_words import shell_path
from idcli.store import OutputStore

runner = CliRunner()


def refuse_writes_to(monkeypatch: pytest.MonkeyPatch, lock: Path) -> None:
    """``os.open`` refuses ``lock`` for writing as the system refuses a second user whose mode bits say no (root,
    running the tests, is refused nothing)."""
    real_open = os.open

    def second_user_open(name: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(name) == str(lock) and flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(errno.EACCES, "Permission denied", str(name))
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", second_user_open)

SHOTS = """\
    version: 1
    project: shared
    model: {preset: tiny-sd}
    defaults: {size: 64x64, steps: 1, guidance: 1.0}
    shots:
      - {id: s1, prompt: "a lighthouse at dusk"}
"""


@pytest.mark.parametrize(("mask", "folder_mode", "expected"), [
    (0o002, 0o2775, 0o664),  # a team's folder, a team's umask: the next user of the group can open the lock
    # A private umask in a team's folder: the group's still (made 0644 until 2026-12-02, it shut the next user of the
    # group out: test_team_folder.py); the others' bits as the umask says.
    (0o022, 0o2775, 0o664),
    (0o077, 0o2775, 0o660),
    (0o002, 0o755, 0o644),   # a folder only its owner writes in: its lock stays its owner's
], ids=["team umask, team folder", "umask 022, team folder", "umask 077, team folder", "team umask, private folder"])
def test_the_lock_and_journal_are_group_writable_when_their_folder_is(tmp_path: Path, umask: Any, mask: int,
                                                                      folder_mode: int, expected: int) -> None:
    """Created 0644 whatever the folder, the first user's lock file refused every other user of the group (the
    lock is opened read-write by every run) and the journal dropped their lines; and under a private umask (022, most
    systems' default) until 2026-12-02 still."""
    out = tmp_path / "renders"
    (out / ".idcli").mkdir(parents=True)
    (out / ".idcli").chmod(folder_mode)
    umask(mask)
    store = OutputStore(out)
    with store.session():
        store.journal({"event": "run-start"})
    assert stat.S_IMODE((out / ".idcli" / "lock").stat().st_mode) == expected
    assert stat.S_IMODE((out / ".idcli" / "journal.jsonl").stat().st_mode) == expected


def _other_user() -> tuple[int, str]:
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_name
    except KeyError:
        return 4242, "uid 4242"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
@pytest.mark.parametrize("missing", ["the lock file", "the lock's folder"])
def test_a_second_user_refused_the_lock_is_told_whose_it_is_and_what_to_fix(write_shotlist, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           missing: str) -> None:
    """A render by a second user of the group into a folder the first user rendered into with umask 022 said only
    "permission denied while opening OUT/.idcli/lock (Permission denied)": not whose file, nor what to change."""
    path, out = write_shotlist(SHOTS), tmp_path / "renders"
    with OutputStore(out).session():
        pass
    lock = out / ".idcli" / "lock"
    uid, owner = _other_user()
    if missing == "the lock's folder":  # no lock yet: the folder it would be created in refuses
        lock.unlink()
        refused = lock.parent
    else:
        refused = lock
    os.chown(refused, uid, os.stat(refused).st_gid)
    before = sorted((str(p), p.stat().st_mode, p.stat().st_size) for p in out.rglob("*"))
    refuse_writes_to(monkeypatch, lock)
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"])
    monkeypatch.undo()
    assert result.exit_code == 5, result.output
    assert "Traceback" not in result.output
    error = result.stderr
    assert error.startswith(f"idcli: error: {lock} (the output folder's lock) cannot be "), error
    whose = "it" if refused == lock else f"its folder {refused}"
    assert f"by root: {whose} belongs to {owner} (group root, " in error and "is not group-writable" in error, error
    assert f"`chmod -R g+rwX {shell_path(out)}`" in error and "umask 002" in error, error
    # Nothing written: the folder as the first user left it
    assert sorted((str(p), p.stat().st_mode, p.stat().st_size) for p in out.rglob("*")) == before



@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
@pytest.mark.parametrize(("left", "modes", "refused"), [
    ("umask 077", (0o700, 0o600), "its folder"),
    ("chmod -R g+w after umask 077", (0o720, 0o620), "its folder"),  # .idcli still not searchable
    ("a lock -rw--w---- in a searchable folder", (0o770, 0o620), "it"),  # a lock is opened read-write
])
def test_a_folder_first_rendered_under_umask_077_is_told_what_fixes_it(write_shotlist, tmp_path: Path, umask: Any,
                                                                      monkeypatch: pytest.MonkeyPatch, left: str,
                                                                      modes: tuple[int, int], refused: str) -> None:
    """A first render under ``umask 077`` (in a setgid team folder) leaves ``.idcli`` drwx--S--- and its lock
    -rw-------: the next user of the group may not even look into ``.idcli``, so the refusal fell back to
    "permission denied while opening OUT/.idcli/lock"; and the fix it names elsewhere, ``chmod -R g+w``, left the lock
    -rw--w---- and the folder unsearchable, still refused (a lock is opened read-write; a folder is entered with x),
    then in the system's words alone. The refusal names the folder, and ``chmod -R g+rwX``, which does fix it."""
    path, out = write_shotlist(SHOTS), tmp_path / "renders"
    umask(0o077)
    with OutputStore(out).session():
        pass
    state, lock = out / ".idcli", out / ".idcli" / "lock"
    uid, owner = _other_user()
    for each, mode in zip((state, lock), modes, strict=True):
        each.chmod(mode)
        os.chown(each, uid, os.stat(each).st_gid)
    before = sorted((str(p), p.stat().st_mode, p.stat().st_size) for p in out.rglob("*"))
    real_lstat = os.lstat

    def second_user_lstat(name: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(name) == str(lock) and not modes[0] & stat.S_IXGRP:  # the group may not search .idcli
            raise PermissionError(errno.EACCES, "Permission denied", str(name))
        return real_lstat(name, *args, **kwargs)

    refuse_writes_to(monkeypatch, lock)
    monkeypatch.setattr(os, "lstat", second_user_lstat)
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"])
    monkeypatch.undo()
    assert result.exit_code == 5, result.output
    error = result.stderr
    if refused == "it":
        whose = f"opened for writing by root: it belongs to {owner} (group root, {stat.filemode(0o100620)})"
    else:
        folder_mode = stat.filemode(stat.S_IFDIR | modes[0])
        whose = f"reached by root: its folder {state} belongs to {owner} (group root, {folder_mode})"
    assert error.startswith(f"idcli: error: {lock} (the output folder's lock) cannot be {whose}"), error
    assert f"`chmod -R g+rwX {shell_path(out)}`" in error and "umask 002" in error, error
    assert sorted((str(p), p.stat().st_mode, p.stat().st_size) for p in out.rglob("*")) == before



@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_lock_that_got_its_creators_own_group_names_the_folders_group(write_shotlist, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A team's folder that is not setgid: what ana creates in it gets her own group (``ana``), not the folder's
    (``film``), so ben, of film, is refused her lock and was told to "add ben to group ana" (her personal group) and
    to ``chmod -R g+rwX``, neither of which gives the lock to film. The refusal names the folder's group and the fix:
    ``chgrp -R film OUT``, the folders setgid so that what is created next keeps film."""
    import grp

    path, out = write_shotlist(SHOTS), tmp_path / "renders"
    with OutputStore(out).session():
        pass
    state, lock = out / ".idcli", out / ".idcli" / "lock"
    uid, owner = _other_user()
    own_group = 4343  # the creator's own group, none of the refused user's (root's) groups
    for each in (state, lock):
        os.chown(each, uid, own_group)
    mine = {os.getegid(), *os.getgroups()}
    assert own_group not in mine and out.stat().st_gid in mine
    team = grp.getgrgid(out.stat().st_gid).gr_name
    before = sorted((str(p), p.stat().st_mode, p.stat().st_size) for p in out.rglob("*"))
    refuse_writes_to(monkeypatch, lock)
    result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q"])
    monkeypatch.undo()
    assert result.exit_code == 5, result.output
    error = result.stderr
    assert f"belongs to {owner} (group gid {own_group}, -rw-r--r--), not to {out}'s group, {team}" in error, error
    assert "add root to group" not in error, error
    folder = shell_path(out)
    assert (f"`chgrp -R {team} {folder}; chmod -R g+rwX {folder}; find {folder} -type d -exec chmod g+s {{}} +`"
            in error), error
    assert sorted((str(p), p.stat().st_mode, p.stat().st_size) for p in out.rglob("*")) == before


def test_a_teams_render_then_select_leave_every_lock_group_writable(write_shotlist, tmp_path: Path, engine_factory,
                                                                     umask: Any) -> None:
    """One of a team (``umask 002``, a group-writable setgid folder) renders, then picks a take: the locks the next
    one's render and select open read-write, and the journal they append to, are group-writable. The picks' lock was
    created 0644, so the next one's `idcli select` was told `output folder OUT is not writable`."""
    shots, out = write_shotlist(SHOTS), tmp_path / "renders"
    out.mkdir()
    out.chmod(0o2775)
    umask(0o002)
    render_on_cpu(shots, out, engine_factory, qa=False)
    select(out, "s1=1")
    modes = {name: stat.S_IMODE((out / ".idcli" / name).stat().st_mode)
             for name in ("lock", "journal.jsonl", "selects.lock")}
    assert modes == {"lock": 0o664, "journal.jsonl": 0o664, "selects.lock": 0o664}


@pytest.mark.parametrize("wait", [False, True], ids=["at once", "--wait"])
def test_a_fifo_planted_as_the_lock_is_refused_naming_it(write_shotlist, tmp_path: Path, wait: bool) -> None:
    """A FIFO at ``OUT/.idcli/lock`` (planted on a shared folder, or in a received one): ``render --wait`` read who
    held it with pread and stopped with ``idcli: error: Illegal seek``, naming no file; without ``--wait`` the run
    took the FIFO as its lock, where no holder can be written and ``render``'s early look at the lock skips it. It is
    refused as a link planted there is, naming the file and what to do, exit 5, nothing rendered."""
    from hang_watchdog import no_hang

    path, out = write_shotlist(SHOTS), tmp_path / "renders"
    (out / ".idcli").mkdir(parents=True)
    os.mkfifo(out / ".idcli" / "lock")
    with no_hang(60):
        result = runner.invoke(app, ["render", str(path), "--out", str(out), "--device", "cpu", "-q",
                                     *(["--wait"] if wait else [])])
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith(f"idcli: error: {out / '.idcli' / 'lock'} is not a regular file (a FIFO); "), \
        result.stderr
    assert sorted(p.name for p in out.rglob("*")) == [".idcli", "lock"]



@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_user_refused_the_picks_lock_is_told_whose_it_is(write_shotlist, tmp_path: Path, engine_factory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`idcli select` opens ``.idcli/selects.lock`` read-write too: a second user refused it (one made 0644 by a
    select before 2026-12-02) was told ``output folder OUT is not writable (Permission denied)``, as for a read-only
    share, in a folder she may write in. She is told whose the file is and what to fix, as for the folder's lock."""
    shots, out = write_shotlist(SHOTS), tmp_path / "renders"
    render_on_cpu(shots, out, engine_factory, qa=False)
    select(out, "s1=1")
    lock = out / ".idcli" / "selects.lock"
    lock.chmod(0o644)
    uid, owner = _other_user()
    os.chown(lock, uid, os.stat(lock).st_gid)
    picks = (out / "selects.json").read_bytes()
    refuse_writes_to(monkeypatch, lock)
    result = runner.invoke(app, ["select", str(out), "s1=none"])
    monkeypatch.undo()
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith(f"idcli: error: {lock} (idcli select's lock) cannot be opened for writing by "
                                    f"root: it belongs to {owner} (group root, -rw-r--r--) and is not "
                                    "group-writable"), result.stderr
    assert f"`chmod -R g+rwX {shell_path(out)}`" in result.stderr, result.stderr
    assert (out / "selects.json").read_bytes() == picks


def test_a_link_planted_as_the_picks_lock_is_refused_as_the_folders_lock_is(write_shotlist, tmp_path: Path,
                                                                              engine_factory) -> None:
    """A link (dangling here) planted at ``.idcli/selects.lock``: `idcli select` said ``OUT/.idcli/selects.lock: Too
    many levels of symbolic links`` where `render` says of its own lock ``… is a symbolic link; refusing to use it``.
    The same words now, exit 5, the link's target not created and the picks unchanged."""
    shots, out = write_shotlist(SHOTS), tmp_path / "renders"
    render_on_cpu(shots, out, engine_factory, qa=False)
    lock, target = out / ".idcli" / "selects.lock", tmp_path / "elsewhere"
    lock.symlink_to(target)
    result = runner.invoke(app, ["select", str(out), "s1=1"])
    assert result.exit_code == 5, result.output
    assert result.stderr == f"idcli: error: {lock} is a symbolic link; refusing to use it\n", result.stderr
    assert not target.exists() and not (out / "selects.json").exists()
