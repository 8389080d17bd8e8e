"""The attention map chosen by key: ``"cam"`` (the class activation map of the predicted class)
or an SE block's name (``"se1"``, ...). The one place that knows the keys, for the live camera's
overlay and the inspection panel."""
from __future__ import annotations

from typing import Any

import numpy as np

from training.images import crop_to_box

CAM = "cam"     # the class activation map


def attention_map(inspection: Any, key: str) -> np.ndarray | None:
    """The (h, w) map in 0..1 that ``key`` names in an inspection (inspector.engine.Inspection),
    or None when it names none (e.g. "none", or a block this model lacks). Where the inspected
    frame was made square by reflection (``inspection.content``: ``inspector.tiles
    .inspect_input``), only the part over the frame itself, so that it lies on the frame."""
    m = None
    if key == CAM:
        m = inspection.cam()
    for block in inspection.se_blocks:
        if block.name == key:
            m = block.feature_map
    return None if m is None else crop_to_box(m, getattr(inspection, "content", None))
