"""The prompts' encodings for the UNet's rows: each text's embeddings (and SDXL's pooled embedding), each row
independent of the others.

Texts that fit one CLIP window run through the pipeline's own ``encode_prompt``, unchanged; longer ones are
encoded window by window (idcli/prompt_tokens.py lays the windows out) and every row of a forward gets the
batch's window count, since rows of one forward share a sequence length. Also here: the CLIP windows a
request's texts need, and the subject tokens of each dual-line job's semantic prompt, which its attention probe
reads (engine/fusion.py).
"""

from __future__ import annotations

from typing import Any

from ..profile_ranges import TEXT, ranged
from ..render_request import RenderRequest


class TextEncoding:
    """The loaded pipeline's tokenizers and text encoders, as the engine's rows use them."""

    def __init__(self, pipe: Any, device: Any, torch_dtype: Any, is_sdxl: bool) -> None:
        self.pipe = pipe
        self.device = device
        self.torch_dtype = torch_dtype
        self.is_sdxl = is_sdxl

    def request_windows(self, request: RenderRequest) -> int:
        """CLIP windows the rows of ``request`` need (its longest text's), by this model's tokenizer."""
        from ..prompt_tokens import PromptMeasure

        texts = [request.prompt] + ([request.negative_prompt] if request.guidance > 1.0 else [])
        if request.semantic_prompt is not None:
            texts.append(request.semantic_prompt)
        texts += [line.prompt for line in request.lines]  # several characters' identity lines
        return PromptMeasure(self.pipe.tokenizer).windows(*texts)

    @ranged(TEXT)
    def encode_unique(self, texts: list[str], at_least: int = 1) -> tuple[Any, Any]:
        """``encode`` of each distinct text once (rows are independent), laid out as ``texts``."""
        import torch

        unique = list(dict.fromkeys(texts))
        embeds, pooled = self.encode(unique, at_least)
        if len(unique) == len(texts):
            return embeds.to(self.torch_dtype), pooled
        index = torch.tensor([unique.index(t) for t in texts], device=embeds.device)
        return (embeds.index_select(0, index).to(self.torch_dtype),
                None if pooled is None else pooled.index_select(0, index))

    def encode(self, texts: list[str], at_least: int = 1) -> tuple[Any, Any]:
        """Embeddings (and SDXL pooled embeddings) for each text, each row independent of the others.

        Texts longer than one CLIP window are encoded window by window (idcli/prompt_tokens.py) and every
        row gets the batch's window count (``at_least`` this many); when all fit one window, the stock
        encoding runs unchanged.
        """
        from ..prompt_tokens import PromptMeasure

        pipe = self.pipe
        windows = max(at_least, PromptMeasure(pipe.tokenizer).windows(*texts))
        if windows > 1:
            return self.encode_windows(texts, windows)
        if self.is_sdxl:
            embeds, _, pooled, _ = pipe.encode_prompt(
                prompt=texts, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False)
            if pipe.config.force_zeros_for_empty_prompt:
                # The stock SDXL pipeline uses zeros, not the encoding of "", for an empty negative prompt.
                empty = [i for i, t in enumerate(texts) if t == ""]
                if empty:
                    embeds[empty] = 0
                    pooled[empty] = 0
            return embeds, pooled
        embeds, _ = pipe.encode_prompt(texts, self.device, 1, False)
        return embeds, None

    def encode_windows(self, texts: list[str], windows: int) -> tuple[Any, Any]:
        """``encode`` of texts laid out in ``windows`` CLIP windows each, as encode_prompt encodes one:
        SD1.5 the last hidden state; SDXL both encoders' penultimate hidden states side by side, and the
        pooled embedding of the first window (A1111's and compel's convention)."""
        import torch

        from ..prompt_tokens import window_ids

        pipe = self.pipe
        pairs = [(pipe.tokenizer, pipe.text_encoder)]
        if self.is_sdxl:
            pairs.append((pipe.tokenizer_2, pipe.text_encoder_2))
        parts: list[Any] = []
        pooled: Any = None  # SDXL: the second encoder's pooled embedding of the first window
        for tokenizer, encoder in pairs:
            ids = torch.tensor([w for t in texts for w in window_ids(tokenizer, t, windows)], device=self.device)
            if self.is_sdxl:
                out = encoder(ids, output_hidden_states=True)
                if pooled is None and out[0].ndim == 2:
                    pooled = out[0].reshape(len(texts), windows, -1)[:, 0]
                hidden = out.hidden_states[-2]
            else:
                mask = None
                if getattr(encoder.config, "use_attention_mask", False):
                    # The tokenizer's mask: the start token, the prompt's tokens and the end token.
                    ends = (ids == tokenizer.eos_token_id).int().argmax(dim=1)
                    mask = (torch.arange(ids.shape[1], device=ids.device)[None] <= ends[:, None]).long()
                hidden = encoder(ids, attention_mask=mask)[0]
            parts.append(hidden.reshape(len(texts), windows * hidden.shape[1], hidden.shape[2]))
        embeds = torch.cat(parts, dim=-1).to(dtype=pairs[-1][1].dtype, device=self.device)
        if self.is_sdxl and pipe.config.force_zeros_for_empty_prompt:
            empty = [i for i, t in enumerate(texts) if t == ""]
            if empty:
                embeds[empty] = 0
                pooled[empty] = 0
        return embeds, pooled

    def subject_token_weights(self, requests: list[RenderRequest], tokens: int) -> Any:
        """``[jobs, tokens]``: 1 at each dual-line job's subject tokens in its semantic prompt."""
        import torch

        from .fusion import subject_token_positions

        weights = torch.zeros(len(requests), tokens, device=self.device)
        for k, r in enumerate(requests):
            for position in subject_token_positions(self.pipe.tokenizer, r.semantic_prompt or r.prompt,
                                                    r.subject_spans, tokens):
                weights[k, position] = 1.0
        return weights
