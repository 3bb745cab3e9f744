"""Random draws from a private generator, for code that only knows torch's global one.

The tiny presets get their weights from each module's own initialisation (diffusers' and
transformers' constructors), which draws from torch's global generator. Seeding that generator is
not safe with two renders in one process: one thread's ``manual_seed`` resets the stream the other
is drawing from, and both get weights no seed describes. ``private_generator`` instead hands every
random call made *in this thread* inside the block a private ``torch.Generator`` (through a torch
function mode, whose stack is thread-local), unless the call names its own generator. A CPU
generator seeded with ``s`` produces the same stream as the global one after ``torch.manual_seed(s)``,
so the weights are exactly those the seeded global generator gave; the global generator is neither
read nor advanced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

# Every torch call that draws random numbers and accepts ``generator=`` (the in-place tensor methods
# are what nn.init and the model initialisers call; the factories for completeness).
_RANDOM_CALLS = frozenset({
    torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.random_, torch.Tensor.bernoulli_,
    torch.Tensor.exponential_, torch.Tensor.geometric_, torch.Tensor.cauchy_, torch.Tensor.log_normal_,
    torch.Tensor.bernoulli, torch.Tensor.multinomial,
    torch.rand, torch.randn, torch.randint, torch.randperm, torch.normal, torch.bernoulli, torch.multinomial,
    torch.rand_like, torch.randn_like, torch.randint_like, torch.poisson,
})


class _PrivateGenerator(TorchFunctionMode):
    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.generator = generator

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = dict(kwargs or {})
        # Python-level functions (torch.nn.init's, transformers' initialisers) arrive with every
        # keyword of their signature, ``generator=None`` included; their inner tensor calls do not
        # come back through this mode (it is off while its handler runs), so they get the generator here.
        if kwargs.get("generator") is None and ("generator" in kwargs or func in _RANDOM_CALLS):
            kwargs["generator"] = self.generator
        return func(*args, **kwargs)


@contextmanager
def private_generator(seed: int) -> Iterator[torch.Generator]:
    """Inside the block, this thread's random draws come from a fresh CPU generator seeded ``seed``."""
    generator = torch.Generator("cpu").manual_seed(seed)
    with _PrivateGenerator(generator):
        yield generator
