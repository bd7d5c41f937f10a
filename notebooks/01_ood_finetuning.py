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
# # 01 — How does fine-tuning change OOD detection? (Ming & Li, IJCV 2023)
#
# Ming & Li frame CLIP's OOD detection as *multi-modal concept matching*: an image is in-distribution (ID)
# when it matches one of the ID class prompts well. They fine-tune CLIP on a few shots per class (prompt
# learning, adapters, full fine-tuning) and compare OOD scores before and after. Their findings:
#
# 1. the choice of OOD score matters for fine-tuned CLIP;
# 2. the **MCM** score (maximum softmax of cosine similarities at temperature T) is consistently a good choice;
# 3. prompt learning gives better OOD detection than zero-shot CLIP.
#
# This notebook trains every method on K ∈ {1, 2, 4, 8, 16} shots per ID class over several seeds, scores
# ID test images and OOD images with every registered score (higher = more ID) and measures AUROC, FPR at
# 95 % TPR and AUPR with ID as the positive class, exactly as MCM's `get_measures`. Covariate-shift sets (ID
# classes in another visual domain) are scored the same way and reported separately: they should *not*
# be flagged as OOD.
#
# **Embedded default: the world suite** (`docs/world_suite.md`). ID = `world-shapes`, the suite's ImageNet
# analogue: the world's 30 ID shape classes as photos, scored with the dataset's own prompt
# `a photo of a {}.` (zero-shot head, the heads that start from it, and CoOp/CoCoOp's initial context), as
# CoOp prompts each dataset with its own template. OOD = near-OOD sibling shapes (heptagon next to hexagon),
# far-OOD object icons and texture-only images (the Textures analogue), drawn from the world's own streams,
# never from a suite dataset's images. Covariate shift = `world-sketch` (the ImageNet-Sketch analogue) and
# `world-infograph`: the same 30 classes in the same order, in other domains.
#
# **Where the embedded world changes the protocol.** *Data:* Ming & Li use ImageNet-1k and smaller ID sets
# (CUB-200, Stanford Cars, Food-101, Oxford Pets) against iNaturalist, SUN, Places and Textures. Here there is one
# ID set: the suite's other tasks hold 01's OOD concepts (`world-siblings` the near-OOD classes, `world-icons` the
# far-OOD classes, `world-textures` the texture-only concept) or are labelled by the background that every OOD
# image has too (`world-scenes`), so none of them can be ID; and the OOD sets are the world's sibling shapes, icons
# and pattern fields rather than natural-image datasets. `id_dataset` can make `world-sketch` or `world-infograph`
# the ID set instead (with `shift_domains` naming the other two same-class datasets). *Prompt:* each ID set's own
# prompt, in the phrasing of the world's captions (`a photo of a {}.` with its period), where MCM's code uses `a
# photo of a {}` for every ID set. *Training* (all in `clipstudy/recipes/*.json`, printed below): runs are capped
# (CoOp 300 steps, CoCoOp 100, full FT 150) to fit a 2-core CPU; learning rates are scaled up because the embedded
# model's logit scale is far below CLIP's 100 (so MSP here is MCM at T = 1/scale, not 1/100: `msp_temperature`
# below); CoOp starts from the ID prompt's phrase "a photo of a" (CoOp's `ctxv1` setting) because 300 steps cannot
# learn 16 random context vectors; the prompt ensemble is the world's 30 caption phrases instead of the 80 ImageNet
# templates. The `paper` profile runs the paper's settings on ImageNet with the MCM OOD sets and MCM's prompt. The
# older `world` benchmark (ID and OOD sets all from the `world` dataset's streams, no dataset prompt) stays
# available as `benchmark = "world"`.

# %% tags=["parameters"]
model = "embedded"        # embedded, a clipstudy-* config or any open_clip architecture
pretrained = ""           # empty: the default weights of the model, or an open_clip tag, or a checkpoint file
data_root = ""            # real benchmarks: the folder holding imagenet, iNaturalist, SUN, Places, dtd
device = "cpu"
benchmark = "world-suite"  # world-suite (embedded), world (the older world sets), imagenet (MCM's OOD sets)
id_dataset = "world-shapes"  # world-suite: the ID set (world-shapes, world-sketch or world-infograph)
scale = "embedded"        # recipe scale: embedded (CPU budget) or paper (the papers' settings)
methods = ["zeroshot", "zeroshot_ensemble", "linear_probe", "coop", "cocoop", "clip_adapter", "finetune"]
shots = [1, 2, 4, 8, 16]
seeds = [1, 2, 3]
scorers = ["mcm", "msp", "max_logit", "energy", "entropy", "variance", "energy_cos", "entropy_cos", "variance_cos",
           "mahalanobis", "knn", "gl_mcm"]  # *_cos: on raw cosines at T = 1 (MCM code); the others: on logits
