"""sam2's noise is silenced (its torch.jit.script FutureWarning, its INFO line on every
set_image) while our own warnings and log records still reach the user."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch

from ovpaint.models import sam2_loader
from ovpaint.pipelines.sam2_adapter import new_predictor


def test_sam2_warning_and_info_lines_are_silenced_ours_are_not(caplog):
    bundle = sam2_loader.build_tiny(0)
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # as a user's environment may have it
        sam2_loader.quiet_sam2()
        predictor = new_predictor(bundle)  # a fresh bundle's first: sam2 scripts its transforms
        with torch.inference_mode():
            predictor.set_image(np.zeros((64, 64, 3), np.uint8))
        warnings.warn("a warning of ours", FutureWarning, stacklevel=1)
        logging.getLogger("ovpaint.pipelines").info("a log line of ours")
        logging.warning("a third-party warning through the root logger")
    texts = [str(w.message) for w in seen]
    assert not any("jit.script" in t for t in texts), texts
    assert "a warning of ours" in texts
    messages = [r.getMessage() for r in caplog.records]
    assert not any("image embeddings" in m.lower() for m in messages), messages
    assert "a log line of ours" in messages
    assert "a third-party warning through the root logger" in messages
