# ruff: noqa: E501  (each mutation quotes a line of idcli as it is; wrapping would hide which line)
"""A hand-made mutation pass over the code that keeps idcli's promises (docs/testing.md).

Each mutation is a bug a real change could introduce (a flipped comparison, a dropped fsync or check, an
off-by-one, two fields swapped): one exact text replacement in one file. For each, the file is mutated, the
test files that own the area run (``pytest -x``), and the file is put back byte for byte, whatever happens.
A mutation is *killed* when a test fails, *survived* when every test passes, *timed out* when the tests ran past
TIMEOUT_S (a hang the mutation caused, or only a busy machine: run it again alone).

    PYTHONPATH=$PWD python tools/mutation_pass.py --check       # every mutation applies
    PYTHONPATH=$PWD python tools/mutation_pass.py               # all (40-90 minutes on 2 cores: docs/testing.md)
    PYTHONPATH=$PWD python tools/mutation_pass.py state-hash-ignored keys-size
    PYTHONPATH=$PWD python tools/mutation_pass.py keys-size --tests tests/test_promise_guards.py

It refuses to mutate a file with uncommitted changes (putting it back could not tell the two apart) and never
commits anything. One test run at a time, one thread each: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 900


@dataclass(frozen=True)
class Mutation:
    name: str
    area: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


M = Mutation
ATOMIC = ("tests/test_hardening.py", "tests/test_temporaries.py", "tests/test_writer.py")
RESUME = ("tests/test_render.py", "tests/test_hardening.py")
KEYS = ("tests/test_hardening.py", "tests/test_render.py", "tests/test_expression_shots.py")
DETERMINISM = ("tests/test_render.py", "tests/test_engine.py")
PATHS = ("tests/test_hardening.py", "tests/test_hostile_outputs.py", "tests/test_hostile_records.py")
YAML = ("tests/test_shotlist.py", "tests/test_fuzz_shotlist.py")
HOSTILE = ("tests/test_png_chunks.py", "tests/test_hardening.py", "tests/test_hostile_inputs.py")
QA = ("tests/test_review_qa.py", "tests/test_review_qa_plates.py")
SELECTS = ("tests/test_review_export.py", "tests/test_review_page.py", "tests/test_hostile_review.py",
           "tests/test_retakes_kept.py")
PROVENANCE = ("tests/test_provenance.py", "tests/test_hostile_records.py", "tests/test_hostile_signing.py",
              "tests/test_reproduce.py")
DELIVERY = ("tests/test_delivery.py", "tests/test_delivery_tour.py")

MUTATIONS: list[Mutation] = [
    # -- atomic commits, no partial output at final paths --------------------------------------------------
    M("atomic-no-fsync", "atomic commits", "idcli/safeio.py",
      "            os.fsync(handle.fileno())\n", "            pass\n", ATOMIC,
      "atomic_write renames without fsyncing the file"),
    M("atomic-no-dir-fsync", "atomic commits", "idcli/safeio.py",
      "        raise\n    fsync_dir(final.parent)\n", "        raise\n", ATOMIC,
      "atomic_write never fsyncs the folder after the rename"),
    M("atomic-keep-temporary", "atomic commits", "idcli/safeio.py",
      "            tmp.unlink()\n        raise\n", "            pass\n        raise\n", ATOMIC,
      "a failed write leaves its temporary behind"),
    M("atomic-write-in-place", "atomic commits", "idcli/safeio.py",
      "    tmp = temporary_path(final)\n    try:\n        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)",
      "    tmp = temporary_path(final)\n    try:\n        tmp = final\n"
      "        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)", ATOMIC,
      "atomic_write writes straight to the final path"),
    M("commit-sidecar-first", "atomic commits", "idcli/store.py",
      "            self._write_at(image_path, png)\n"
      "        self._write_at(sidecar_path, sidecar_bytes(sidecar))\n",
      "        self._write_at(sidecar_path, sidecar_bytes(sidecar))\n"
      "        if png:\n            self._write_at(image_path, png)\n",
      ("tests/test_faults.py", *ATOMIC, "tests/test_render.py"), "the commit marker (sidecar) is written before the image"),
    M("clean-any-dotfile", "atomic commits", "idcli/store.py",
      "if not (entry.name.startswith(\".\") and entry.name.endswith(TMP_SUFFIX)):",
      "if not (entry.name.startswith(\".\") or entry.name.endswith(TMP_SUFFIX)):", ATOMIC,
      "the start-of-run cleanup removes every dot-file of a shot folder"),
    M("clean-live-writer", "atomic commits", "idcli/store.py",
      "if entry.is_dir(follow_symlinks=False) or safeio.written_by_a_running_writer(entry.name):",
      "if entry.is_dir(follow_symlinks=False):", ATOMIC,
      "the cleanup removes a temporary a running writer (review, select) is still writing"),
    M("queue-goes-on-after-failure", "atomic commits", "idcli/writer.py",
      "        except BaseException:\n            self._stopped = True\n            raise\n",
      "        except BaseException:\n            raise\n", (*ATOMIC, "tests/test_render.py", "tests/test_faults.py"),
      "a failed commit (disk full) does not stop the commits queued behind it"),
    # -- exact resume ------------------------------------------------------------------------------------
    M("state-hash-ignored", "exact resume", "idcli/store.py",
      "            if actual != expected:\n                return JobState(\"stale\", \"the image does not match its sidecar\")\n",
      "", RESUME, "a damaged image whose sidecar is intact counts as done"),
    M("state-key-ignored", "exact resume", "idcli/store.py",
      "            if sidecar.get(\"job_key\") != job.key:", "            if False:", RESUME,
      "an image of an edited shot counts as done"),
    M("state-damaged-is-modified", "exact resume", "idcli/store.py",
      "if actual is not None and actual != expected and expected and is_whole_image(image):",
      "if actual is not None and actual != expected and expected:", RESUME,
      "a damaged image is kept as 'edited by hand' instead of rendered again"),
    M("state-recover-any-record", "exact resume", "idcli/store.py",
      "            if record and record.get(\"job_key\") == job.key:", "            if record:", RESUME,
      "an image without a sidecar is recovered as this job whatever job its record names"),
    M("state-missing-image-done", "exact resume", "idcli/store.py",
      "            if actual is None:\n                return JobState(\"stale\", \"the image is missing\"",
      "            if actual is None and False:\n                return JobState(\"stale\", \"the image is missing\"",
      RESUME, "a sidecar whose image was deleted counts as done"),
    M("supersede-overwrites", "exact resume", "idcli/store.py",
      "            moved = move_aside(self.root, job.shot_id, job.stem, job.image_relpath, job.sidecar_relpath,\n"
      "                               job.mask_relpath)\n",
      "            moved = None\n", (*RESUME, "tests/test_everyday_trust.py", "tests/test_retakes_kept.py"),
      "a new render overwrites the take it replaces instead of keeping it in .idcli/superseded"),
    M("journal-not-written", "exact resume", "idcli/store.py",
      "                os.write(fd, line.encode(\"utf-8\"))\n", "                pass\n",
      (*RESUME, "tests/test_faults.py"), "commits are not journalled"),
    # -- job keys ----------------------------------------------------------------------------------------
    M("keys-no-seed", "job keys", "idcli/job_keys.py",
      "        \"seed\": request.seed,\n", "", KEYS, "the seed is not in the key"),
    M("keys-no-steps", "job keys", "idcli/job_keys.py",
      "        \"steps\": request.steps,\n", "", KEYS, "the step count is not in the key"),
    M("keys-no-sampler", "job keys", "idcli/job_keys.py",
      "        \"sampler\": request.sampler,\n", "", KEYS, "the sampler is not in the key"),
    M("keys-size", "job keys", "idcli/job_keys.py",
      "        \"size\": [request.width, request.height],\n", "        \"size\": [request.width, request.width],\n",
      KEYS, "the height is not in the key (width written twice)"),
    M("keys-no-guidance", "job keys", "idcli/job_keys.py",
      "        \"guidance\": request.guidance if cfg else 1.0,\n", "        \"guidance\": 1.0,\n", KEYS,
      "the guidance scale is not in the key"),
    M("keys-negative-without-cfg", "job keys", "idcli/job_keys.py",
      "        \"negative_prompt\": request.negative_prompt if cfg else \"\",\n",
      "        \"negative_prompt\": request.negative_prompt,\n", KEYS,
      "a negative prompt that cannot change the image (no guidance) changes the key"),
    M("keys-no-strength", "job keys", "idcli/job_keys.py",
      "        identity = {\"identity_key\": condition.key, \"strength\": request.identity_strength}\n",
      "        identity = {\"identity_key\": condition.key}\n", KEYS,
      "the identity strength is not in the key"),
    M("keys-no-windows", "job keys", "idcli/job_keys.py",
      "    windows = {\"text_windows\": request.text_windows} if request.text_windows > 1 else {}\n",
      "    windows = {}\n", (*KEYS, "tests/test_prompt_syntax.py",
                         "tests/test_multi_character.py::test_identity_line_prompts_count_towards_the_jobs_clip_windows"),
      "a prompt's CLIP window count is not in the key"),
    # -- determinism -------------------------------------------------------------------------------------
    M("noise-first-seed", "determinism", "idcli/engine/core.py",
      "generator=torch.Generator(\"cpu\").manual_seed(r.seed)", "generator=torch.Generator(\"cpu\").manual_seed(r0.seed)",
      DETERMINISM, "every job of a batch takes the first job's noise"),
    M("noise-shared-generator", "determinism", "idcli/engine/core.py",
      "        noise = [torch.randn(shape, generator=torch.Generator(\"cpu\").manual_seed(r.seed), dtype=torch.float32)\n"
      "                 for r in requests]\n",
      "        shared = torch.Generator(\"cpu\").manual_seed(r0.seed)\n"
      "        noise = [torch.randn(shape, generator=shared, dtype=torch.float32)\n                 for r in requests]\n",
      DETERMINISM, "one generator for the batch: an image depends on its place in the batch"),
    M("derived-seed-off-by-one", "determinism", "idcli/plan.py",
      "    return given + [derived_seed(shot.id, take) for take in range(len(given) + 1, takes + 1)]",
      "    return given + [derived_seed(shot.id, take) for take in range(len(given), takes)]",
      (*KEYS, "tests/test_retakes_kept.py"), "derived seeds shift by one take"),
    M("derived-seed-unstable", "determinism", "idcli/plan.py",
      "    digest = hashlib.sha256(f\"idcli-seed-v1:{shot_id}:{take}\".encode()).digest()",
      "    digest = hashlib.sha256(f\"idcli-seed-v1:{shot_id}\".encode()).digest()",
      KEYS, "every take of a shot gets the same derived seed"),
    # -- path containment --------------------------------------------------------------------------------
    M("store-path-no-containment", "path containment", "idcli/store.py",
      "        if not target.resolve().is_relative_to(root):", "        if False:", (*PATHS, "tests/test_render.py"),
      "the store writes a path that resolves outside OUT"),
    M("store-path-parent-links", "path containment", "idcli/store.py",
      "            if probe.is_symlink():\n                raise _link_in_the_way(probe)",
      "            if False:\n                raise _link_in_the_way(probe)", (*PATHS, "tests/test_render.py"),
      "the store writes through a linked shot folder"),
    M("results-dotdot", "path containment", "idcli/results.py",
      "if relative.is_absolute() or \"..\" in relative.parts or len(relative.parts) != 2:",
      "if relative.is_absolute() or len(relative.parts) != 2:", (*PATHS, "tests/test_review_page.py"),
      "a sidecar's image path with '..' is used"),
    M("verify-no-containment", "path containment", "idcli/verify.py",
      "    if not real_path(image_path).is_relative_to(root.resolve()):", "    if False:", PATHS + PROVENANCE,
      "verify reads an image a sidecar names outside OUT"),
    M("deliver-into-out", "path containment", "idcli/delivery.py",
      "    if target == out or target.is_relative_to(out):", "    if target == out:", DELIVERY,
      "a delivery folder inside OUT is accepted"),
    M("review-href-absolute", "path containment", "idcli/review/page.py",
      "    return \"\".join(quote(os.fsencode(part)) + \"/\" for part in base.rstrip(\"/\").split(\"/\")) + \"/\".join(",
      "    return \"/\".join(", ("tests/test_review_page.py",),
      "review page links point beside review/ instead of into OUT"),
    M("reproduce-unsafe-shot", "path containment", "idcli/delivery_checks.py",
      "    if not _safe_name(shot):\n", "    if False:\n", (*DELIVERY, "tests/test_hostile_records.py"),
      "a delivered frame's record names a path as its shot and reproduce globs with it"),
    # -- bounded YAML and hostile input ------------------------------------------------------------------
    M("yaml-unsafe-loader", "hostile input", "idcli/yamlsafe.py",
      "class _BoundedLoader(yaml.SafeLoader):", "class _BoundedLoader(yaml.UnsafeLoader):", YAML,
      "the shot list is read with a loader that builds Python objects"),
    M("yaml-no-alias-bound", "hostile input", "idcli/yamlsafe.py",
      "        if size > MAX_EXPANDED_NODES:\n", "        if False:\n", YAML,
      "alias expansion is not bounded"),
    M("yaml-no-compose-bound", "hostile input", "idcli/yamlsafe.py",
      "            if self._composed > MAX_EXPANDED_NODES:", "            if False:", YAML,
      "the node count is not bounded while composing"),
    M("yaml-no-duplicates", "hostile input", "idcli/yamlsafe.py",
      "        if id(node) in self._keys_checked:\n            return\n", "        return\n", YAML,
      "a key written twice is not reported"),
    M("yaml-no-byte-limit", "hostile input", "idcli/yamlsafe.py",
      "    if len(raw) > MAX_DOCUMENT_BYTES:\n", "    if False:\n", YAML,
      "the document's byte limit is not applied"),
    M("png-no-crc", "hostile input", "idcli/provenance.py",
      "        if zlib.crc32(kind + payload) != int.from_bytes(data[end - 4:end], \"big\"):",
      "        if False:", HOSTILE, "a PNG chunk with a bad CRC is accepted"),
    M("png-record-any-size", "hostile input", "idcli/provenance.py",
      "(image_record.get(\"width\"), image_record.get(\"height\")) != size:",
      "(image_record.get(\"width\"), image_record.get(\"height\")) is None:", HOSTILE,
      "a record copied onto a picture of another size is taken as its record"),
    M("image-no-pixel-budget", "hostile input", "idcli/identity/images.py",
      "    if width * height > MAX_IMAGE_PIXELS:", "    if False:",
      ("tests/test_hostile_inputs.py", "tests/test_identity.py"), "the pixel budget is not checked before decoding"),
    M("safeio-follows-links", "hostile input", "idcli/safeio.py",
      "    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | (0 if follow_links else os.O_NOFOLLOW)",
      "    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY", HOSTILE,
      "a link planted in the output folder is read through"),
    M("safeio-reads-devices", "hostile input", "idcli/safeio.py",
      "    if stat.S_ISREG(mode):\n        return fd\n", "    return fd\n", HOSTILE,
      "a folder, FIFO or device is read as a file"),
    # -- identity QA -------------------------------------------------------------------------------------
    M("qa-minimise", "identity QA", "idcli/review/qa.py",
      "    rows, cols = linear_sum_assignment(cosines, maximize=True)",
      "    rows, cols = linear_sum_assignment(cosines, maximize=False)", QA, "faces matched to the worst character"),
    M("qa-leak-min", "identity QA", "idcli/review/qa.py",
      "        if best is None or value > best[0]:", "        if best is None or value < best[0]:", QA,
      "leakage is the lowest cross cosine, not the highest"),
    M("qa-leak-boundary", "identity QA", "idcli/review/qa.py",
      "    if leak is not None and leak[0] >= thresholds.leakage:", "    if leak is not None and leak[0] > thresholds.leakage:",
      QA, "leakage exactly at the threshold is not flagged"),
    M("qa-low-boundary", "identity QA", "idcli/review/qa.py",
      "for face, character in pairs + repeated):  # unrounded",
      "for face, character in pairs + repeated if False):  # unrounded", QA,
      "low identity is never flagged"),
    M("qa-low-inclusive", "identity QA", "idcli/review/qa.py",
      "    if any(cosines[face, character] < thresholds.low_identity", "    if any(cosines[face, character] <= thresholds.low_identity",
      QA, "a cosine exactly at the low-identity threshold is flagged"),
    M("qa-missing-all", "identity QA", "idcli/review/qa.py",
      "    if any(entry[\"face\"] is None for entry in by_character.values()):",
      "    if all(entry[\"face\"] is None for entry in by_character.values()):", QA,
      "a missing character is flagged only when all are missing"),
    M("qa-region-margin", "identity QA", "idcli/review/qa.py",
      "    return (x - REGION_MARGIN * w <= cx <= x + w + REGION_MARGIN * w",
      "    return (x + REGION_MARGIN * w <= cx <= x + w + REGION_MARGIN * w", QA,
      "a plate box is shrunk on its left instead of grown"),
    M("qa-exact-dp", "identity QA", "idcli/review/qa.py",
      "if key not in step or candidate[0] > step[key][0] + 1e-12:", "if key not in step:", QA,
      "the exact assignment keeps the first pairing found, not the best"),
    # -- selects -----------------------------------------------------------------------------------------
    M("selects-any-take", "selects", "idcli/review/selects.py",
      "    if take not in committed[shot]:\n", "    if False:\n", SELECTS,
      "a pick of a take never rendered is recorded"),
    M("selects-orphan", "selects", "idcli/review/selects.py",
      "    if live is not None and (shot, take) not in live:", "    if False:", SELECTS,
      "an orphan take can be picked"),
    M("selects-damaged-file", "selects", "idcli/review/selects.py",
      "isinstance(v, dict) and type(v.get(\"take\")) is int for v in picks.values()):",
      "isinstance(v, dict) for v in picks.values()):", SELECTS, "a selects.json with a non-integer take is read"),
    M("selects-keep-dangling", "selects", "idcli/review/selects.py",
      "        if aside is None:\n            notes.append", "        if aside is None and False:\n            notes.append",
      SELECTS, "a pick of a take neither rendered nor kept aside is carried forward"),
    M("selects-write-before-check", "selects", "idcli/review/selects.py",
      "    if problems:\n        rest = _the_rest(root, parsed, problems) if from_file is not None else \"\"\n"
      "        listed = list(problems.values())\n"
      "        listed_parts = [part for n, parts in enumerate(listed[:PROBLEMS_SHOWN])\n"
      "                        for part in ((\"; \",) if n else ()) + parts]\n"
      "        more = [f\"; and {len(listed) - PROBLEMS_SHOWN} more\"] if len(listed) > PROBLEMS_SHOWN else []\n"
      "        raise InputError(*listed_parts, *more, \"; nothing was changed\" + rest)\n",
      "", SELECTS, "bad picks are written instead of refused"),
    # -- provenance --------------------------------------------------------------------------------------
    M("verify-no-hash", "provenance", "idcli/verify.py",
      "    changed = digest != sidecar[\"image\"].get(\"sha256\")", "    changed = False", PROVENANCE,
      "verify passes an image changed after its commit"),
    M("verify-swapped", "provenance", "idcli/verify.py",
      "    elif os.path.normpath(image_path) != os.path.normpath(beside):", "    elif False:", PROVENANCE,
      "verify passes a sidecar moved beside another image"),
    M("verify-job-key", "provenance", "idcli/verify.py",
      "            if other is None and (manifest.assertion or {}).get(\"job_key\") != sidecar.get(\"job_key\"):",
      "            if False:",
      PROVENANCE, "verify passes a C2PA manifest naming another job"),
    M("verify-sidecar-record", "provenance", "idcli/verify.py",
      "        check.problems += sidecar_record_problems(sidecar, data)", "        pass",
      ("tests/test_provenance_tour.py",), "verify passes a sidecar edited after the render"),
    M("verify-c2pa-block", "provenance", "idcli/verify.py",
      "                check.problems += c2pa_block_problems(block, data, manifest)", "                pass",
      ("tests/test_provenance_tour.py",), "verify passes a sidecar naming another signer than the manifest"),
    M("verify-trust-unsigned", "provenance", "idcli/verify.py",
      "    if trust_pem and not (signed or manifest.present or carried):", "    if False:",
      ("tests/test_provenance_tour.py",), "verify --trust passes an image that is not signed"),
    M("verify-not-created", "provenance", "idcli/verify.py",
      "            if not manifest.created:", "            if False:", PROVENANCE,
      "verify passes a manifest whose first action is not c2pa.created"),
    M("verify-orphan-png", "provenance", "idcli/verify.py",
      "                or real_path(image_path) in checked):", "                or True):", PROVENANCE,
      "verify passes over an image without a sidecar"),
    M("reproduce-ignores-current-file", "provenance", "idcli/reproduce.py",
      "    if report.sha256 == recorded_sha and committed_sha in (None, recorded_sha):",
      "    if report.sha256 == recorded_sha:", PROVENANCE,
      "reproduce says identical while the committed image was changed since"),
    M("reproduce-near-is-pixels-identical", "provenance", "idcli/reproduce.py",
      "        if report.max_pixel_difference == 0 and mode_words is None:",
      "        if (report.max_pixel_difference or 0) <= 1 and mode_words is None:", PROVENANCE,
      "a one-level pixel difference is reported as pixels-identical"),
    M("deliver-sidecar-edited", "provenance", "idcli/delivery.py",
      "    if record_differences(record_of_sidecar(own), read_png_record(data)):", "    if False:", DELIVERY,
      "a sidecar edited after the render is delivered as the image's record"),
    M("decode-keeps-larger-chunk", "provenance", "idcli/engine/vae_codec.py",
      "                out.clear()\n", "", ("tests/test_reproduce_decode_chunk.py",),
      "images decoded before a mid-decode out of memory keep a chunk their record does not name"),
    M("random-mark-model-only", "provenance", "idcli/random_mark.py",
      "    return random_model(record) or bool(random_face_model_names(record))",
      "    return random_model(record)", ("tests/test_random_mark.py", "tests/test_user_model_folders.py"),
      "a real model's take with random-weight face models is not marked random"),
    # -- delivery: no local path leaves --------------------------------------------------------------------
    M("deliver-no-leak-check", "delivery", "idcli/delivery.py",
      "    if hits:\n        raise DeliveryError(f\"{image_path}: its delivered copy would still name",
      "    if False:\n        raise DeliveryError(f\"{image_path}: its delivered copy would still name", DELIVERY,
      "a copy still naming a local path is delivered"),
    M("leaks-raw-only", "delivery", "idcli/delivery_record.py",
      "        forms = {text.encode(\"utf-8\"), json.dumps(text)[1:-1].encode(\"utf-8\")}",
      "        forms = {text.encode(\"utf-8\")}", DELIVERY, "a path escaped as JSON escapes the leak check"),
    M("looks-absolute-no-home", "delivery", "idcli/delivery_record.py",
      "    return text.startswith((\"/\", \"~\", \"\\\\\\\\\")) or bool(_WINDOWS_DRIVE.match(text))",
      "    return text.startswith((\"/\", \"\\\\\\\\\")) or bool(_WINDOWS_DRIVE.match(text))", DELIVERY,
      "a home-relative path (~/...) is not seen as a path"),
    M("path-free-keeps-folders", "delivery", "idcli/delivery_record.py",
      "            if name in _DROPPED_KEYS or name.endswith(\"_path\"):\n                continue\n",
      "", DELIVERY, "folder and path fields are not dropped from the delivered record"),
    M("verify-delivery-absolute", "delivery", "idcli/delivery_checks.py",
      "    if paths:\n        check.problems.append(f\"its record names a local path at {paths[0]}\")",
      "    if False:\n        check.problems.append(f\"its record names a local path at {paths[0]}\")", DELIVERY,
      "verify passes a delivered copy whose record names an absolute path"),
    M("verify-delivery-record", "delivery", "idcli/delivery_checks.py",
      "    if record is None or not same_record(record, expected):\n", "    if record is None:\n", DELIVERY,
      "verify passes a delivered copy whose PNG record is not its sidecar's"),
    M("verify-delivery-listing-sha", "delivery", "idcli/delivery_checks.py",
      "        elif entry.get(\"sha256\") != hashes[name]:", "        elif False:", DELIVERY,
      "verify passes a copy delivery.json lists with another sha256"),
    # -- plates: what each evaluation sees outside the face mask (docs/plates.md) ----------------------------
    M("plate-blend-one-level-late", "plates", "idcli/engine/plate_render.py",
      "blend_known(latents, self.masks, self._known(step + 1), None, None, add_noise=None)",
      "blend_known(latents, self.masks, self._known(step), None, None, add_noise=None)", ("tests/test_plate_blend.py",),
      "the known region is put back at the level of the evaluation just run, not the next one"),
]


# The tests written for mutations that once survived live in GUARDS, not in the areas' own files: every mutation's
# default run includes them, or a whole pass would report as survivors the mutations docs/testing.md says are killed.
# The pass's own `--check` test is kept in tests/test_mutation_pass.py, never run under a mutation: any mutated file
# fails it, which would "kill" every mutation.
GUARDS = "tests/test_promise_guards.py"


def owning_tests(mutation: Mutation) -> tuple[str, ...]:
    """The test files a mutation runs against by default: the guards first (11 s), then its area's files."""
    return (GUARDS, *(t for t in mutation.tests if t != GUARDS))


