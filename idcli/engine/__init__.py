"""The only package that imports torch and diffusers. Import it only when rendering."""

from ..render_request import RenderRequest
from ..versions import ENGINE_ALGORITHM
from .core import Engine, RenderResult
from .memory import is_out_of_memory

__all__ = ["ENGINE_ALGORITHM", "Engine", "RenderRequest", "RenderResult", "is_out_of_memory"]
