"""Inference backends behind one interface (`Backend`); heavy libraries import lazily."""
from geovr_ros.inference.backends.base import (
    Backend, BackendUnavailableError, InferenceError, InputMismatchError, ModelFileError,
    TensorSpec)

__all__ = ['Backend', 'BackendUnavailableError', 'InferenceError', 'InputMismatchError',
           'ModelFileError', 'TensorSpec']
