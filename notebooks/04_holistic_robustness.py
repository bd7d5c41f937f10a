# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 — Holistic robustness of CLIP: six factors against every reliability axis (Tu, Deng & Gedeon, TPAMI 2025)
#
# Tu et al. evaluate a large pool of CLIP models on many reliability axes and ask which of **six factors**
# drives each: the visual encoder's *architecture*, the *training distribution*, the *training-set size*,
# *fine-tuning*, the *contrastive loss* and the *test-time prompts*. Their axes, each plotted against ID
# accuracy with one point per model:
#
# 1. **visual-factor robustness** — accuracy per nuisance factor (pose, size, colour, background, partial
#    view, ...) and its *effective robustness* (distance above the line fitted on logit axes across a
#    baseline family of standard models, as Taori et al. 2020 define it); **shape bias** on cue-conflict
#    images;
# 2. **OOD detection** — AUROC / FPR95; the paper scores zero-shot models with MCM and fine-tuned ones with
#    MSP;
# 3. **calibration** — ECE and NLL in distribution and under shifts, before and after temperature scaling
#    fitted on ID data;
# 4. **image–text bridging** — retrieval recall@K;
# 5. **3D awareness** — here its corruption half: accuracy per corruption and severity (the world's
#    geometric corruptions rotate / zoom / occlude stand in for ImageNet-3DCC);
# 6. **vision–language interaction in large multimodal models** (LLaVA) — out of scope offline (see the end).
#
# **Embedded default.** A zoo of small CLIPs is pretrained from scratch on the embedded world by the
# project's `clipstudy pretrain` pipeline. Two zoos are defined (`clipstudy/data/resources/zoo.json`): the
# `shipped` zoo, the shipped model's recipe with one factor changed per model, whose weights come with the
# package (`zoo-*` models; `retrain_zoo=True` retrains them here, for hours), and the `quick` zoo, run below
# until the shipped zoo's weights are in the package. The `quick` zoo (presets `zoo600-*` in
# `pretrain_presets.json`, 600 steps each): a ResNet base (photo-heavy mixture, a new image at every step) and
# one model per factor value — a ViT tower, a domain-balanced mixture, 2k and 12k unique images, the
# SigLIP loss — plus FT and FLYP fine-tuned copies of the base on the 30 ID classes, and the
# shipped `embedded` model as a grey reference point (the base recipe trained about 10× longer). Every
# zero-shot model is evaluated with one prompt and with the world's 30-template ensemble (hollow markers).
# Models train on demand and are cached; a rerun retrains nothing. A ConvNeXt tower (timm `convnext_atto`) is
# in the `extended` zoo (`zoo="extended"`): on this CPU it costs 1.5x a ResNet step and at the default step
# budget it stays near chance, so it is left out of the default run. **Changes of protocol forced by the
# embedded world and a 2-core CPU:** a few minutes of pretraining per model, so the zoo models are weak
# (their accuracies are printed below); ID = 30 world classes as photos; the world's labelled factors
# replace ImageNet-X; shift = the four non-photo domains; OOD = near-OOD sibling shapes, far-OOD icons and
# texture-only images; retrieval on descriptive world captions. The `paper` profile runs the same notebook
# on open_clip checkpoints and ImageNet, ImageNet-X, ImageNet-V2/Sketch/R/A, the MCM OOD sets + NINCO,
# Geirhos' cue-conflict stimuli, ImageNet-C and COCO / Flickr30k.
#
# **Two changes of protocol.**
#
# * *Both OOD scorers for every model.* Scoring zero-shot models with MCM and fine-tuned ones with MSP makes
#   the fine-tuning contrast mix two effects (switching the scorer alone, on the same similarities, moves
#   AUROC: the table below shows both for every model). Every model (zero-shot and fine-tuned) is now scored with **both** MCM (T = 1)
#   and MSP (at the model's own logit scale); the tidy `ood` table has a `scorer` column, the summary and the
#   factor effects have `ood_auroc_mcm` and `ood_auroc_msp`, each a comparison within one scorer. The
#   paper's pairing is kept only as a labelled panel of Figure 3.
# * *Effective robustness against a baseline family.* Taori et al. (2020) fit the effective-robustness line
#   on the logit-transformed accuracies of standard ImageNet-trained models, and measure every other model
#   against it. The embedded analogue of an ImageNet-trained model is a classifier trained **supervised on
#   the ID classes' photos only**: the base model's image tower from random init plus a linear head,
#   cross-entropy on the study's fine-tuning pool, at several step budgets (`baselines` in `zoo.json`,
#   method `supervised`, trained on demand and cached like the zoo). The lines (per factor value: accuracy
#   on the value vs the factor set's accuracy; per domain shift: shift vs ID accuracy) are fitted on these
#   baseline models alone, so a zoo model on the baseline trend scores 0 and the zoo's mean need not be 0
#   (before, the line was fitted across the zoo itself, so the zoo's mean was about 0 by construction). With
#   fewer than two valid baseline points (accuracies strictly inside (0, 1)) a line is undefined and its
#   effective robustness is NaN, with a note. The real path has no supervised baseline family (there is no
#   ImageNet training set here), so its effective robustness is NaN.