def _apply(mutation: Mutation) -> bytes:
    path = ROOT / mutation.file
    original = path.read_bytes()
    text = original.decode("utf-8")
    found = text.count(mutation.old)
    if found != 1:
        raise SystemExit(f"{mutation.name}: the text to mutate occurs {found} times in {mutation.file}")
    return text.replace(mutation.old, mutation.new).encode("utf-8")


def _clean(file: str) -> bool:
    return subprocess.run(["git", "diff", "--quiet", "--", file], cwd=ROOT).returncode == 0


def run(mutation: Mutation, python: str, tests: tuple[str, ...] = ()) -> tuple[str, str, float]:
    """(killed|survived|timed out, the first failing test or '', seconds); ``tests``: instead of the mutation's own."""
    path = ROOT / mutation.file
    if not _clean(mutation.file):
        raise SystemExit(f"{mutation.file} has uncommitted changes: commit or stash them first")
    original = path.read_bytes()
    mutated = _apply(mutation)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    start = time.monotonic()
    try:
        path.write_bytes(mutated)
        try:
            command = [python, "-m", "pytest", "-q", "-x", "-n0", "-p", "no:cacheprovider",  # -n0: one process, as timed
                       *(tests or owning_tests(mutation))]
            proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return "timed out", f"(after {TIMEOUT_S} s: a hang, or a slow machine; run it again alone)", \
                time.monotonic() - start
    finally:
        path.write_bytes(original)
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, re.MULTILINE)
    if proc.returncode == 0:
        return "survived", "", time.monotonic() - start
    return "killed", failed.group(1) if failed else f"(pytest exit {proc.returncode})", time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--check", action="store_true", help="only check that every mutation applies")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--tests", nargs="+", default=(),
                        help="run these test files (or file::test ids) instead of the area's: does a new test kill it?")
    options = parser.parse_args()
    chosen = [m for m in MUTATIONS if not options.names or m.name in options.names]
    unknown = set(options.names) - {m.name for m in MUTATIONS}
    if unknown:
        raise SystemExit(f"unknown mutations: {', '.join(sorted(unknown))}")
    for mutation in chosen:
        if options.check:
            _apply(mutation)
            continue
        verdict, test, seconds = run(mutation, options.python, tuple(options.tests))
        print(f"{mutation.area}\t{mutation.name}\t{verdict}\t{test}\t{seconds:.0f}s", flush=True)
    if options.check:
        print(f"{len(chosen)} mutations apply")
    return 0


if __name__ == "__main__":
    sys.exit(main())
