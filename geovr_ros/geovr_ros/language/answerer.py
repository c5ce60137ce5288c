"""`LanguageAnswerer`: the trained GeoVR-S question model behind the `QuestionAnswerer`
interface of `geovr_ros.memory` (no torch, no rclpy).

A model directory written by `geovr_training.qa.export.export_question_graphs` holds
question_encoder.onnx (MiniLM, tokens -> (B, 384) embedding and (B, L, 384) token states),
question_graph.onnx (question + its token states + options + memory -> answer heads) and
tokenizer.json (read with the `tokenizers` library). Per question: validate the text, check
it is English, read the options it lists, embed question and options in one encoder call,
pool the memory (as in training), run the graph, and compose the sentence from the
structured heads. Points and poses are in the
memory's frame (`odom`, assumed z up); every structured field of `Answer` is filled.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from geovr_ros.geometry import body_to_optical, make_pose, transform_points, yaw_from_pose
from geovr_ros.inference.metadata import MetadataError, read_graph_metadata
from geovr_ros.language.compose import choice_sentence, numeric_sentence, point_sentence, pose_sentence
from geovr_ros.language.memory_inputs import memory_arrays
from geovr_ros.language.text import NotEnglishError, OutOfScopeError, check_english, check_scope, parse_options
from geovr_ros.memory.answerer import Answer
from geovr_ros.memory.spatial_memory import MemorySnapshot
from geovr_ros.memory.validation import MAX_QUESTION_CHARS, InvalidQuestionError, validate_question

QA_MODEL_VERSION = 'geovr-s-qa-2'  # the graph interface this reader speaks
NOTHING_SEEN_MESSAGE = ('nothing seen yet: the memory holds no keyframes, so there is nothing to '
                        'answer from; move the camera around and ask again')


class QuestionModelError(RuntimeError):
    """The question model directory is incomplete or its metadata does not fit."""


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class LanguageAnswerer:
    """Answers natural-language spatial questions from a memory snapshot.

    Args:
        model_dir: folder with question_encoder.onnx, question_graph.onnx, tokenizer.json.
        backend: `geovr_ros.inference.create_backend` kind ('auto', 'onnxruntime', ...).
        max_keyframes: most recent keyframes used per question (latency bound).
        frame: name of the memory's frame, used in sentences and `Answer.frame`.
        max_chars: longest question accepted.
        **backend_options: passed to `create_backend` for both graphs (e.g.
            intra_op_threads=1, thread_spinning=False).
    """

    name = 'language'

    def __init__(self, model_dir: str | os.PathLike, backend: str = 'auto', max_keyframes: int = 16,
                 frame: str = 'odom', max_chars: int = MAX_QUESTION_CHARS, **backend_options):
        from tokenizers import Tokenizer

        from geovr_ros.inference.select import create_backend
        self.model_dir = os.fspath(model_dir)
        for name in ('question_encoder.onnx', 'question_graph.onnx', 'tokenizer.json'):
            if not os.path.isfile(os.path.join(self.model_dir, name)):
                raise QuestionModelError(f'{os.path.join(self.model_dir, name)} is missing: export the '
                                         f'question graphs with geovr_training.qa.export')
        try:
            meta = read_graph_metadata(os.path.join(self.model_dir, 'question_graph.onnx'))
            enc_meta = read_graph_metadata(os.path.join(self.model_dir, 'question_encoder.onnx'))
        except MetadataError as error:
            raise QuestionModelError(f'{self.model_dir}: question graph metadata is incomplete ({error})') from error
        version = meta.model_version
        if version != QA_MODEL_VERSION:
            raise QuestionModelError(f'{self.model_dir}: question graph version {version!r}, this runtime reads '
                                     f'{QA_MODEL_VERSION!r}: export the QA checkpoint again with this version')
        try:
            self.vocabulary = meta.values['geovr.qa_vocabulary']
            self.memory_layout = meta.values['geovr.memory']
            self.geometry = meta.get('geovr.geometry') or {}
            if not isinstance(self.geometry, dict):
                raise ValueError(f'geovr.geometry must be a JSON object, got {self.geometry!r}')
            max_tokens = int(enc_meta.get('geovr.max_tokens', 128))
        except (KeyError, ValueError) as error:
            raise QuestionModelError(f'{self.model_dir}: question graph metadata is incomplete ({error})') from error
        self.categories = list(self.vocabulary['categories'])
        self.kinds = dict(self.vocabulary['answer_kind'])
        self.numeric = list(self.vocabulary['numeric_categories'])
        self.units = dict(self.vocabulary['units'])
        self.max_options = int(self.vocabulary['max_options'])
        self.tokenizer = Tokenizer.from_file(os.path.join(self.model_dir, 'tokenizer.json'))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token='[PAD]')
        self.words = {w for w in self.tokenizer.get_vocab() if w.isalpha()}
        self.encoder = create_backend(backend, self.model_dir, graph='question_encoder',
                                      **backend_options)
        self.graph = create_backend(backend, self.model_dir, graph='question_graph',
                                    **backend_options)
        self.max_keyframes = int(max_keyframes)
        self.frame = frame
        self.max_chars = int(max_chars)
        self.last_timing: dict[str, float] = {}

    def geometry_mismatch(self, perception_config_sha256: str) -> str | None:
        """Why this question model does not fit the perception model whose graph carries
        `perception_config_sha256` (its `geovr.config_sha256`), or None when it fits or the
        question graph does not say which geometry model it was trained on. The memory holds
        that model's tokens: another model's tokens make the answers unreliable."""
        trained_on = self.geometry.get('config_sha256')
        if not trained_on or trained_on == perception_config_sha256:
            return None
        return (f'the question model {self.model_dir!r} was trained on the tokens of the geometry model with '
                f'config sha256 {trained_on[:12]}..., the perception model is {perception_config_sha256[:12]}...: '
                f'answers will be unreliable; export both from one training (models/README.md)')

    # ---- stages

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) float32 unit-norm embeddings."""
        return self.encode(texts)[0]

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> embeddings (T, 384) unit norm, token_states (T, L, 384), token mask (T, L)."""
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        out = self.encoder.infer({'input_ids': ids, 'attention_mask': mask})
        return out['embedding'], out['token_states'], mask.astype(np.float32)

    def _empty_memory(self, token_dim: int) -> dict[str, np.ndarray]:
        return {'memory_tokens': np.zeros((1, 1, token_dim), np.float32),
                'memory_xyz': np.zeros((1, 1, 3), np.float32), 'memory_time': np.zeros((1, 1), np.float32),
                'memory_mask': np.zeros((1, 1), np.float32)}

    def run_graph(self, question: str, options: list[str], memory: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Embed and run the graph for one question; returns the graph outputs (batch 1)."""
        start = time.perf_counter()
        emb, states, token_mask = self.encode([question] + options)
        length = max(1, int(token_mask[0].sum()))
        self.last_timing['encoder_s'] = time.perf_counter() - start
        k = max(1, len(options))
        opts = np.zeros((1, k, emb.shape[1]), np.float32)
        mask = np.zeros((1, k), np.float32)
        if options:
            opts[0, :len(options)] = emb[1:]
            mask[0, :len(options)] = 1
        start = time.perf_counter()
        out = self.graph.infer({'question': emb[:1].astype(np.float32),
                                'question_tokens': np.ascontiguousarray(states[:1, :length], np.float32),
                                'question_token_mask': token_mask[:1, :length], 'options': opts,
                                'option_mask': mask, **memory})
        self.last_timing['graph_s'] = time.perf_counter() - start
        return out

    # ---- the interface

    def answer(self, question: str, memory: MemorySnapshot, now: float = 0.0) -> Answer:
        return self.answer_with_options(question, None, memory, now)

    def answer_with_options(self, question: str, options: list[str] | None, memory: MemorySnapshot,
                            now: float = 0.0) -> Answer:
        """As `answer`, with the options of a multiple-choice question given explicitly
        (None: read them from the question)."""
        try:
            text = validate_question(question, self.max_chars)
            check_english(text, self.words)
            plausible = check_scope(text, self.categories)
        except (InvalidQuestionError, NotEnglishError, OutOfScopeError) as error:
            return Answer(False, str(error), frame=self.frame)
        options = list(options) if options is not None else parse_options(text)
        if len(options) > self.max_options:
            return Answer(False, f'{len(options)} options given, the model takes at most {self.max_options}',
                          frame=self.frame)
        token_dim = int(self.memory_layout['token_dim'])
        if not memory.entries:
            out = self.run_graph(text, options, self._empty_memory(token_dim))
            category = self.categories[self._category_probs(out, plausible).argmax()]
            return Answer(False, NOTHING_SEEN_MESSAGE, category=category, unit=self.units.get(category, ''),
                          frame=self.frame)
        dims = {np.asarray(e.tokens).shape[-1] for e in memory.entries}
        if dims != {token_dim}:
            return Answer(False, f'memory tokens have {sorted(dims)} channels, the question model was trained '
                                 f'on {token_dim}: the perception and question models do not belong together',
                          frame=self.frame)
        arrays = memory_arrays(memory.entries, self.memory_layout.get('token_grid'),
                               self.memory_layout.get('pooled_grid'), self.max_keyframes)
        out = self.run_graph(text, options, arrays)
        return self._decode(out, options, plausible, memory)

    def _category_probs(self, out: dict[str, np.ndarray], plausible: list[str] | None = None) -> np.ndarray:
        """Category probabilities (C,), zero outside the categories the question's words allow
        (`geovr_ros.language.text.plausible_categories`; None: all)."""
        logits = np.asarray(out['category_logits'][0], np.float64).copy()
        if plausible is not None:
            logits[[c not in plausible for c in self.categories]] = -np.inf
        return _softmax(logits)

    def _decode(self, out: dict[str, np.ndarray], options: list[str], plausible: list[str] | None = None,
                memory: MemorySnapshot | None = None) -> Answer:
        """The graph's outputs (in odom, the memory entries' frame) as an answer in the memory's
        trajectory frame (`MemorySnapshot.trajectory_in`), its sentence included."""
        probs = self._category_probs(out, plausible)
        c = int(probs.argmax())
        category, kind = self.categories[c], self.kinds[self.categories[c]]
        confidence = float(probs[c])
        moved = memory is not None and memory.T_frame_odom is not None
        T_frame_odom = memory.T_frame_odom if moved else np.eye(4)
        frame = memory.trajectory_frame if moved else self.frame
        point = transform_points(T_frame_odom, np.asarray(out['point'][0], np.float64))
        position = np.asarray(out['position'][0], np.float64)
        heading = float(out['heading'][0])
        base = dict(category=category, frame=frame)
        if kind == 'numeric':
            value = float(math.exp(out['log_values'][0][self.numeric.index(category)]))
            unit = self.units[category]
            if category == 'object_count':
                value = float(max(0, round(value)))
            sentence = numeric_sentence(category, value, unit)
            return Answer(True, 'ok', sentence, value=value, unit=unit or 'objects', confidence=confidence, **base)
        if kind == 'choice':
            if not options:
                return Answer(False, f'this looks like a multiple-choice question ({category}) but it lists no '
                                     'options; give them as "(A) ...; (B) ..." or after a colon', **base)
            choice_probs = _softmax(out['choice_logits'][0][:len(options)])
            index = int(choice_probs.argmax())
            return Answer(True, 'ok', choice_sentence(options, index), value=float(index), unit='option index',
                          confidence=confidence * float(choice_probs[index]), **base)
        if kind == 'point':
            return Answer(True, 'ok', point_sentence(point, frame), value=float(np.linalg.norm(point)),
                          unit='m', points=point[None].copy(), confidence=confidence, **base)
        c_, s_ = math.cos(heading), math.sin(heading)
        T_body = T_frame_odom @ make_pose(np.array([[c_, -s_, 0.0], [s_, c_, 0.0], [0.0, 0.0, 1.0]]), position)
        position, heading = T_body[:3, 3], float(yaw_from_pose(T_body))
        heading_probs = _softmax(out['heading_logits'][0])
        return Answer(True, 'ok', pose_sentence(position, heading, frame), value=heading, unit='rad',
                      points=position[None].copy(), pose=body_to_optical(T_body),
                      confidence=confidence * float(heading_probs.max()), **base)
