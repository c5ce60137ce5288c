"""Natural-language spatial questions at run time (ONNX graphs + `tokenizers`; no torch, no rclpy)."""
from geovr_ros.language.answerer import NOTHING_SEEN_MESSAGE, LanguageAnswerer, QuestionModelError
from geovr_ros.language.text import NotEnglishError, check_english, parse_options

__all__ = ['LanguageAnswerer', 'NOTHING_SEEN_MESSAGE', 'NotEnglishError', 'QuestionModelError',
           'check_english', 'parse_options']
