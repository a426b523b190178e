"""Pure measurements on numpy arrays: no I/O, no CLI, no zoo, no global state.

Modules (import them directly; this package imports nothing eagerly so ``import zoolens``
stays fast):

- :mod:`zoolens.measure.agreement`: correctness matrix, error inconsistency, both right / both
  wrong, error consistency (kappa), dominance — all pairs from one matrix product.
- :mod:`zoolens.measure.calibration`: temperature scaling (safeguarded Newton on log T), NLL,
  softmax, ECE and reliability bins.
- :mod:`zoolens.measure.ensemble`: pair ensembles (probabilities or scaled logits), streaming
  all-pairs ensemble correctness, gain / conversion rates, weight and class-aware
  interpolation, majority vote, greedy forward selection.
- :mod:`zoolens.measure.specialization`: confidence angle theta, outcome histograms, per-group
  summaries.
- :mod:`zoolens.measure.stats`: bootstrap intervals, McNemar and paired bootstrap tests.

Definitions follow DESIGN.md section 3 and Gontijo-Lopes, Dauphin & Cubuk (2021).
"""
