"""Option parsing and the English check of the runtime (pure Python)."""
import pytest

from geovr_ros.language.text import (NotEnglishError, OutOfScopeError, check_english, check_scope, english_score,
                                     parse_options, plausible_categories)


@pytest.mark.parametrize('question, options', [
    ('Which of these is closest to the green chair: white chair, cyan ball, purple trash bin, pink chair?',
     ['white chair', 'cyan ball', 'purple trash bin', 'pink chair']),
    ('If I am standing by the a and facing the b, is the c to my left or right or back?', ['left', 'right', 'back']),
    ('Imagine you are at the a facing the b. In which direction is the c (front-left or front-right or back-left '
     'or back-right)?', ['front-left', 'front-right', 'back-left', 'back-right']),
    ('Among red box, blue cup, and green lamp, which one is the closest to the door?',
     ['red box', 'blue cup', 'green lamp']),
    ('In which order do these first appear: lamp, chair, box? (A) lamp, chair, box; (B) chair, box, lamp; '
     '(C) box, lamp, chair', ['lamp, chair, box', 'chair, box, lamp', 'box, lamp, chair']),
    ('Which turns? A. turn left, turn right B. turn back, turn left', ['turn left, turn right', 'turn back, turn left']),
    ('Which is nearer to the bed, the chair or the lamp?', ['chair', 'lamp']),
    ('Which object is closest to the sofa, the red box, a lamp or the blue chair?', ['red box', 'lamp', 'blue chair']),
    ('Which is closer to the bed: the chair or the lamp?', ['chair', 'lamp']),
    ('What did you see first, the duck or the teddy bear?', ['duck', 'teddy bear']),
    ('Is the lamp or the box closer to the sofa?', ['lamp', 'box']),
    ('Among the chair, lamp and plant, which is closest to the sofa?', ['chair', 'lamp', 'plant']),
    ('Of the sofa and the bed, which is bigger?', ['sofa', 'bed']),
    ('Where is the red chair?', []),
    ('Which chair is nearer, after you turned?', []),
    ('How many chairs are in this room?', []),
    # VSI-Bench's own templates: options in parentheses without 'or', a note after the question
    ('Measuring from the closest point of each object, which of these objects (lamp, plant, chair, bottle) is the '
     'closest to the sofa? If there are multiple instances of an object category, measure to the closest.',
     ['lamp', 'plant', 'chair', 'bottle']),
    ('If I am standing by the sofa and facing the table, is the lamp to my left, right, or back? An object is to my '
     'back if I would have to turn at least 135 degrees in order to face it.', ['left', 'right', 'back']),
    ('If I am standing by the sofa and facing the table, is the lamp to the front-left, front-right, back-left, or '
     'back-right of me?', ['front-left', 'front-right', 'back-left', 'back-right']),
    ('What is the size of this room (in square meters)? If multiple rooms are shown, estimate the size of the '
     'combined space.', []),
    ('If I am standing by the sofa and facing the table, is the lamp to the left or the right of the table?',
     ['left', 'right']),
])
def test_parse_options(question, options):
    assert parse_options(question) == options


@pytest.mark.parametrize('question', ['Wo ist der rote Stuhl?', 'Où est la chaise rouge ?', '¿Dónde está la silla?',
                                      'Где красный стул?', '红色的椅子在哪里？'])
def test_other_languages_are_refused(question):
    with pytest.raises(NotEnglishError, match='English'):
        check_english(question)


@pytest.mark.parametrize('question', ['Where is the red chair?', 'Locate the cyan bookshelf.',
                                      'Give the 3D position of the teddy bear.', 'How big is the room?'])
def test_english_questions_pass(question):
    assert english_score(question) >= 0.5
    check_english(question)


CATEGORIES = ['object_count', 'abs_distance', 'object_size', 'room_size', 'rel_distance', 'rel_direction',
              'route_plan', 'appearance_order', 'where_is', 'situated_localization']


@pytest.mark.parametrize('question, expected, excluded', [
    ('How wide is the bed?', 'object_size', 'room_size'),
    ('How tall is the bookshelf?', 'object_size', 'abs_distance'),
    ('Show me the teddy bear.', 'where_is', 'object_count'),
    ('Is there a lamp?', 'object_count', 'where_is'),
    ('What appeared first: the lamp or the bed?', 'appearance_order', 'rel_distance'),
    ("I'm looking at the tv and the sofa is on my right. Where am I?", 'situated_localization', 'object_size'),
    ('How many square feet is the room?', 'room_size', 'rel_direction'),
])
def test_the_words_of_a_question_bound_its_category(question, expected, excluded):
    plausible = plausible_categories(question, CATEGORIES)
    assert expected in plausible and excluded not in plausible


def test_a_category_without_cues_stays_plausible():
    assert plausible_categories('What colour is it?', ['object_colour']) == ['object_colour']


@pytest.mark.parametrize('question', ['What color is the chair?', 'What is on the table?', 'Hello', 'Thanks!'])
def test_questions_outside_the_model_are_refused(question):
    with pytest.raises(OutOfScopeError, match='not a question the spatial model answers'):
        check_scope(question, CATEGORIES)
