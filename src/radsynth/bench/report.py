"""The benchmark's results as rich tables and as the README's markdown table."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/m" if value is None else f"{value:,.{digits}f}"


def _frd(row: dict[str, Any]) -> str:
    """FRD with its 95 % bootstrap interval where the run measured one."""
    if row.get("frd_interval") is None:
        return _fmt(row.get("frd"), 0)
    low, high = row["frd_interval"]
    return f"{row['frd']:,.0f} [{low:,.0f}, {high:,.0f}]"


def sampling_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per method: label, steps, UNet rows per image, img/s, radsynth's speed-up
    over it, peak MiB, GFLOP/image, achieved GFLOP/s, FRD."""
    ours = result["methods"]["radsynth"]["images_per_s"]
    rows = []
    for row in result["methods"].values():
        rows.append(
            [
                row["label"],
                str(row["steps"]),
                _fmt(row.get("unet_rows_per_image"), 0),
                _fmt(row["images_per_s"], 3),
                f"{ours / row['images_per_s']:.2f}x",
                f"{row['peak_memory_mib']:,}",
                _fmt(row["gflop_per_image"], 1),
                _fmt(row["achieved_gflops_per_s"], 1),
                _frd(row),
            ]
        )
    return rows


SAMPLING_HEADER = [
    "method",
    "steps",
    "UNet rows/img",
    "img/s",
    "radsynth speed-up",
    "peak MiB",
    "GFLOP/img",
    "GFLOP/s",
    "FRD [95 % CI]",
]


def tables(result: dict[str, Any]) -> list[Table]:
    """Generation, UNet throughput and training tables."""
    b = result["settings"]["batch_size"]
    gen = Table(title=f"Generation, batch {b}, {result['machine']['device']}")
    for name in SAMPLING_HEADER:
        gen.add_column(name, justify="left" if name == "method" else "right")
    for row in sampling_rows(result):
        gen.add_row(*row)
    peaks = result["matmul_peak_gflops"]
    unet = Table(title=f"UNet forward, batch {result['unet']['batch']} (guided)")
    for name in ("", "s", "GFLOP/s", "of fp32 peak", "of bf16 peak"):
        unet.add_column(name, justify="right")
    for name in ("radsynth", "radsynth_compiled", "as_built"):
        u = result["unet"][name]
        unet.add_row(
            name,
            f"{u['seconds']:.3f}",
            f"{u['gflops_per_s']:.1f}",
            f"{u['fraction_of_fp32_peak']:.0%}",
            f"{u['fraction_of_bf16_peak']:.0%}",
        )
    unet.caption = f"matmul peaks: fp32 {peaks['fp32']:.1f}, bf16 {peaks['bf16']:.2f} GFLOP/s"
    cost = result["compile"]
    gen.caption = (
        f"torch.compile: {cost['overhead_s']} s once, paid back after {cost['break_even_images']} images; "
        f"load average {result['load_average']['start']} -> {result['load_average']['after_sampling']}"
    )
    out = [gen, unet]
    if "training" in result and "skipped" not in result["training"]:
        t = result["training"]
        train = Table(title=f"Training step, batch {t['batch_size']}")
        for name in ("method", "img/s", "peak MiB"):
            train.add_column(name, justify="right")
        for name in ("radsynth", "monai"):
            train.add_row(name, f"{t[name]['images_per_s']:.2f}", f"{t[name]['peak_memory_mib']:,}")
        train.caption = (
            f"radsynth {t['ratio']:.2f}x; plus {t['radsynth']['one_time_preparation_s']} s once to encode "
            f"{t['radsynth']['training_images_encoded_once']} training images"
        )
        out.append(train)
    return out


def markdown(result: dict[str, Any]) -> str:
    """The generation table as markdown (what the README shows)."""
    lines = ["| " + " | ".join(SAMPLING_HEADER) + " |", "|" + "---|" * len(SAMPLING_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in sampling_rows(result)]
    return "\n".join(lines)
