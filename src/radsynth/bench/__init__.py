"""Speed benchmarks: radsynth's generation and training against MONAI's and diffusers'
reference pipelines on the same networks, with fidelity, FLOPs and memory beside the
times (``radsynth bench``, ``benchmarks/sampling.py``).

The package imports nothing itself: ``radsynth.bench.report`` renders saved results
without loading torch or the reference pipelines (``benchmarks/figures.py`` relies on it).
"""
