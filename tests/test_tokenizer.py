"""Word vocabularies: fitted to captions, end-of-text last (argmax pooling), loadable by open_clip."""

import open_clip
import torch

from clipstudy import models, tokenizer
from clipstudy.train import TrainConfig, text_side

CAPTIONS = ["a dog face on a blue background", "two red apples, emoji art", "a picture of a dog face"]


def test_fit_gives_a_token_per_word_with_end_of_text_largest():
    tok = tokenizer.fit(CAPTIONS, context_length=8)
    ids = tok(["A Dog face, emoji art!", "zebra"])
    assert ids.shape == (2, 8) and ids.dtype == torch.long
    words = tokenizer.words("A Dog face, emoji art!")
    assert words == ["a", "dog", "face", ",", "emoji", "art", "!"]
    eot = tok.vocab_size - 1
    assert ids[0, 0] == 1 and ids.argmax(dim=1).tolist() == [7, 2]  # truncated row keeps its end-of-text
    assert ids[0, 7] == eot and ids[1, 1] == 2  # an unseen word is <unk>
    assert (ids[1, 3:] == 0).all()  # padding


def test_saved_vocabulary_loads_in_open_clip(tmp_path):
    tok = tokenizer.fit(CAPTIONS, context_length=16)
    tok.save(tmp_path)
    again = tokenizer.load(tmp_path, 16)
    theirs = open_clip.tokenizer.HFTokenizer(str(tmp_path), context_length=16)
    assert torch.equal(again(CAPTIONS), tok(CAPTIONS)) and torch.equal(theirs(CAPTIONS), tok(CAPTIONS))


def test_world_vocabulary_sizes_the_text_tower(tmp_path):
    cfg = TrainConfig(data=str(tmp_path), model="vit-ti-8", vocab="world", context_length=12)
    tok, overrides = text_side(cfg, CAPTIONS)
    model = models.create_model("vit-ti-8", 32, **overrides)
    assert model.token_embedding.num_embeddings == tok.vocab_size < 30
    assert model.context_length == 12 and tok(CAPTIONS).shape == (3, 12)
    bpe, over = text_side(TrainConfig(vocab="bpe", context_length=20), CAPTIONS)
    assert over == {"context_length": 20} and bpe(CAPTIONS).shape == (3, 20)
