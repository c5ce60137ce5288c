"""Spatial memory and question answering over it (pure numpy, no rclpy)."""
from geovr_ros.memory.answerer import (
    NO_MODEL_MESSAGE, Answer, ChainedAnswerer, GeometricAnswerer, QuestionAnswerer)
from geovr_ros.memory.spatial_memory import MemoryEntry, MemorySnapshot, SpatialMemory
from geovr_ros.memory.validation import InvalidQuestionError, validate_question

__all__ = ['Answer', 'ChainedAnswerer', 'GeometricAnswerer', 'InvalidQuestionError', 'MemoryEntry',
           'MemorySnapshot', 'NO_MODEL_MESSAGE', 'QuestionAnswerer', 'SpatialMemory',
           'validate_question']