n_train = 1200            # world-suite, world: training pool the shots are drawn from
n_test = 600              # ID test images; imagenet: a seeded subset of val, 0 for all
n_ood = 300               # images per OOD and shift set; imagenet: 0 for all
shift_domains = ["sketch", "infograph"]  # world-suite: world-sketch, world-infograph; world: its domains;
                                         # imagenet: variants such as imagenet_sketch
max_steps = 0             # caps the steps of every trained method; 0 keeps the recipe budgets
recipe_overrides = {}     # per recipe settings, e.g. {"coop": {"epochs": 50}}
seed = 0                  # seed of the evaluation sets
out_dir = ""
figures_dir = ""

# %%
import pandas as pd

from clipstudy import notebook as nb
from clipstudy.studies import ood, ood_figures as figs

session = nb.setup_notebook("01_ood_finetuning.ipynb", globals())
study = ood.make_study(benchmark, n_train=n_train, n_test=n_test, n_ood=n_ood, shift_domains=shift_domains,
                       id_dataset=id_dataset, seed=seed, model=model, pretrained=pretrained, data_root=data_root,
                       device=device, scale=scale, methods=methods, shots=shots, seeds=seeds, scorers=scorers,
                       max_steps=max_steps, recipe_overrides=recipe_overrides)
pd.DataFrame([{"recipe": m, **{k: getattr(r, k) for k in ("method", "params", "optimizer", "lr", "batch_size",
                                                           "max_steps", "precision", "wise_alphas")}}
              for m in methods for r in [study.trained_recipe(m)]]).set_index("recipe")

# %% [markdown]
# ## Run the study
#
# One result cell per (method, shots, seed), stored as JSON under `clipstudy.paths.results_dir()` and
# skipped when present: rerunning the notebook reads the results back, and an interrupted run resumes.
# Full fine-tuning also yields its WiSE-FT interpolation with the zero-shot weights (α = 0.5).

# %%
results = ood.run(study)
numbers = ood.key_numbers(results)
results.accuracy.groupby(["variant", "shots"])["id_accuracy"].mean().unstack("shots").round(3)

# %% [markdown]
# ## Figure 1 — every method against every score
#
# **Claims tested:** (1) the choice of OOD score matters after fine-tuning; (2) MCM is consistently a
# promising score. Each panel is a methods × scores grid at the largest shot count (mean over seeds), per
# OOD set, their mean, and each covariate-shift set (where AUROC near 0.5 is the desired outcome).
# The caption under the figure is computed from this run: a score (or method) counts as better than another
# only when the difference of their mean AUROC exceeds the spread over seeds; smaller differences are
# reported as ties.

# %%
fig = figs.heatmaps(results)
session.save_figure(fig, "01_ood_heatmap")
claims = ood.verdicts(results, label=figs.name)
texts = ood.captions(results, claims, label=figs.name)
session.caption(texts["scores"]);

# %% [markdown]
# ### Energy, entropy and variance: on the model's logits or on cosines?
#
# `energy`, `entropy` and `variance` are computed on the model's logits, cosine × the model's own logit
# scale (100 for CLIP), which is where energy is defined: Liu et al., "Energy-based
# out-of-distribution detection" (NeurIPS 2020, Sec. 2), `E(x) = −T·log Σ_k exp(f_k(x)/T)` on a classifier's
# logits `f`, T = 1. The `*_cos` variants compute the same formulas on the raw cosine similarities at
# T = 1, which is what the MCM reference code does (`deeplearning-wisc/MCM`, `utils/detection_util.py`,
# `get_ood_scores_clip`: energy `−T·logsumexp(s/T)`, entropy and variance of `softmax(s/T)`, with `--T`
# defaulting to 1). Energy on logits is energy on cosines at T = 1/scale times the scale, so it ranks images
# like MCM's energy at that temperature; at T = 1 on cosines, `logsumexp_k s_k ≈ log K + mean_k s_k` mostly
# measures how similar an image is to *all* classes at once.
#
# **Which one Ming & Li used: unknown.** The parts of the paper we could consult (the abstract and
# summaries of arXiv 2306.06048) compare MCM with MSP and MS (maximum similarity) and do not say how energy,
# entropy or variance were computed for the fine-tuned models; the code linked for the paper (e.g. in the
# LoCoOp repository's list of follow-up work, `AtsuMiyai/LoCoOp`) is the MCM repository, which has only the
# cosine form. Both are shown; the table below compares them on this run (mean over seeds), and the
# caption counts for how many methods one form beats the other beyond the seed spread.

