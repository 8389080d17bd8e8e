"""Retraining without Qt (a package): the wizard's logic and ``python -m inspector.retrain``.

Gathering labelled images and staging them into one data folder (data), private work folders
(workdirs), default settings for a time budget and the time estimate (defaults), comparing the
new model with the current one on the held-out images (evaluation), and the command line (cli),
which calls the same functions as the wizard. Training itself is ``training.train.train``; this
package only prepares its inputs and reads its outputs. Every public name is imported here.
"""
from __future__ import annotations

from .data import (Progress, ShouldStop, count_samples, gather_samples, never, quiet,
                   sample_digests, stage_dataset, training_data, training_folder)
from .workdirs import (DISCARDED_NAME, LOCK_NAME, WORK_DIR_NAME, clean_stale_work_dirs,
                       failures_named, keep_in_library, remove_work_dir, remove_work_dir_after,
                       space_problem, work_dir)
from .defaults import (DEFAULT_BUDGET_SECONDS, EVAL_COST, FIXED_BASE_SECONDS,
                       FIXED_PER_IMAGE, FIXED_PER_RUN, FROZEN_STEP_SHARE, fixed_seconds,
                       GUESS_IMAGES_PER_S,
                       HEAD_PER_IMAGE, HEAD_SECONDS, MAX_EPOCHS, MIN_EPOCHS, READ_SECONDS,
                       augment_overhead, check_seconds, epoch_seconds, head_first_seconds,
                       median_side, estimate_seconds, guess_seconds_per_image,
                       full_training_size, measure_seconds_per_image, model_full_size,
                       nearest_measured, seconds_per_image_at,
                       SHORT_BUDGET_EPOCHS, SHORT_BUDGET_MIN_RATIO, SHORT_BUDGET_SIZE,
                       SIZE_TIME_EXPONENT, STRETCH_EPOCHS, STRETCH_RATIO, split_counts,
                       suggest_settings)
from .evaluation import (RECALL_RATIO, Misclassified, SplitEvaluation, evaluate_split,
                         format_recalls, min_macro_f1, usefulness_problems)
from .cli import main
