"""The 3D object map (pure numpy, no rclpy): naming cells with an indoor vocabulary,
lifting them to 3D observations, fusing them into object instances in `map`, and
answering questions from those instances. docs/objects.md has the design and figures."""
from geovr_ros.objects.vocabulary import Category, Vocabulary, VocabularyError, load_vocabulary

__all__ = ['Category', 'Vocabulary', 'VocabularyError', 'load_vocabulary']
