"""A small CLIP byte-level BPE tokenizer built in memory for the tiny presets.

Real presets load the published tokenizer with their weights. The tiny presets need one that works
offline; a character-level vocabulary would spend the 77-token context on a single sentence, so
word merges are learnt here from a fixed list of previs vocabulary (deterministic: same list, same
vocabulary, same token ids).
"""

from __future__ import annotations

from functools import lru_cache

_WORDS = """
a an the of and in on at to with from by for into over under through near behind beside across
man woman boy girl child old young person people character hero villain crowd figure friend stranger
walks walking runs running stands standing sits sitting looks looking turns holds holding smiles
laughs cries screams whispers reaches falls jumps fights waits talks leans kneels
face eyes hair hand hands head body coat dress suit jacket hat glasses umbrella sword gun phone
red blue green black white grey gray dark bright golden silver yellow orange purple brown pale
night day dawn dusk morning evening sunset sunrise rain snow fog storm wind fire smoke light shadow
street alley city room kitchen office bar car train station forest beach sea ocean river mountain
desert field road bridge roof window door stairs corridor hall church castle ship lighthouse harbour
neon wet empty crowded quiet busy ruined abandoned ancient modern small large tall long wide huge
close up closeup medium shot wide full body portrait frame framing angle low high view camera lens
cinematic film still scene previs storyboard photo photograph realistic detailed sharp soft blur
lit lighting backlit rim key fill volumetric dramatic moody warm cold color colour tone grain
happy sad angry afraid surprised calm tense worried joyful grief rage fear love joy surprise anger
sadness tears smile frown expression emotion
one two three her his their its is are was be as that this it he she they them
"""


def _bytes_to_unicode() -> dict[int, str]:
    # The reversible byte -> printable character table of GPT-2 and CLIP byte-level BPE.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


@lru_cache(maxsize=1)
def tiny_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary (token -> id) and merge list of the tiny tokenizer."""
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [c + "</w>" for c in alphabet]
    merges: list[tuple[str, str]] = []
    known = set(tokens)
    for word in dict.fromkeys(_WORDS.split()):
        pieces = [*word[:-1], word[-1] + "</w>"]
        current = pieces[0]
        for nxt in pieces[1:]:
            merged = current + nxt
            if merged not in known:
                merges.append((current, nxt))
                tokens.append(merged)
                known.add(merged)
            current = merged
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def build_tiny_tokenizer(max_length: int = 77):  # -> CLIPTokenizer
    from ..package_imports import import_packages

    import_packages("transformers")  # two threads' first import at once: one failed
    from transformers import CLIPTokenizer

    vocab, merges = tiny_vocab_and_merges()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=max_length)
