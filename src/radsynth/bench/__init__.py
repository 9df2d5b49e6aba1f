"""Speed benchmarks: radsynth's generation and training against MONAI's and diffusers'
reference pipelines on the same networks, with fidelity, FLOPs and memory beside the
times (``radsynth bench``, ``benchmarks/sampling.py``)."""

from radsynth.bench.sampling import BenchSettings, run_benchmark

__all__ = ["BenchSettings", "run_benchmark"]
