"""The 3D object map (pure numpy, no rclpy): naming cells with an indoor vocabulary,
lifting them to 3D observations, fusing them into object instances in `map`, and
answering questions from those instances. docs/objects.md has the design and figures."""
from geovr_ros.objects.mapper import ObjectMapper, map_config_of
from geovr_ros.objects.object_map import ObjectInstance, ObjectMap, ObjectMapConfig, ObjectMapError
from geovr_ros.objects.observations import (ObjectObservation, ObservationConfig, cell_grid_shape,
                                            connected_components, extract_observations)
from geovr_ros.objects.queries import ObjectAnswerer, answer_from_objects, parse_object_question
from geovr_ros.objects.verifier import InstanceVerifier, VerifierError
from geovr_ros.objects.vocabulary import Category, Vocabulary, VocabularyError, load_vocabulary

__all__ = ['Category', 'InstanceVerifier', 'ObjectAnswerer', 'ObjectInstance', 'ObjectMap', 'ObjectMapConfig', 'ObjectMapError',
           'ObjectMapper', 'ObjectObservation', 'ObservationConfig', 'VerifierError', 'Vocabulary', 'VocabularyError',
           'answer_from_objects', 'cell_grid_shape', 'connected_components', 'extract_observations',
           'load_vocabulary', 'map_config_of', 'parse_object_question']
