"""Golden vectors and the hardware verification kit (docs/VERIFICATION.md).

A golden set is a directory of integer tensors produced by the NumPy reference: the inputs,
the parameters needed to rerun (model files for model-level sets), every intermediate under
its trace name (ARITHMETIC.md §8.7) and the outputs, described by a manifest with checksums
(``store``). ``int4rt golden make | check | export`` (``cli``) writes, verifies and exports
them; ``tests/golden/`` holds the committed sets. ``accumulators`` sizes the accumulators of
a model's layers. Modules are imported by name; this package imports nothing.
"""