# %% tags=["parameters"]
zoo = "quick"             # a zoo of clipstudy/data/resources/zoo.json (embedded path): shipped, quick, extended, smoke
retrain_zoo = False       # True: pretrain the zoo's shipped models here instead of loading them (hours; resumable)
pretrain_jobs = 2         # pretraining runs side by side, the CPU cores shared among them (2 cores: 1.25x one run)
models = []               # real path: [[arch, pretrained], ...] or [[arch, pretrained, factor, value], ...]
data_root = ""            # real benchmarks: imagenet, imagenet-x, imagenet-c, OOD sets, cue-conflict, coco, flickr30k
device = "cpu"
benchmark = "world"       # world (embedded) or imagenet (real folders)
scale = "embedded"        # recipe scale of the fine-tuned zoo models
prompts = {}              # {label: template set}; empty: a single prompt and the benchmark's ensemble
n_train = 1500            # world: fine-tuning pool (ID photos)
n_test = 600              # ID test images (imagenet: 0 for all)
n_val = 400               # ID validation images for temperature scaling
n_shift = 300             # images per domain-shift set
n_ood = 300               # images per OOD set
n_cue = 400               # cue-conflict images (world)
n_corrupt = 100           # images per corruption and severity
severities = [1, 2, 3, 4, 5]
corruptions = []          # empty: every corruption
n_retrieval = 400         # captioned images for retrieval
threads = 0               # torch CPU threads (0: torch's default)
seed = 0                  # seed of the evaluation sets
out_dir = ""
figures_dir = ""

# %%
import time

import pandas as pd
import torch

from clipstudy import notebook as nb
from clipstudy.studies import holistic as H, holistic_figures as figs

session = nb.setup_notebook("04_holistic_robustness.ipynb", globals())
if threads:
    torch.set_num_threads(threads)
study = H.make_study(benchmark, zoo=zoo, models=models, retrain_zoo=retrain_zoo, pretrain_jobs=pretrain_jobs,
                     data_root=data_root, device=device, scale=scale,
                     prompts=prompts, n_train=n_train, n_test=n_test, n_val=n_val, n_shift=n_shift, n_ood=n_ood,
                     n_cue=n_cue, n_corrupt=n_corrupt, severities=severities, corruptions=corruptions,
                     n_retrieval=n_retrieval, seed=seed)
the_zoo = study.get_zoo()
pd.DataFrame([{"model": m.name, "kind": m.kind, "varies": m.factor, "value": m.value or the_zoo.base_value(m.factor),
               "source": m.preset or (f"{m.recipe} of {m.base}" if m.base else f"{m.model} {m.pretrained}".strip())}
              for m in the_zoo.models]).set_index("model")

# %% [markdown]
# ## Train the zoo (on demand, cached) and evaluate every axis
#
# Each model is pretrained (or fine-tuned) only if its weights are not in `clipstudy.paths.checkpoints_dir()`
# yet; each model's axes are one result cell under `clipstudy.paths.results_dir()`, read back on a rerun.
# Every dataset is encoded once per model and every axis reads those features.

# %%
t0 = time.time()
results = H.run(study)
numbers = H.key_numbers(results)
claims = H.verdicts(numbers)
print(f"zoo trained and evaluated in {(time.time() - t0) / 60:.1f} min")
table = results.models.set_index("entry")[["factor", "value", "id_accuracy", "train_minutes", "steps"]]
table.join(results.summary.set_index("entry")[["shift_accuracy", "shape_bias", "ood_auroc_mcm", "ood_auroc_msp",
                                                "ece_id", "retrieval_r1"]]).round(3)

# %%
# the baseline family the effective-robustness lines are fitted on (supervised, ID photos only)
print(results.er_note or f"{numbers.get('n_factor_lines', 0)} factor-value lines and "
      f"{numbers.get('n_shift_lines', 0)} domain-shift lines fitted on the baseline family")
