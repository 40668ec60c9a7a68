"""Layer 5, analysis: analyses of a population of trained models (EDFs, bootstrap ranges, quantized linear
fits, refinement). May import ``models``, ``spaces`` and ``study``; never ``design`` or ``commands``, nor torch.

Everything here works on a results table (one row per model; see ``table.py``), so results from a study and
results exported from elsewhere (e.g. a pycls sweep as CSV) are analysed the same way.
"""
