"""ovpaint: open-vocabulary segmentation and inpainting."""

__version__ = "0.1.0"