results.baseline_models.set_index("entry").round(3)

# %%
zs = results.models[(results.models.prompts == results.default_prompts) & results.models.zero_shot]
inner = zs[zs.factor != "reference"]
print(f"How strong is the zoo? Zero-shot ID accuracy ({results.n_classes} ID classes, chance "
      f"{1 / results.n_classes:.1%}) with the single prompt: {inner.id_accuracy.min():.1%} to "
      f"{inner.id_accuracy.max():.1%} for the zoo models"
      + "".join(f"; {r.entry} (reference): {r.id_accuracy:.1%}" for r in zs[zs.factor == "reference"].itertuples())
      + ". Fine-tuned: " + (", ".join(f"{r.entry} {r.id_accuracy:.1%}"
                                      for r in results.models[~results.models.zero_shot].itertuples()) or "none") + ".")

# %% [markdown]
# **What the default run can and cannot show.** The committed figures come from the default profile (29 min
# on 2 CPU cores, zoo training included) and **predate the like-for-like scorers and the baseline line; a rerun on the shipped zoo is pending** (the baseline
# family adds its own training time). At 600 pretraining steps per model the zoo models reach 18–33 %
# single-prompt ID accuracy on 30 classes (chance 3.3 %; the shipped model: 84 %), 6–12 % under domain shift,
# and zero-shot MCM OOD AUROC near chance on average (texture-only images even score as more ID than ID
# photos); the exact ranges under both scorers await the rerun. Axes that need a
# competent model (OOD detection, retrieval, calibration under shift) therefore compare noise, and a
# factor's effect is only meaningful where it exceeds the spread between near-identical models (the two
# training-set sizes). Relative corruption robustness (corrupted / clean accuracy) is pulled towards 1 for
# weak models, because accuracy cannot fall much below chance. Each verdict printed below is computed
# from the run; the sentences after each figure say how far it can be trusted. Longer pretraining (the
# `steps` of the presets) is the lever: the shipped model is the base recipe at 3,600 steps, as is every model of
# the `shipped` zoo.

# %% [markdown]
# ## Figure 1 — visual-factor robustness
#
# **Paper:** CLIP's robustness differs strongly across visual factors; effective robustness (accuracy on a
# factor above what overall accuracy predicts) depends on the training distribution and shrinks after
# fine-tuning, and fewer prompts do *not* improve factor robustness (docs/protocols.md §3.3 d, e). Each panel takes
# a factor's hardest value; the grey crosses are the baseline family (supervised, photos only) and the
# dashed line is fitted on them alone on logit axes (Taori et al. 2020), so points above it are more robust
# to that factor than a standard model of their accuracy. The last panel averages effective robustness
# over every factor value (baseline models included, as crosses).
#
# **Embedded default run:** the figures predate the like-for-like scorers and the baseline line; a rerun on the shipped zoo is pending. (The numbers quoted
# before were measured against a line fitted across the zoo itself, which made the zoo's mean effective
# robustness about 0 by construction; they do not carry over to the baseline line.)

# %%
fig = figs.factor_robustness(results)
session.save_figure(fig, "04_factor_robustness")
if results.er_note:
    print(results.er_note)
er = results.factors.groupby(["factor", "value"])["effective_robustness"].agg(["min", "max"])
spread = (er["max"] - er["min"]).dropna()  # empty when no baseline line could be fitted
print(f"largest spread of effective robustness across models: {spread.max():.3f} ({spread.idxmax()})"
      if len(spread) else "effective robustness is undefined: no factor line could be fitted on the baseline family")
print(claims.get("effective_robustness", "no baseline line, so no mean effective robustness of the zoo"))

# %% [markdown]
# ## Figure 2 — shape bias
#
# **Paper:** zero-shot CLIP is **shape-biased**, and the bias **shrinks after fine-tuning** on ImageNet
# (but not, or less, after contrastive fine-tuning such as FLYP) (docs/protocols.md §3.3 b). Shape bias is the
# fraction of shape decisions among shape-or-texture decisions on cue-conflict images.
#
# **Embedded default run:** **not reproduced for the zoo**: the short-trained zoo models are
# *texture*-biased (shape bias 0.08–0.16), whereas the shipped model, the same recipe trained 6x longer,
# is shape-biased (0.85; 6x the steps at twice the batch): shape bias is something the embedded world's CLIP acquires late in pretraining.
# The fine-tuning direction matches the paper: FT lowers the base model's bias (0.15 → 0.09) and FLYP
# lowers it less (0.10).

