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
# # 00 — The embedded world and its CLIP
#
# Every study in clipstudy runs by default on a procedurally rendered image–caption world and a small
# CLIP pretrained on it (the `embedded` model). This notebook shows the world — one nuisance factor
# varied per row, all classes, cue-conflict images and corruptions — and measures the model's
# zero-shot accuracy per domain and per factor value, with the single prompt "a photo of a {class}."
# over all world classes. Point `model`/`pretrained` at any open_clip model to measure it on the same
# images (they are resized by the model's own preprocessing).

# %% tags=["parameters"]
n_per_domain = 500   # test images rendered per domain
model = "embedded"   # embedded, a clipstudy-* config or any open_clip architecture
pretrained = ""      # empty means the model's default weights (a tag or a checkpoint file otherwise)
templates = "photo"  # photo (a single prompt), imagenet80 (80-template ensemble) or mcm
data_root = ""       # unused here: the world is rendered, not read
device = "cpu"
seed = 0
out_dir = ""
figures_dir = ""

# %%
from clipstudy import notebook as nb
from clipstudy.evaluate import accuracy_by_factor, corruption_accuracy, zeroshot_by_domain
from clipstudy.gallery import (corruption_gallery, plot_corruption_accuracy, plot_factor_accuracy,
                               world_gallery)
from clipstudy.models import load_model
from clipstudy.plotting import title_figure

session = nb.setup_notebook("00_embedded_world.ipynb", globals())

# %% [markdown]
# ## The world: one factor varies per row

# %%
fig = world_gallery(seed=seed)
session.save_figure(fig, "00_world_gallery")

# %%
fig = corruption_gallery(seed=seed)
session.save_figure(fig, "00_corruptions")

# %% [markdown]
# ## Zero-shot accuracy per domain

# %%
loaded = load_model(model, pretrained, device=device)
results = zeroshot_by_domain(loaded, "world", n=n_per_domain, seed=seed, templates=templates)
chance = 1 / len(next(iter(results.values())).classnames)
accuracy = {d: r.accuracy for d, r in results.items()}
accuracy

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

df = pd.DataFrame({"domain": list(accuracy), "accuracy": list(accuracy.values())})
fig, ax = plt.subplots(figsize=(5, 3.2))
sns.barplot(data=df, x="domain", y="accuracy", ax=ax, color=sns.color_palette()[0])
ax.axhline(chance, ls="--", c="k", lw=1, label=f"chance ({chance:.1%})")
for i, a in enumerate(df["accuracy"]):
    ax.text(i, a + 0.01, f"{a:.0%}", ha="center", fontsize=9)
ax.set_ylim(0, 1)
ax.legend(loc="upper right")
title_figure(fig, f"Zero-shot top-1 of {model} per domain",
             f"prompt set '{templates}', {len(results['photo'].labels)} images per domain, {round(1 / chance)} classes")
session.save_figure(fig, "00_zeroshot_by_domain")

# %% [markdown]
# ## Zero-shot accuracy per nuisance factor
#
# Accuracy per value of each factor, within each domain (a factor a domain cannot show, such as
# colour in a sketch, is absent there). The dashed line is chance.

# %%
by_factor = pd.concat([accuracy_by_factor(r) for r in results.values()], ignore_index=True)
fig = plot_factor_accuracy(by_factor, chance, f"Zero-shot top-1 of {model} per factor value (dashed: chance)")
session.save_figure(fig, "00_zeroshot_by_factor")

# %% [markdown]
# ## Zero-shot accuracy under corruptions
#
# Common corruptions (noise, blur, weather, digital; solid lines) and geometric ones (rotation, zoom,
# occlusion; dashed) at severities 1, 3 and 5 on photo-domain images; severity 0 is the clean photo
# accuracy measured above.

# %%
corruption_rows = corruption_accuracy(loaded, severities=(1, 3, 5), n=max(16, n_per_domain // 4), seed=seed,
                                      templates=templates)
fig = plot_corruption_accuracy(corruption_rows, accuracy["photo"], chance,
                               f"Zero-shot top-1 of {model} under corruptions (photo domain)")
session.save_figure(fig, "00_zeroshot_by_corruption")

# %% [markdown]
# ## Recorded numbers (checked by the tests)

# %%
import numpy as np

session.record("chance", chance)
for d, a in accuracy.items():
    session.record(f"zeroshot_{d}_accuracy", a)
session.record("corruption_severity3_mean_accuracy",
               float(np.mean([r["accuracy"] for r in corruption_rows if r["severity"] == 3])))
photo_factor = by_factor[by_factor.domain == "photo"].groupby("factor").accuracy.agg(lambda a: a.max() - a.min())
session.record("photo_factor_spread", photo_factor.to_dict())
