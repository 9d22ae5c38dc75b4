"""Inpainting engines with crop-around-mask, colour match and feathered paste-back."""
