"""Feature distortion: how far fine-tuning moves the image features.

Kumar et al. 2022 ("Fine-tuning can distort pretrained features and underperform out-of-distribution",
ICLR; LP-FT) explain the ID/OOD trade-off of fine-tuning by the change of features; Lipsum-FT (Nam et al.
2024, §4.1) re-examines that explanation. The exact distortion measure Lipsum-FT plots is not known
(docs/protocols.md §4.2 [NF]); this module uses LP-FT's notion on L2-normalised features, as CLIP compares them.
"""
from __future__ import annotations


def feature_distortion(features, features0) -> float:
    """``mean_x ‖F_θ(x)/‖F_θ(x)‖ − F_θ0(x)/‖F_θ0(x)‖‖₂`` over the rows of two ``[N, d]`` feature arrays
    (numpy or torch) of the same images under the fine-tuned (θ) and the zero-shot (θ0) image tower.

    Zero for identical towers; at most 2 (opposite unit vectors). Raises ``ValueError`` on shape mismatch.
    """
    import numpy as np

    f, f0 = _unit(features), _unit(features0)
    if f.shape != f0.shape:
        raise ValueError(f"feature arrays differ in shape: {f.shape} vs {f0.shape}")
    return float(np.linalg.norm(f - f0, axis=1).mean()) if len(f) else float("nan")


def _unit(x):
    import numpy as np

    x = np.asarray(x.detach().float().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be [N, d], got shape {x.shape}")
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