# %%
fig = figs.shape_bias(results)
session.save_figure(fig, "04_shape_bias")
print(claims.get("shape_bias", "no fine-tuned model in this zoo"))

# %% [markdown]
# ## Figure 3 — OOD detection
#
# **Paper:** within one training distribution, ID accuracy correlates with OOD-detection AUROC; fewer
# prompts improve OOD detection (docs/protocols.md §3.3 d, e). Zero-shot models are scored with MCM (T = 1),
# fine-tuned ones with MSP, in the paper. Here every model is scored with both: the top row is MCM, the bottom row
# MSP (compare models within a row); the last column is the paper's pairing, labelled as such, which mixes
# the scorer's effect into the fine-tuning contrast. The accuracy–AUROC correlation is computed over
# zero-shot models with MCM.
#
# **Embedded default run:** the figure predates the like-for-like scorers and the baseline line; a rerun on the shipped zoo is pending. Earlier, the zero-shot
# zoo models (MCM, unchanged by the new protocol) found bare textures *more* in-distribution than ID photos, which is
# what texture-biased models should do (Figure 2), and the accuracy–AUROC correlation over the photo-heavy
# models rested on the shipped reference model alone.

# %%
fig = figs.ood_detection(results)
session.save_figure(fig, "04_ood_detection")
print(claims.get("accuracy_ood", "too few models of one training distribution for a correlation"))
print(claims.get("prompts", ""))
print(claims.get("fine_tuning_ood", ""))
results.ood.pivot_table(index="entry", columns="scorer", values="auroc", aggfunc="mean").round(3)

# %% [markdown]
# ## Figure 4 — calibration before and after temperature scaling
#
# **Paper:** CLIP models are not consistently well calibrated, but after temperature scaling fitted on ID
# data they keep reasonable uncertainty under distribution shift; fewer prompts give better calibration
# (docs/protocols.md §3.3 d, e). The temperature is fitted on ID validation images with the bisection of the
# authors' calibration code (`tune_temp`) and applied unchanged to the ID test set, every domain shift and
# every corruption.
#
# **Embedded default run:** temperature scaling fitted on ID images lowers mean ECE over all models in
# distribution (0.103 → 0.064), under domain shift (0.187 → 0.157) and under corruptions (0.167 → 0.127),
# as the paper finds; for the zero-shot zoo models alone it raises ECE under shift (0.188 → 0.210),
# driven by the base ResNet (0.23 → 0.35), whose ID temperature does not transfer to the shifted domains
# it barely classifies (8 % accuracy). Prompt ensembles do not calibrate better than one prompt here.

# %%
fig = figs.calibration(results)
session.save_figure(fig, "04_calibration")
print(claims.get("temperature_scaling", ""))
results.calibration.groupby(["group", "scaled"])[["ece", "nll"]].mean().round(3)

# %% [markdown]
# ## Figure 5 — image–text bridging
#
# **Paper:** retrieval recall tracks zero-shot classification accuracy across CLIP models, and the
# training distribution moves models off that trend (docs/protocols.md §3.2 axis 4). Fine-tuned models keep the
# text tower they were fine-tuned with (FLYP: its own; FT: the frozen one), so their retrieval shows how
# much fine-tuning breaks the image–text alignment.
#
# **Embedded default run:** supported in the weak sense the zoo allows: text→image / image→text R@1 tracks
# ID accuracy (Pearson r = 0.95 over all models, again led by the shipped model: R@1 0.42 against
# 0.04–0.10 for the zoo), and both fine-tuned copies lose retrieval (R@1 0.075 → 0.038 FT, 0.040 FLYP)
# while gaining ID accuracy.

# %%
fig = figs.retrieval(results)
session.save_figure(fig, "04_retrieval")
s = results.summary.set_index("entry")
print(f"Pearson r between ID accuracy and mean R@1 over all models: "
      f"{s[['id_accuracy', 'retrieval_r1']].corr().iloc[0, 1]:.2f}")

# %% [markdown]
# ## Figure 6 — corruptions: common vs geometric (the 3D-corruption analogue)
#
# **Paper:** the visual encoder's **architecture** matters most for robustness to 3D corruptions: CNN-based
# CLIP models beat ViT-based ones, especially at high severity (docs/protocols.md §3.3 a). Relative robustness divides
# corrupted accuracy by the model's clean ID accuracy, so models of different accuracy can be compared.
#
# **Embedded default run:** **not reproduced**: the ViT keeps more of its clean accuracy under geometric
# corruptions (81 %) than the ResNet towers (61 %), and also under common ones (72 % vs 41 %). Part of this
# is the chance floor (the ViT is the weaker model: 20 % vs 24 % clean accuracy, so its ratio is pulled
# towards 1). Architecture is nonetheless the factor that moves geometric-corruption robustness most, the
# paper's structural point.

