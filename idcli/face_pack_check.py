"""What is wrong with a folder of insightface ONNX files, told without running them (``idcli models list``).

``models list`` called any folder holding an ``.onnx`` file an "insightface face-model pack … present": one holding
only the detector (the recogniser left behind in a copy) or a recogniser whose download was cut read as a whole
pack, and only the render refused it (identity/faces.py, ``FaceAnalyzer``). Each file's graph is parsed with
``onnx`` (its weights are read, not run) and given the role insightface's model zoo would route it to: five or more
outputs make a detector; a square input of 112 px or more, a multiple of 16, a recogniser (192 px: landmarks,
96 px: gender/age, two 128-px inputs: a face swapper).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DETECTION, RECOGNITION = "detection", "recognition"


def _dims(value_info: Any) -> list[int | None]:
    shape = value_info.type.tensor_type.shape
    return [dim.dim_value if dim.HasField("dim_value") else None for dim in shape.dim]


def onnx_role(file: Path) -> str | None:
    """The task insightface would take ``file`` for (``detection``, ``recognition``, ``landmark``, ``genderage``,
    ``inswapper``), None for none; a ``ValueError`` when the file cannot be parsed (damaged or cut)."""
    import onnx

    try:
        model = onnx.load(str(file), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError, onnx's own: a damaged or cut file either way
        raise ValueError(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from None
    graph = model.graph
    weights = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in weights]  # as onnxruntime lists them
    if len(graph.output) >= 5:
        return DETECTION
    if not inputs or not graph.output:
        return None
    shape = _dims(inputs[0])
    if len(shape) != 4 or shape[2] is None or shape[2] != shape[3]:
        return None
    side = shape[2]
    if side == 192:
        return "landmark"
    if side == 96:
        return "genderage"
    if len(inputs) == 2 and side == 128:
        return "inswapper"
    return RECOGNITION if side >= 112 and side % 16 == 0 else None


def face_pack_problem(onnx_files: list[Path]) -> str | None:
    """Why these ONNX files are not a face-model pack the render can load, in its words; None when they are."""
    roles: dict[str, list[str]] = {}
    for file in onnx_files:
        try:
            role = onnx_role(file)
        except ValueError as exc:
            return f"{file.name} is damaged or truncated ({exc}): download it again"
        except OSError as exc:
            return f"{file.name} cannot be read: {exc.strerror or exc}"
        roles.setdefault(role or "not recognised", []).append(file.name)
    found = ", ".join(f"{name} ({role})" for role, names in sorted(roles.items()) for name in names)
    if DETECTION not in roles:
        return ("no SCRFD face detection model (an ONNX file with 5 or more outputs, such as buffalo_l's "
                f"det_10g.onnx); found: {found}")
    if RECOGNITION not in roles:
        return ("no ArcFace recognition model (a square 112x112-input ONNX file such as w600k_r50.onnx); found: "
                f"{found}")
    twice = [f"two {role} models: {', '.join(roles[role])}" for role in (DETECTION, RECOGNITION)
             if len(roles[role]) > 1]
    return "; ".join(twice) + " (a folder holds one pack: move the other's files out)" if twice else None
