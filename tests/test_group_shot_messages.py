"""What validate says about group shots (docs/shot-lists.md, docs/method.md "Several characters"): a hint must
lead somewhere that validates."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from idcli.cli import app

SHOTS = """\
version: 1
project: dinner
model: {preset: tiny-sd}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
  theo: {selfies: [selfies/theo_1.jpg], description: a young man}
  ines: {selfies: [selfies/ines_1.jpg], description: a blonde girl}
  nadia: {selfies: [selfies/mara_2.jpg], description: a woman with navy braids}
  ravi: {selfies: [selfies/theo_2.jpg], description: a grey-haired man}
  olga: {selfies: [selfies/ines_2.jpg], description: an old woman}
  piet: {selfies: [selfies/theo_1.jpg], description: a bald man}
shots:
  - id: crowd
    prompt: "{mara}, {theo}, {ines}, {nadia}, {ravi}, {olga} and {piet} at a long dinner table"
    method: single
  - id: pair
    prompt: "{mara} and {theo} whisper at the table"
    method: single
"""


def test_the_single_method_note_does_not_suggest_dual_line_beyond_its_limit(write_shotlist) -> None:
    path = write_shotlist(SHOTS)
    report = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    assert report["ok"] is True, report
    hints = {n["path"]: n["hint"] for n in report["notes"] if "conditions one identity" in n["message"]}
    # Seven characters: dual-line is refused for them (at most 6), so the note says what can be done instead.
    assert hints["shots[0].prompt"] == ("a dual-line shot may name at most 6 characters: split the shot for one "
                                        "identity line per character")
    assert hints["shots[1].prompt"] == "use 'method: dual-line' for one identity line per character"
    # The hint for the crowd is true: the same shot as dual-line is refused, at most 6 is accepted.
    dual = write_shotlist(SHOTS.replace("    method: single\n  - id: pair", "  - id: pair"), "dual.yaml")
    refused = CliRunner().invoke(app, ["validate", str(dual)])
    assert refused.exit_code == 2 and "may name at most 6" in refused.output
