"""Colours of objects: seen in the pixels an observation lifted, kept per instance and saved,
named, and used to tell "the red chair" from "the blue chair" (no ROS)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_objects_map import K, VOCAB, frame_with_chair, obs
from test_objects_queries import CAMERA, ROOM

from geovr_ros.geometry import ShapeError
from geovr_ros.objects import ObjectMap, ObjectMapConfig, answer_from_objects, extract_observations, load_vocabulary
from geovr_ros.objects.colours import COLOUR_PROTOTYPES, colour_distance, colour_name, colour_word_before, nearest_colours

RED, BLUE = np.array([0.80, 0.10, 0.10]), np.array([0.10, 0.25, 0.80])


def test_colour_names_hold_under_shading():
    for name, rgb in COLOUR_PROTOTYPES.items():
        assert colour_name(np.asarray(rgb)) == name
    for name in ('red', 'green', 'blue', 'yellow', 'purple', 'cyan'):   # in shadow: 60 % as bright
        assert colour_name(0.6 * np.asarray(COLOUR_PROTOTYPES[name])) == name, name
    assert colour_name(None) == '' and colour_name(np.full(3, np.nan)) == ''
    assert colour_distance(RED, 0.6 * RED) < colour_distance(RED, BLUE) / 3


def test_many_colours_are_named_as_each_alone():
    rgb = np.random.default_rng(0).random((500, 3))
    prototypes = np.array(list(COLOUR_PROTOTYPES.values()))
    nearest = [int(np.argmin(colour_distance(c[None], prototypes))) for c in rgb]   # the definition, one by one
    assert nearest_colours(rgb).tolist() == nearest
    assert [colour_name(c) for c in rgb[:20]] == [list(COLOUR_PROTOTYPES)[i] for i in nearest[:20]]


def test_the_colour_word_before_an_object():
    assert colour_word_before('where is the big red ') == 'red'
    assert colour_word_before('the grey ') == 'gray' and colour_word_before('a blue-coloured ') == 'blue'
    assert colour_word_before('where is the ') == '' and colour_word_before('reddish ') == ''


def test_an_observation_takes_the_median_colour_of_its_foreground():
    probs, depth = frame_with_chair(background=6.0)
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[...] = (20, 60, 200)                      # the wall behind: blue
    rgb[18:30, 18:30] = (200, 30, 30)             # the chair's pixels: red
    rgb[18:20, 18:30] = (250, 250, 250)           # a highlight on a few of them
    (o,) = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB, rgb=rgb)
    np.testing.assert_allclose(o.colour, np.array([200, 30, 30]) / 255)
    assert colour_name(o.colour) == 'red'
    (o,) = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB)
    assert np.isnan(o.colour).all()
    with pytest.raises(ShapeError, match='rgb must be'):
        extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB, rgb=rgb[:, :32])


def test_an_instance_keeps_the_median_of_its_views_colours_and_saves_it():
    m = ObjectMap(ObjectMapConfig(max_colour_distance=None))   # colours do not part views here
    views = [RED, RED * 0.9, BLUE]                # one view of a blue thing named chair beside it
    m.add([dataclasses.replace(obs(stamp=float(t)), colour=c) for t, c in enumerate(views)])
    m.add([obs('table', centre=(3.0, 0.0, 2.0), stamp=0.0), obs('table', centre=(3.0, 0.0, 2.0), stamp=1.0)])
    chair, table = m.instances()
    assert colour_name(chair.colour) == 'red' and table.colour is None   # no image: no colour
    arrays, meta = m.to_arrays()
    loaded = ObjectMap.from_arrays(arrays, meta)
    np.testing.assert_allclose(loaded.instances()[0].colour, chair.colour)
    assert loaded.instances()[1].colour is None
    del arrays['obs_colour']                      # a map saved before colours
    assert all(i.colour is None for i in ObjectMap.from_arrays(arrays, meta).instances())
    mixed = ObjectMap(ObjectMapConfig(max_colour_distance=None))   # cells named alike over different things
    mixed.add([dataclasses.replace(obs(stamp=float(t)), colour=np.asarray(COLOUR_PROTOTYPES[c]))
               for t, c in enumerate(['red', 'blue', 'gray', 'black', 'red'])])
    assert mixed.instances()[0].colour is None


def test_things_of_one_category_in_different_colours_stay_apart():
    """A red chair and a blue chair 0.3 m apart: one chair by position, two by colour; a
    shaded view of the red one still joins it."""
    def views(objects):
        for t in range(3):
            objects.add([dataclasses.replace(obs(centre=(0.0, 0.0, 2.0), stamp=float(t)), colour=RED * (1 - 0.2 * t)),
                         dataclasses.replace(obs(centre=(0.3, 0.0, 2.0), stamp=float(t)), colour=BLUE)])
        return objects.instances()
    red, blue = views(ObjectMap())
    assert (colour_name(red.colour), colour_name(blue.colour)) == ('red', 'blue') and red.n_views == blue.n_views == 3
    (both,) = views(ObjectMap(ObjectMapConfig(max_colour_distance=None)))
    assert both.n_views == 3
    with pytest.raises(ValueError, match='max_colour_distance'):
        ObjectMapConfig(max_colour_distance=-1.0)


@pytest.fixture(scope='module')
def vocab():
    return load_vocabulary()


def coloured(room, colours):
    return [dataclasses.replace(i, colour=colours.get(i.instance_id)) for i in room]


def test_a_colour_word_picks_the_instance_of_that_colour(vocab):
    # chair 2 (1, 0) is the more confident and blue; chair 3 (-1, 0) is red
    room = coloured(ROOM, {2: BLUE, 3: RED * 0.7, 1: np.array([0.5, 0.5, 0.5])})

    def ask(question):
        return answer_from_objects(question, room, vocab, CAMERA, 'map', np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(ask('Where is the red chair?').points[0], [-1.0, 0.0, 0.45])
    np.testing.assert_allclose(ask('Where is the chair?').points[0], [1.0, 0.0, 0.45])
    assert ask('How many red chairs are there?').value == 1.0 and ask('How many chairs are there?').value == 2.0
    a = ask('How many green chairs are there?')
    assert a.success and a.value == 0.0 and a.answer == 'I have seen no green chairs: 0'
    room[2] = dataclasses.replace(room[2], colour=None)          # the red chair's colour not told any more
    assert ask('How many red chairs are there?').answer == 'I have seen no red chairs: 0; 1 chair whose colour I could not tell'
    room[2] = dataclasses.replace(room[2], colour=RED * 0.7)
    assert ask('How far is the red chair from the table?').value == pytest.approx(np.hypot(1.0, 0.075))
    a = ask('If I am standing by the sofa and facing the table, is the red chair to my left or right?')
    assert a.value == 1.0 and 'the red chair lies 18 deg to the right' in a.answer
    a = ask('What colour is the chair?')                          # the most confident chair
    assert a.success and a.category == 'object_colour' and a.answer.startswith('the chair looks blue')
    np.testing.assert_allclose(a.points[0], [1.0, 0.0, 0.45])
    a = ask('What is the colour of the table?')                   # no colour of its own
    assert not a.success and 'cannot tell its colour' in a.message
    assert ask('What colour is the piano?').not_seen
    a = ask('Which of these is closest to the blue chair: the red chair, the sofa?')   # one category, two objects
    assert a.success and a.value == 0.0 and 'red chair 2.00 m' in a.answer
