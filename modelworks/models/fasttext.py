"""fastText-style text classifier: the average of token and hashed n-gram embeddings, then a linear head.

As in Joulin et al., "Bag of Tricks for Efficient Text Classification" (2016): each text is a bag
of its tokens and of its token n-grams, each n-gram hashed into one of `buckets` shared rows; the
embeddings of the real (non-padding) entries are averaged and a linear layer (or `hidden` dense
layers) reads the average. The tokens come from the data layer's tokenizer: word pieces for
alphabetic text and, for CJK text, characters with their character n-grams (`cjk_ngrams`), so
the bag holds word and character n-grams alike. Cheap to train, strong on small and medium text.

The average is a masked sum over plain `nn.Embedding` lookups (no EmbeddingBag, whose padding
has no exportable form), and the hashing is int64 arithmetic, so ONNX and TorchScript export the
same computation. Numeric and categorical columns join the average through `TabularEncoder`.
"""

from __future__ import annotations

import torch
from torch import nn

from modelworks.data.schema import InputSchema, TextSpec, text_key
from modelworks.errors import UserError
from modelworks.models.fasttext_config import FastTextConfig
from modelworks.models.inputs import Head, TabularEncoder, require_only

HASH_PRIMES = (1_000_003, 998_244_353)  # mix the ids of an n-gram's tokens into one bucket


class TextBag(nn.Module):
    """Token ids -> mean of the embeddings of the tokens and of their hashed n-grams."""

    def __init__(self, spec: TextSpec, config: FastTextConfig) -> None:
        super().__init__()
        self.pad_id = spec.pad_id
        self.ngrams = config.ngrams
        self.buckets = config.buckets
        self.tokens = nn.Embedding(spec.vocab_size, config.text_embedding_dim)
        self.grams = nn.Embedding(config.buckets, config.text_embedding_dim) if config.ngrams > 1 else None
        self.out_dim = config.text_embedding_dim
        if config.init == "fasttext":  # fastText's small uniform start: no token dominates the first average
            bound = 1.0 / config.text_embedding_dim
            for table in (self.tokens, self.grams):
                if table is not None:
                    nn.init.uniform_(table.weight, -bound, bound)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        real = (ids != self.pad_id).unsqueeze(-1).to(self.tokens.weight.dtype)  # (batch, seq, 1)
        total = (self.tokens(ids) * real).sum(dim=1)  # (batch, emb)
        count = real.sum(dim=1)  # (batch, 1)
        for n in range(2, self.ngrams + 1):
            gram_ids, gram_real = self._hashed(ids, real, n)  # (batch, seq - n + 1), (batch, seq - n + 1, 1)
            total = total + (self.grams(gram_ids) * gram_real).sum(dim=1)
            count = count + gram_real.sum(dim=1)
        return total / count.clamp(min=1.0)  # (batch, emb); an empty text is all zeros

    def _hashed(self, ids: torch.Tensor, real: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Bucket ids of the n-grams starting at each position, and whether all n tokens are real."""
        length = ids.shape[1] - n + 1
        code = ids[:, :length]
        gram_real = real[:, :length]
        for k in range(1, n):
            code = (code * HASH_PRIMES[k - 1] + ids[:, k : k + length]) % self.buckets
            gram_real = gram_real * real[:, k : k + length]
        return code % self.buckets, gram_real


class FastText(nn.Module):
    def __init__(self, config: FastTextConfig, schema: InputSchema) -> None:
        super().__init__()
        require_only(schema, "fasttext")
        if not schema.text:
            raise UserError("model.type 'fasttext' needs at least one text feature; the data has none (try mlp)")
        self.config = config
        self.tabular = TabularEncoder(schema, config.embedding_dim)
        self.text_names = list(schema.text)
        self.texts = nn.ModuleDict({name: TextBag(spec, config) for name, spec in schema.text.items()})
        self.dropout = nn.Dropout(config.dropout)
        in_dim = self.tabular.out_dim + sum(t.out_dim for t in self.texts.values())
        self.head = Head(in_dim, config.hidden, schema.out_dim, config.activation, config.dropout)
        if config.init == "fasttext" and not config.hidden:  # fastText's zero output layer
            for p in self.head.parameters():
                nn.init.zeros_(p)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [x for x in [self.tabular(batch)] if x is not None]
        parts += [self.dropout(self.texts[name](batch[text_key(name)])) for name in self.text_names]  # (batch, emb)
        return self.head(torch.cat(parts, dim=1))  # (batch, out_dim)
