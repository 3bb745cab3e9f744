"""Character identities: selfies -> faces -> ArcFace embeddings -> identity packs.

Importing this package is cheap; insightface loads only when faces are analysed.
"""

from .aggregate import SAME_PERSON_THRESHOLD, InconsistentSelfiesError
from .encode import QualityGate, SelfieError
from .images import ImageError
from .pack import PACK_SCHEMA, PACK_SUFFIX, IdentityPack, PackError, read_pack

__all__ = ["PACK_SCHEMA", "PACK_SUFFIX", "SAME_PERSON_THRESHOLD", "IdentityPack", "ImageError",
           "InconsistentSelfiesError", "PackError", "QualityGate", "SelfieError", "read_pack"]
