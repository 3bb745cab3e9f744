"""The run journal read from its end: ``idcli restore`` looks for its take's last entry and stops there.

It parsed the whole ``.idcli/journal.jsonl`` first: a film's journal of 200,000 commit lines (44 MB) cost a restore
1–5.5 s and 300 MB (docs/performance.md, "At film scale: resume, restore, sign").
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from idcli.store import STATE, OutputStore, lines_newest_first


class CountingReads(io.BytesIO):
    """A file that counts the bytes read from it."""

    taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 16])
def test_lines_come_back_last_first_across_any_block_size(block: int) -> None:
    lines = [b"", b"a", b"bb" * 50, b"", b"\xc3\xa9t\xc3\xa9", b"cut {\"event\": ", b"last"]
    text = b"\n".join(lines) + b"\n"
    assert list(lines_newest_first(io.BytesIO(text), block)) == [line for line in reversed(lines) if line]
    # no newline at the end (a line being appended, or cut by a kill) still counts as the last line
    assert list(lines_newest_first(io.BytesIO(b"one\ntwo"), block)) == [b"two", b"one"]
    assert list(lines_newest_first(io.BytesIO(b""), block)) == []


def test_the_newest_lines_are_found_without_reading_the_rest() -> None:
    journal = CountingReads(b"".join(b'{"event": "commit", "n": %d}\n' % i for i in range(50_000)))
    newest = lines_newest_first(journal, 4096)
    assert [json.loads(next(newest))["n"] for _ in range(3)] == [49_999, 49_998, 49_997]
    assert journal.taken <= 4096, journal.taken  # one block of a 1.3 MB journal


def test_the_store_reads_entries_newest_first_skipping_cut_lines(tmp_path: Path) -> None:
    store = OutputStore(tmp_path / "out")
    (store.root / STATE).mkdir(parents=True)
    assert list(store.journal_newest_first()) == []  # no journal yet
    journal = store.root / STATE / "journal.jsonl"
    entries = [{"event": "commit", "shot_id": f"sh{i:03d}", "take": 1} for i in range(300)]
    journal.write_text("".join(json.dumps(e) + "\n" for e in entries) + '{"event": "comm', "utf-8")
    assert list(store.journal_newest_first()) == list(reversed(store.journal_entries())) == entries[::-1]
    assert list(store.journal_newest_first(mentioning="sh007")) == [entries[7]]


def test_a_journal_of_one_endless_line_is_read_no_further_than_an_entry_could_be() -> None:
    # A received journal need not hold newlines: read backwards, its one "line" grew with the file (memory as the
    # whole-file read the hardened reader bounds). No entry is longer than MAX_JOURNAL_LINE_BYTES.
    from idcli.store import MAX_JOURNAL_LINE_BYTES

    handle = CountingReads(b"x" * (MAX_JOURNAL_LINE_BYTES * 4) + b"\n" + b'{"event": "commit"}\n')
    assert list(lines_newest_first(handle)) == [b'{"event": "commit"}']
    assert handle.taken <= MAX_JOURNAL_LINE_BYTES + 2 * (1 << 16)


def test_lines_of_other_events_are_skipped(tmp_path: Path) -> None:
    store = OutputStore(tmp_path / "out")
    (store.root / STATE).mkdir(parents=True)
    entries = [{"event": event, "shot_id": "a", "take": 1} for event in ("commit", "supersede", "restore-begin",
                                                                         "restore", "reuse")]
    (store.root / STATE / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries), "utf-8")
    assert list(store.journal_newest_first(events=("supersede", "restore"))) == [entries[3], entries[1]]
    assert list(store.journal_newest_first(events=())) == entries[::-1]