# %%
pairs = [(s, f"{s}_cos") for s in ("energy", "entropy", "variance") if s in scorers and f"{s}_cos" in scorers]
ood_auroc = figs.mean_table(results).groupby(["variant", "scorer"])["auroc"].mean().unstack("scorer")
if "score_forms" in texts:
    session.caption(texts["score_forms"])
ood_auroc[[c for p in pairs for c in p]].rename(columns=figs.name).round(3)

# %% [markdown]
# ## Figure 2 — OOD detection against the number of shots
#
# **Claim tested:** (3) prompt learning (CoOp, CoCoOp) detects OOD inputs better than zero-shot CLIP,
# already with few shots. AUROC is averaged over the OOD sets; bands are ± one standard deviation over
# seeds. Zero-shot methods do not train: their spread over seeds is 0 for the similarity scores.

# %%
fig = figs.shots_curves(results, scorers=("mcm", "msp"))
session.save_figure(fig, "01_auroc_vs_shots")
session.caption(texts["shots"]);

# %% [markdown]
# ## Figure 3 — does the best MCM temperature move after fine-tuning?
#
# MCM's temperature T controls how peaked the softmax over cosine similarities is; MSP is MCM at
# T = 1 / logit scale. Ming & Li stress that the score and its temperature must be chosen anew after
# fine-tuning. The sweep runs T from 0.001 to 10 for zero-shot, CoOp and full fine-tuning. A moved best
# temperature counts only when the fine-tuned method's AUROC at its own best T exceeds its AUROC at
# zero-shot's best T by more than the seed spread.

# %%
fig, best_t = figs.temperature_sweep(results, msp_temperature=results.msp_temperature)
session.save_figure(fig, "01_mcm_temperature")
claims = ood.verdicts(results, best_t, label=figs.name)
texts = ood.captions(results, claims, best_t, label=figs.name)
if "temperature" in texts:
    session.caption(texts["temperature"]);

# %% [markdown]
# ## Figure 4 — ID accuracy and OOD detection
#
# Does a method that classifies the ID classes better also detect OOD inputs better? One point per
# method and shot count (mean over seeds), with the Pearson correlation in the caption. The paper reports
# that few-shot prompt learning improves both; a positive trend across methods supports that reading. The
# verdict also computes the correlation within each seed, so that its spread over seeds is known.

# %%
fig = figs.accuracy_vs_auroc(results, scorer="mcm")
session.save_figure(fig, "01_accuracy_vs_auroc")
session.caption(texts["accuracy"]);

# %% [markdown]
# ## Figure 5 — what the scores look like
#
# ID and OOD score distributions for zero-shot and CoOp, with MCM (T = 1) and MSP. With cosine
# similarities in a narrow range, MCM at T = 1 is close to uniform (values near 1/K) yet still ranks
# images; MSP sharpens the softmax. The overlap of the ID and OOD histograms is what AUROC summarises.

# %%
fig = figs.score_histograms(results, variants=[v for v in ("zeroshot", "coop") if v in methods],
                            logit_scale=results.logit_scale)
session.save_figure(fig, "01_score_histograms")
session.caption(texts["histograms"]);

# %% [markdown]
# ## Every verdict of this run

# %%
for key, text in claims.items():
    print(f"{key}: {text}")

# %% [markdown]
# ## Recorded numbers (checked by the tests)

# %%
for key in ("zeroshot_id_accuracy", "coop_id_accuracy", "finetune_id_accuracy", "auroc_mcm_zeroshot",
            "auroc_msp_zeroshot", "auroc_mcm_coop", "auroc_msp_coop", "auroc_mcm_finetune", "auroc_mcm_wise_ft",
            "auroc_gl_mcm_zeroshot", "shift_auroc_mcm_zeroshot", "scorer_spread_coop", "msp_temperature"):
    if key in numbers:
        session.record(key, numbers[key])
for variant, (t, auroc) in best_t.items():
    session.record(f"best_T_{variant}", t)
session.record("n_cells", len(results.cells))
