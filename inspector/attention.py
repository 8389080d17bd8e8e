"""The attention map chosen by key: ``"cam"`` (the class activation map of the predicted class)
or an SE block's name (``"se1"``, ...). The one place that knows the keys, for the live camera's
overlay and the inspection panel."""
from __future__ import annotations

from typing import Any

import numpy as np

CAM = "cam"     # the class activation map


def attention_map(inspection: Any, key: str) -> np.ndarray | None:
    """The (h, w) map in 0..1 that ``key`` names in an inspection (inspector.engine.Inspection),
    or None when it names none (e.g. "none", or a block this model lacks)."""
    if key == CAM:
        return inspection.cam()
    for block in inspection.se_blocks:
        if block.name == key:
            return block.feature_map
    return None
