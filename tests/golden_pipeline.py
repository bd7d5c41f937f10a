"""The seeded smoke pipeline whose numbers tests/test_golden.py pins (fp32 features and training, one
thread). Run it as a script to print the numbers: ``python tests/golden_pipeline.py``."""
from __future__ import annotations


def golden_numbers() -> dict:
    import numpy as np
    import torch

    from clipstudy import experiment as ex
    from clipstudy.analysis import energy_gap, random_text_features
    from clipstudy.metrics import auroc, ece
    from clipstudy.models import load_model
    from clipstudy.scores import energy, mcm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        loaded = load_model("embedded")
        spec = {"dataset": "world", "split": "test", "classes": "id", "domain": "photo", "n": 90, "seed": 0}
        id_test = ex.dataset_from_spec(spec)
        far = ex.dataset_from_spec({**spec, "classes": "far_ood", "n": 60, "seed": 2})
        pool = ex.dataset_from_spec({**spec, "split": "train", "n": 300})
        names = tuple(id_test.classnames)
        zs = ex.build(loaded, ex.get_recipe("zeroshot"), names, seed=1)
        out_id = ex.method_outputs(zs, loaded, id_test, progress=False)
        out_far = ex.method_outputs(zs, loaded, far, progress=False)
        s = float(loaded.logit_scale)
        n = {"zeroshot_accuracy": out_id.accuracy,
             "mcm_auroc_far": auroc(mcm(out_id.sims), mcm(out_far.sims)),
             "energy_auroc_far": auroc(energy(out_id.sims, logit_scale=s), energy(out_far.sims, logit_scale=s)),
             "zeroshot_ece15": ece(s * out_id.sims, out_id.labels, n_bins=15, from_logits=True),
             "logit_scale": s}
        coop = ex.get_recipe("coop", steps=5, precision="fp32", max_steps=None)
        train = ex.few_shot_set(pool, 2, 1)
        method, _, _ = ex.train_method(loaded, coop, train, names, 1, progress=False)
        n["coop_2shot_accuracy"] = ex.method_outputs(method, loaded, id_test, progress=False).accuracy
        ft = ex.get_recipe("ft", steps=3, precision="fp32", max_steps=None, wise_alphas=())
        method, _, _ = ex.train_method(loaded, ft, ex.few_shot_set(pool, 1, 0), names, 0, progress=False)
        tuned = ex.method_outputs(method, loaded, id_test, progress=False)
        texts = random_text_features(loaded, 64, 8, seed=2024)
        n["ft_energy_gap"] = energy_gap(tuned.features, out_id.features, texts)
        n["ft_accuracy"] = tuned.accuracy
        return {k: float(v) for k, v in n.items()}
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    import os

    os.environ.setdefault("CLIPSTUDY_FEATURE_PRECISION", "fp32")
    for key, value in golden_numbers().items():
        print(f"    {key!r}: {value!r},")
