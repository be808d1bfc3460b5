"""Safe decoding of uploaded photos into RGB arrays (see `decode.decode_image`)."""

from worker.render.imaging.decode import DecodedImage, decodable_formats, decode_image
from worker.render.imaging.errors import ImageError

__all__ = ["DecodedImage", "ImageError", "decodable_formats", "decode_image"]
