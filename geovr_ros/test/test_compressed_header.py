"""The size of a compressed image is read from its PNG/JPEG header before decoding, so a
small file that would decode to gigabytes is refused unread."""
import struct
import zlib

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage

from geovr_ros.geometry import ImageEncodingError
from geovr_ros.ros.conversions import (
    ImageTooLargeError, compressed_image_size, compressed_msg_to_rgb)

cv2 = pytest.importorskip('cv2')


def encoded(ext, width, height, *params):
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)
    ok, data = cv2.imencode(ext, image, list(params))
    assert ok
    return data.tobytes()


def png_claiming(width, height):
    """A valid small PNG whose IHDR (CRC fixed) claims width x height."""
    data = bytearray(encoded('.png', 8, 8))
    ihdr = data[12:29]
    ihdr[4:12] = struct.pack('>II', width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


@pytest.mark.parametrize('ext, params', [('.png', ()), ('.jpg', ()),
                                         ('.jpg', (cv2.IMWRITE_JPEG_PROGRESSIVE, 1))],
                         ids=['png', 'jpeg baseline (SOF0)', 'jpeg progressive (SOF2)'])
def test_the_header_gives_the_size_the_decoder_gives(ext, params):
    for width, height in ((320, 240), (17, 3)):
        assert compressed_image_size(encoded(ext, width, height, *params)) == (width, height)


def test_a_16000x16000_png_is_refused_before_decoding():
    msg = CompressedImage(format='png', data=png_claiming(16000, 16000))
    assert compressed_image_size(msg.data) == (16000, 16000)
    with pytest.raises(ImageTooLargeError, match='16000x16000 has more than max_image_pixels'):
        compressed_msg_to_rgb(msg, max_pixels=16777216)


@pytest.mark.parametrize('data', [b'', b'GIF89a' + bytes(20), b'\x89PNG\r\n\x1a\n' + bytes(4),
                                  b'\xff\xd8\xff\xda\x00\x02', b'\xff\xd8\x00\x00\x00\x00'],
                         ids=['empty', 'gif', 'png without IHDR', 'jpeg scan before frame',
                              'jpeg garbage'])
def test_neither_png_nor_jpeg_or_a_broken_header_is_refused(data):
    with pytest.raises(ImageEncodingError):
        compressed_image_size(data)


def test_a_header_that_disagrees_with_the_data_is_refused():
    msg = CompressedImage(format='png', data=png_claiming(9, 8))
    with pytest.raises(ImageEncodingError):
        compressed_msg_to_rgb(msg, max_pixels=1000)
    good = compressed_msg_to_rgb(CompressedImage(format='png', data=encoded('.png', 32, 24)))
    assert good.shape == (24, 32, 3)
