"""A tiny transformer on a toy sequence task: reverse a sequence of small integers.

Each example is a sequence of ``LENGTH`` (8) tokens drawn from 0..``VOCAB``-1 (8 values); the
target at position i is the token at position LENGTH-1-i. ``make_model()`` returns a token
and position embedding, one ``nn.TransformerEncoderLayer`` (d_model 32, 4 heads) and a linear
layer to each position's ``VOCAB`` logits: outputs of shape (N, LENGTH, VOCAB), classes last.
``make_data()`` returns ``(X_train, Y_train), (X_val, Y_val)``: X of shape (m, LENGTH),
int64 tokens, and Y of the same shape, int64 class indices — 2048 training and 512
validation sequences, generated with a fixed seed. gdlab infers the cost (cross-entropy over
the last dimension, averaged over every position).

    gdlab compare --model examples/tiny_transformer.py:make_model \\
                  --data examples/tiny_transformer.py:make_data
"""

import torch
from torch import nn

SEED = 0
VOCAB, LENGTH = 8, 8
M_TRAIN, M_VAL = 2048, 512


class Reverser(nn.Module):
    """tokens (N, L) → logits (N, L, VOCAB): embeddings of the tokens and their positions,
    one encoder layer (self-attention lets every position read the one it mirrors), a linear
    read-out."""

    def __init__(self, d_model: int = 32, heads: int = 4):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, d_model)
        self.positions = nn.Parameter(0.1 * torch.randn(LENGTH, d_model))
        self.encoder = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=64,
                                                  dropout=0.1, batch_first=True)
        self.out = nn.Linear(d_model, VOCAB)

    def forward(self, tokens):
        # (gdlab hands in-memory X to the model in its float dtype: back to token ids)
        h = self.tokens(tokens) + self.positions
        return self.out(self.encoder(h))


def make_model(seed: int = SEED) -> nn.Module:
    """The transformer, its weights drawn from torch's RNG seeded with ``seed``."""
    torch.manual_seed(seed)
    return Reverser()


def make_data(seed: int = SEED):
    """``(X_train, Y_train), (X_val, Y_val)``: random token sequences and their reversals."""
    generator = torch.Generator().manual_seed(seed)
    X = torch.randint(0, VOCAB, (M_TRAIN + M_VAL, LENGTH), generator=generator)
    Y = X.flip(1)
    return (X[:M_TRAIN], Y[:M_TRAIN]), (X[M_TRAIN:], Y[M_TRAIN:])
