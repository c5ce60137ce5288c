"""The geovr-data command line: generate twice gives identical files, inspect, convert, bench."""

import subprocess
import sys

from geovr_training.data.cli import main


def test_generate_twice_identical_and_inspect_writes_a_png(tmp_path, capsys):
    args = ['--scenes', '2', '--frames-per-scene', '3', '--seed', '9', '--resolution', '64x48', '--qa-per-scene', '6']
    assert main(['generate', '--out', str(tmp_path / 'a'), *args]) == 0
    assert main(['generate', '--out', str(tmp_path / 'b'), *args, '--workers', '2']) == 0
    for name in ('manifest.json', 'scene_00000.geovr.npz', 'scene_00001.geovr.npz'):
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()
    assert main(['inspect', str(tmp_path / 'a'), '--png', str(tmp_path / 'sheet.png')]) == 0
    out = capsys.readouterr().out
    assert 'sequences 2  frames 6' in out and 'QA items' in out
    png = (tmp_path / 'sheet.png').read_bytes()
    assert png.startswith(b'\x89PNG') and len(png) > 20000


def test_convert_and_errors_exit_with_status_2(rendered_sequence, tmp_path, capsys):
    from test_data_loaders import write_frames_folder
    folder = write_frames_folder(rendered_sequence, tmp_path / 'frames', n=2)
    assert main(['convert', '--from', 'frames', str(folder), '--out', str(tmp_path / 'conv')]) == 0
    assert main(['inspect', str(tmp_path / 'conv')]) == 0
    (folder / 'frame-000001.pose.txt').unlink()
    assert main(['convert', '--from', 'frames', str(folder), '--out', str(tmp_path / 'conv2')]) == 2
    assert 'no pose file for frame(s) [1]' in capsys.readouterr().err


def test_console_script_help():
    result = subprocess.run([sys.executable, '-m', 'geovr_training.data.cli', '--help'], capture_output=True, text=True)
    assert result.returncode == 0 and 'generate' in result.stdout and 'convert' in result.stdout


def test_bench_prints_frames_per_second(capsys):
    assert main(['bench', '--workers', '1', '--scenes', '1', '--frames-per-scene', '3', '--resolution', '64x48']) == 0
    assert 'frames/s wall' in capsys.readouterr().out
