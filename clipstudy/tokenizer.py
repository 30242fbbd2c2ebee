"""Word vocabularies fitted to a corpus of captions, saved so plain open_clip can load them.

    tok = tokenizer.fit(captions, context_length=16)   # one token per word of the corpus
    tok(["a dog face on a blue background"])           # LongTensor [1, 16]
    tok.save(run_dir); tokenizer.load(run_dir)         # tokenizer.json + tokenizer_config.json

Why: open_clip's 49,408-token BPE puts 6.3M of a 4-layer 128-wide text tower's 8M parameters in
its token embedding, while EmojiWorld's captions use a few hundred words. Paper A trains its own
32k SentencePiece and a 16-token context; at our scale the analogue is a word-level vocabulary
of the world's captions. Built with the `tokenizers` library (WordLevel model, lower-casing,
whitespace-and-punctuation split), laid out for open_clip's argmax text pooling: padding is id 0,
start-of-text id 1, unknown id 2, the words, and end-of-text LAST, so the end-of-text token has
the largest id in every row. A run folder holding these files loads in plain open_clip through
the `local-dir:` schema (its text_cfg names `hf_tokenizer_name`, so open_clip's HFTokenizer
reads them with transformers' AutoTokenizer).

Cost: fitting on 100k captions ~0.3 s; tokenising ~3 us a caption (Rust), vs ~40 us for BPE.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Sequence

import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel

PAD, SOT, UNK, EOT = "<pad>", "<start_of_text>", "<unk>", "<end_of_text>"
FILE = "tokenizer.json"
OPEN_CLIP_NAME = "clipstudy-word-vocab"  # text_cfg.hf_tokenizer_name: makes open_clip's local-dir: read FILE


class WordTokenizer:
    """Callable like open_clip's tokenizers: texts -> LongTensor [N, context_length]."""

    def __init__(self, tokenizer: Tokenizer, context_length: int):
        self.tokenizer, self.context_length = tokenizer, context_length
        self.tokenizer.enable_truncation(context_length)  # keeps the end-of-text token
        self.tokenizer.enable_padding(length=context_length, pad_id=0, pad_token=PAD)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        if context_length and context_length != self.context_length:
            return WordTokenizer(Tokenizer.from_str(self.tokenizer.to_str()), context_length)(texts)
        return torch.tensor([e.ids for e in self.tokenizer.encode_batch(list(texts))], dtype=torch.long)

    def save(self, folder: str | Path) -> None:
        """tokenizer.json (the `tokenizers` file) and tokenizer_config.json (what transformers'
        AutoTokenizer, and so open_clip's HFTokenizer, needs to read it) into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        plain = Tokenizer.from_str(self.tokenizer.to_str())
        plain.no_padding()
        plain.no_truncation()
        plain.save(str(folder / FILE))
        (folder / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": self.context_length,
            "pad_token": PAD, "unk_token": UNK, "bos_token": SOT, "eos_token": EOT}, indent=1) + "\n")


def _tokenizer(vocab: dict[str, int]) -> Tokenizer:
    tok = Tokenizer(WordLevel(vocab, unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(single=f"{SOT} $A {EOT}",
                                                       special_tokens=[(SOT, vocab[SOT]), (EOT, vocab[EOT])])
    return tok


_SPLITTER = _tokenizer({PAD: 0, SOT: 1, UNK: 2, EOT: 3})  # normaliser + pre-tokenizer, built once


def words(text: str) -> list[str]:
    """The word tokens of `text`, as the tokenizer splits it."""
    return [w for w, _ in _SPLITTER.pre_tokenizer.pre_tokenize_str(_SPLITTER.normalizer.normalize_str(text))]


def fit(captions: Sequence[str], context_length: int = 16, min_count: int = 1) -> WordTokenizer:
    """A word-level tokenizer of every word seen at least `min_count` times in `captions`,
    most frequent first; end-of-text takes the last (largest) id."""
    if context_length < 3:
        raise ValueError(f"context_length={context_length} leaves no room for a word; use >= 3")
    counts: Counter[str] = Counter()
    for text in captions:
        counts.update(words(text))
    vocab = {PAD: 0, SOT: 1, UNK: 2}
    for word, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= min_count and word not in vocab and word != EOT:
            vocab[word] = len(vocab)
    vocab[EOT] = len(vocab)
    return WordTokenizer(_tokenizer(vocab), context_length)


def load(folder: str | Path, context_length: int) -> WordTokenizer:
    """The tokenizer `save` wrote to `folder`."""
    return WordTokenizer(Tokenizer.from_file(str(Path(folder) / FILE)), context_length)


def exists(folder: str | Path) -> bool:
    return (Path(folder) / FILE).is_file()