# %%
fig = figs.corruptions(results)
session.save_figure(fig, "04_corruptions")
print(claims.get("architecture_3d", "no ViT/CNN pair in this zoo"))

# %% [markdown]
# ## Figure 7 — six factors against every axis
#
# **Paper:** the training distribution strongly affects every property; architecture matters most for 3D
# corruptions; fewer prompts help OOD detection and calibration but not factor robustness (docs/protocols.md §3.3).
# Each row compares one zoo model with the base model (the factor it varies), or the prompt ensemble with
# the single prompt over every zero-shot model; each column is an axis. OOD detection has one column per
# scorer (MCM, MSP), both measured for every model, so the fine-tuning row compares like with like; factor
# and domain-shift effective robustness are measured against the baseline family's lines. Colours are in
# units of the zoo's spread of that metric and signed so that green means more reliable; numbers are raw
# differences.
#
# **Embedded default run:** the figure predates the like-for-like scorers and the baseline line (new columns: effective robustness under
# domain shift, OOD AUROC per scorer; effective robustness against the baseline line); rerun pending. Of the
# earlier findings, the ones on axes the new protocol does not touch (architecture moves corruption robustness most;
# the SigLIP loss gives the best zoo model) are expected to stand; with 18–33 % accurate models, these are
# directions, not findings.

# %%
effects = H.factor_effect_table(results)
fig = figs.factor_effects(effects, results.summary[list(effects.columns)].std())
session.save_figure(fig, "04_factor_effects")
print(claims.get("training_distribution", ""))
print(claims.get("training_set_size", ""))
effects.round(3)

# %%
# each effect's spread: n paired differences (fine-tuning: one per base run and seed; prompts: one per zero-shot
# model), their std and range; "seed spread of the base" is the std over the base's runs at different seeds,
# the yardstick for the factors measured at one seed (a difference smaller than it is within seed noise)
spread = H.effect_spread(results)
shown = ["id_accuracy", "shape_bias", "ood_auroc_mcm", "ece_id", "geometric_relative"]
spread[spread.metric.isin(shown)].pivot(index="row", columns="metric", values=["n", "mean", "std"]).round(3)

# %% [markdown]
# ## The LMM axis (out of scope offline)
#
# Tu et al.'s sixth axis asks whether a large multimodal model built on a CLIP vision tower (LLaVA) answers
# multiple-choice questions about hard images (ImageNet-D) better than CLIP alone. No such model can be had
# offline, and the embedded world has no LMM. `clipstudy.analysis.robustness.lmm_axis(model_fn, questions)`
# is the hook for users who have one: `model_fn(image, question, options)` returns the chosen option.

# %%
from clipstudy.analysis.robustness import LMMAxisUnavailable, lmm_axis

try:
    lmm_axis()
except LMMAxisUnavailable as e:
    print(f"LMM axis skipped: {e}")

# %% [markdown]
# ## Claims, and recorded numbers (checked by the tests)

# %%
for key, sentence in claims.items():
    print(f"{key}: {sentence}")
for key in ("n_models", "n_entries", "n_base_seeds", "ft_n_seeds", "n_baseline", "base_id_accuracy", "base_shape_bias", "base_ood_auroc_mcm",
            "base_ood_auroc_msp", "base_ece_shift", "base_ece_shift_ts", "base_retrieval_r1", "base_factor_er",
            "base_shift_er", "zoo_mean_factor_er", "zoo_mean_shift_er", "ft_id_accuracy", "ft_shape_bias",
            "ft_ood_auroc_mcm", "ft_ood_auroc_msp", "single_ood_auroc_mcm", "ensemble_ood_auroc_mcm",
            "single_ood_auroc_msp", "ensemble_ood_auroc_msp", "single_ece_id", "ensemble_ece_id", "zs_ece_shift",
            "zs_ece_shift_ts", "flyp_id_accuracy", "flyp_shape_bias", "cnn_geometric_relative",
            "vit_geometric_relative", "cnn_common_relative", "vit_common_relative", "acc_auroc_pearson"):
    if key in numbers and numbers[key] == numbers[key]:
        session.record(key, numbers[key])
