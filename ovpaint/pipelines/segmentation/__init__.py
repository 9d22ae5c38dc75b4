"""Segmentation methods (dense SCLIP, SAM2 refinement, proposals, hybrid, clicks) and the
one entry point every front-end calls (:func:`segment.segment`)."""
