"""The one metric the search optimises and the scheduler reads; analysis imports it too."""

METRIC = "probe_accuracy"
MODE = "max"
# Tune's own per-report counter: one report per epoch, so it counts epochs.
TIME_ATTR = "training_iteration"
