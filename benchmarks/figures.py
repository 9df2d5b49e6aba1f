"""The README's figure tables, rendered from the committed JSON in ``benchmarks/results/``.

Each generated table stands in README.md between ``<!-- figures:NAME -->`` and
``<!-- /figures:NAME -->``. A figure is written once, by the benchmark that measured it,
into its JSON; the README shows what this script renders from there, so the two cannot
drift apart.

    python benchmarks/figures.py            # print every table
    python benchmarks/figures.py --write    # put them into README.md
    python benchmarks/figures.py --check    # exit 1 naming each table the README holds otherwise

``make figures`` runs ``--write``; a test runs ``--check`` in CI.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"


def _load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def speed() -> str:
    """``benchmarks/sampling.py``: every sampling method on the same batches."""
    from radsynth.bench.report import markdown

    return markdown(_load("sampling.json")) + "\n\n" + _speed_notes(_load("sampling.json"))


def speed_cxr() -> str:
    """``radsynth bench --weights cxr-128``: the flow family against the libraries' flow samplers."""
    from radsynth.bench.report import markdown

    return markdown(_load("sampling_cxr.json")) + "\n\n" + _speed_notes(_load("sampling_cxr.json"))


def _speed_notes(d: dict[str, Any]) -> str:
    """The run's facts under its table, from the same JSON: machine, load, targets with the
    paired FRD difference behind each "equal or better fidelity", the floor, training."""
    m, load = d["machine"], d["load_average"]
    cpu = f"{m['cpu']}, {m['threads']} threads, " + (
        "native bf16" if m.get("native_bf16") else "no native bf16"
    )
    lines = [
        f"Measured on {cpu}, precision {d['settings'].get('precision', 'not recorded')}; load average "
        f"{load['start'][0]:.2f} at the start, {load['after_sampling'][0]:.2f} after sampling; whole "
        f"run {d['wall_s'] / 60:.1f} minutes. FRD floor (as many real training images against the same "
        f"held-out set): {d['fidelity_floor_real_train_vs_held_out']:,.0f}."
        if d.get("fidelity_floor_real_train_vs_held_out") is not None
        else f"Measured on {cpu}; whole run {d['wall_s'] / 60:.1f} minutes."
    ]
    for name, t in d["targets"].items():
        row = d["methods"][name]
        diff = row.get("radsynth_frd_minus_this")
        frd = (
            f"; FRD radsynth minus it {diff['value']:+,.0f} [{diff['low']:+,.0f}, {diff['high']:+,.0f}]"
            + (" (not worse)" if t["fidelity_equal_or_better"] else " (worse)")
            if diff
            else ""
        )
        verdict = "met" if t["speed_met"] else "not met"
        lines.append(
            f"- >= {t['speedup_target']:g}x {row['label']} ({row['steps']} steps): {verdict}, "
            f"{t['speedup']:.2f}x ({t['speedup_compiled']:.2f}x compiled){frd}."
        )
    unet, peaks, cost = d["unet"], d["matmul_peak_gflops"], d["compile"]
    ours = unet["radsynth"]
    lines.append(
        f"- UNet forward, guided batch {unet['batch']}: {unet['flops_per_forward'] / 1e9:.1f} GFLOP at "
        f"{ours['gflops_per_s']:.1f} GFLOP/s, {ours['fraction_of_fp32_peak']:.0%} of the measured fp32 "
        f"matmul peak ({peaks['fp32']:.1f} GFLOP/s; bf16 peak {peaks['bf16']:.2f}); compiled "
        f"{unet['radsynth_compiled']['gflops_per_s']:.1f} GFLOP/s. The VAE decode is "
        f"{d['vae_decode_gflop_per_image']:.1f} GFLOP per image, "
        f"{d['vae_decode_gflop_per_image'] / d['methods']['radsynth']['gflop_per_image']:.0%} of the shipped "
        "row's. torch.compile costs "
        f"{cost['overhead_s']} s once, paid back after {cost['break_even_images']} images."
    )
    train = d.get("training", {})
    if "radsynth" in train:
        lines.append(
            f"- Training step, batch {train['batch_size']}: radsynth {train['radsynth']['images_per_s']:.1f} "
            f"img/s, a plain MONAI step {train['monai']['images_per_s']:.1f} img/s ({train['ratio']:.2f}x; "
            f"radsynth encodes the {train['radsynth']['training_images_encoded_once']} training images once, "
            f"{train['radsynth']['one_time_preparation_s']} s)."
        )
    elif "skipped" in train:
        lines.append(f"- Training step: not compared ({train['skipped']}).")
    return "\n".join(lines)


GENERATION_NAMES = {"ldm": "LDM", "gan": "GAN", "vae": "VAE (prior samples)"}


def _ci3(record: Any, fmt: str = "{:.3g}") -> str:
    """A ``{value, low, high}`` record as value [low, high]."""
    if not isinstance(record, dict) or "value" not in record:
        return "-"
    return f"{fmt.format(record['value'])} [{fmt.format(record['low'])}, {fmt.format(record['high'])}]"


def _g3(record: Any) -> str:
    return f"{record['value']:.3g}" if isinstance(record, dict) and "value" in record else "-"


def evaluation() -> str:
    """``benchmarks/evaluation.py``: the shipped demo generators against the held-out split."""
    d = _load("evaluation.json")
    rows = []
    for kind in (k for k in GENERATION_NAMES if k in d["models"]):
        m = d["models"][kind]
        f, div, p, adh = m["fidelity"], m["diversity"], m["privacy"], m["adherence"]["synthetic"]
        prdc = f.get("prdc", {})
        mia = m.get("membership", {})
        attack = "ldm_denoising" if "ldm_denoising" in mia else "vae_reconstruction"
        rows.append(
            [
                GENERATION_NAMES[kind],
                _ci3(f["frd"], "{:,.0f}"),
                _ci3(f["fid_domain"], "{:.1f}"),
                _g3(f["kid_domain"]),
                f"{_g3(prdc.get('precision'))} / {_g3(prdc.get('recall'))}",
                f"{_g3(div.get('ms_ssim_within_prompt'))} / {_g3(div.get('ms_ssim_across_prompts'))}",
                f"{_pct0(adh['modality']['accuracy'])} / {_pct0(adh['anatomy']['accuracy'])}",
                f"{100 * p['share_synthetic_flagged']:.1f} % ({p['n_flagged']})",
                f"{p['correlation']['median']:.2f}",
                _ci3(mia.get(attack), "{:.2f}") + (f" ({attack.replace('_', ' ')})" if attack in mia else ""),
            ]
        )
    ref = d["real_train"]["fidelity"]
    rows.append(
        ["real train", _ci3(ref["frd"], "{:,.0f}"), _ci3(ref["fid_domain"], "{:.1f}"), _g3(ref["kid_domain"]),
         f"{_g3(ref['prdc'].get('precision'))} / {_g3(ref['prdc'].get('recall'))}",
         "-", "-", "100 % (they are)", "-", "-"]
    )  # fmt: skip
    header = ["model", "FRD", "FID (encoder)", "KID", "precision / recall",
              "MS-SSIM within / across prompts", "adherence modality / anatomy",
              "copies (r > 0.95)", "nearest-training r, median", "membership AUC"]  # fmt: skip
    return _table(header, rows)


EVALUATION_ARMS = {"real": "real only", "shuffled_labels": "real, shuffled labels (chance)",
                   "synthetic": "synthetic only", "real+synthetic": "real + synthetic",
                   "transfer:real": "transfer: real only", "transfer:synthetic": "transfer: synthetic only",
                   "transfer:real+synthetic": "transfer: real + synthetic"}  # fmt: skip


def evaluation_utility() -> str:
    """``benchmarks/evaluation.py``'s utility arms: AUROC [95 % CI] per model."""
    d = _load("evaluation.json")
    kinds = [k for k in GENERATION_NAMES if k in d["models"]]
    rows = []
    for arm, label in EVALUATION_ARMS.items():
        cells = [_ci(d["models"][k]["utility"]["arms"].get(arm, {}).get("auroc")) for k in kinds]
        if arm in ("real", "shuffled_labels", "transfer:real"):  # no synthetic image: trained once
            cells = [cells[0], *["(same)"] * (len(kinds) - 1)]
        rows.append([label, *cells])
    return _table(["arm", *(GENERATION_NAMES[k] for k in kinds)], rows)


GENERATION_HEADER = [
    "model",
    "modality",
    "anatomy",
    "finding",
    "FRD",
    "FD (domain)",
    "img/s fp32",
    "img/s bf16",
]


def generation_cells(d: dict[str, Any]) -> list[list[str]]:
    """``benchmarks/generation.py``'s rows (its printed table and the README's)."""
    rows = []
    for kind in (k for k in GENERATION_NAMES if k in d["models"]):
        m = d["models"][kind]
        s = m.get("sampling", {})
        how = (
            f" ({s['sampler']}, {s['steps']} steps, guidance {s['guidance']:g}"
            + (", distilled UNet)" if s["distilled"] else ")")
            if "steps" in s
            else ""
        )
        acc = {k: v["accuracy"] for k, v in m["adherence"].items()}
        rows.append(
            [
                f"{GENERATION_NAMES[kind]}{how}",
                *(_pct0(acc[a]) for a in ("modality", "anatomy", "finding")),
                f"{m['frd']:,.0f}",
                f"{m['fd_domain']:.1f}",
                f"{m['images_per_s']['fp32']:.1f}" if "images_per_s" in m else "-",
                f"{m['images_per_s']['bf16']:.2f}" if "images_per_s" in m else "-",
            ]
        )
    floor = d["real_train_vs_held_out"]
    acc = {k: v["accuracy"] for k, v in floor["classifier_on_real_held_out"].items()}
    rows.append(
        [
            "real train vs held-out",
            *(_pct0(acc[a]) for a in ("modality", "anatomy", "finding")),
            f"{floor['frd']:,.0f}",
            f"{floor['fd_domain']:.1f}",
            "",
            "",
        ]
    )
    return rows


def generation() -> str:
    """``benchmarks/generation.py``: adherence, fidelity and speed of the demo generators."""
    return _table(GENERATION_HEADER, generation_cells(_load("generation.json")))


def _pct0(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def distilled() -> str:
    """``benchmarks/guidance_interval.py --only "every step,distilled (shipped)"``, per seed."""
    rows = []
    for seed, runs in _load("guidance_distilled.json")["seeds"].items():
        guided, student = runs["every step"], runs["distilled (shipped)"]

        def pair(attribute: str, a: dict = guided, b: dict = student) -> str:
            return f"{100 * a['adherence'][attribute]:.1f} / {_pct(b['adherence'][attribute])}"

        rows.append(
            [
                seed,
                f"{guided['frd']:.1f} / {student['frd']:.1f}",
                pair("modality"),
                pair("anatomy"),
                pair("finding"),
            ]
        )
    header = ["seed", "FRD guided original / distilled", "modality read back", "anatomy", "finding"]
    return _table(header, rows)


def guidance_interval() -> str:
    """``benchmarks/guidance_interval.py --seeds ...``: every interval, FRD per seed and its
    paired change against guiding every step (same prompts and seeds)."""
    d = _load("guidance_interval.json")
    seeds = list(d["seeds"])
    first = d["seeds"][seeds[0]]
    rows = []
    for name, r in first.items():
        frd = [d["seeds"][s][name]["frd"] for s in seeds]
        delta = [d["seeds"][s][name]["frd"] - d["seeds"][s]["every step"]["frd"] for s in seeds]
        adh = [d["seeds"][s][name]["adherence"] for s in seeds]
        mean = {a: sum(x[a] for x in adh) / len(adh) for a in ("modality", "anatomy")}
        rows.append(
            [
                name,
                str(r["guided_steps"]),
                f"{r['unet_forwards_per_image']} ({r['relative_cost']:.2f})",
                " / ".join(f"{v:.0f}" for v in frd),
                "-" if name == "every step" else " / ".join(f"{v:+.0f}" for v in delta),
                f"{_pct0(mean['modality'])} / {_pct0(mean['anatomy'])}",
            ]
        )
    per_seed = " / ".join(seeds)
    header = ["guided", "steps guided", "UNet rows / image (cost)", f"FRD (seed {per_seed})",
              "FRD minus every step", "modality / anatomy (mean)"]  # fmt: skip
    return _table(header, rows)


COMPARED = "handouts_with_normal_xrays_for_comparison"


def handout_scale() -> str:
    """``benchmarks/handout_scale.py``: handouts for random IU reports, as a short table."""
    d = _load("handout_scale.json")
    m, t, g = d["summary"], d["summary"]["seconds_per_handout"], d["summary"]["fk_grade_of_captions"]
    done = m["outcomes"]
    families = (
        ", ".join(f"{k} {v}" for k, v in m.get("handouts_by_family", {}).items()) or d["settings"]["weights"]
    )
    rows = [
        ["reports", f"{m['reports']} (seed {d['settings']['seed']})"],
        ["handouts / nothing to illustrate / errors",
         f"{done.get('handout', 0)} / {done.get('nothing to illustrate', 0)} / {m['errors']}"],
        ["handouts by family", families],
        ["findings shown / pictured", f"{m['findings_shown']} / {m['findings_pictured']}"],
        ["handouts with normal X-rays for comparison", str(m.get(COMPARED, 0))],
        ["loading the models + one warm-up handout each", f"{m['model_load_s']:.2f} s"],
        ["seconds per handout: median / p95 / max", f"{t['median']:.2f} / {t['p95']:.2f} / {t['max']:.2f}"],
        ["Flesch-Kincaid grade of the captions: mean / max / share <= 8",
         f"{g['mean']:.2f} / {g['max']:.2f} / {_pct(g['share_at_or_below_8'])}"],
        ["redactions, dates, record numbers, names reaching a handout",
         " / ".join(str(v) for v in m["leaks"].values())],
    ]  # fmt: skip
    return _table(["figure", "value"], rows)


def service_load() -> str:
    """``benchmarks/service_load.py``: verify and the generate queue under load."""
    result = _load("service_load.json")
    rows = []
    for endpoint in ("verify", "generate"):
        for run in result[endpoint]:
            name = endpoint
            if endpoint == "generate":
                name = "generate, server killed + restarted" if run["killed_mid_load"] else "generate (queue)"
            jobs = ["-", "-", "-", "-"]
            if endpoint == "generate":
                jobs = [
                    f"{run['jobs_done']} / {run['jobs_accepted']}",
                    str(run["jobs_lost"]),
                    str(run["jobs_doubled"]),
                    str(run.get("jobs_rerun", "not measured")),
                ]
            rows.append(
                [
                    name,
                    str(run["clients"]),
                    f"{run['requests_per_s']:.1f}",
                    f"{run['p50_ms']:.0f}",
                    f"{run['p95_ms']:.0f}",
                    str(run["errors"]),
                    *jobs,
                ]
            )
    header = ["endpoint", "clients", "req/s", "p50 ms", "p95 ms", "errors", "jobs done / accepted", "lost"]
    settings = result["settings"]
    machine = settings.get("machine", {})
    killed = [run for run in result["generate"] if run["killed_mid_load"]]
    to_done = [run["jobs_per_s_to_done"] for run in result["generate"]]
    facts = (
        f"\n\nVerify peaks at {max(run['requests_per_s'] for run in result['verify']):.0f} files/s; one "
        f"worker takes the queue to done at {min(to_done):.1f}-{max(to_done):.1f} jobs/s."
    )
    for run in killed:
        facts += (
            f" The restart took {run['restart_s']:.0f} s; of the {run['jobs_accepted']} jobs "
            f"({run['retries_while_down']:,} resends while the server was down) "
            f"{run['jobs_lost']} were lost, {run['jobs_doubled']} doubled and "
            f"{run.get('jobs_rerun', 'an unmeasured number')} run more than once by the worker."
        )
    return (
        _table([*header, "doubled", "run more than once"], rows)
        + facts
        + (
            f"\n\n`{settings['command']}` at commit {str(settings.get('git_commit'))[:7]}, "
            f"{machine.get('cpus', '?')} cores ({machine.get('cpu', 'CPU not recorded')}, "
            f"native bf16: {machine.get('native_bf16')}), load average at the start "
            f"{machine.get('load_average', 'not recorded')}."
        )
    )


def _restoration(section: dict[str, dict[str, Any]], columns: dict[str, str], names: dict[str, str]) -> str:
    """PSNR / SSIM / MAE per volume and method; the best PSNR of a row in bold."""
    rows = []
    for volume, methods in section.items():
        unit = " HU" if volume.startswith("CT") else ""
        best = max(methods[key]["psnr"] for key in columns)
        row = [names[volume]]
        for key in columns:
            m = methods[key]
            cell = f"{m['psnr']:.2f} / {m['ssim']:.3f} / {m['mae']:.{2 if m['mae'] < 10 else 1}f}{unit}"
            row.append(f"**{cell}**" if m["psnr"] == best else cell)
        rows.append(row)
    return _table(["volume", *columns.values()], rows)


def denoise() -> str:
    """``benchmarks/translation.py``: the shipped denoiser against non-local means."""
    columns = {
        "noisy input": "noisy input",
        "non-local means (oracle sigma)": "non-local means, told the true sigma",
        "radsynth denoise": "radsynth denoise",
        "radsynth denoise, as written (watermarked)": "as written",
    }
    names = {
        "MR (brain2)": "MR brain2 (Rician, sigma 4 % of the 99.5th pct)",
        "CT (lung2)": "CT lung2 (Poisson-Gaussian, 1000 photons)",
    }
    return _restoration(_load("translation.json")["denoising"], columns, names)


def super_resolution() -> str:
    """``benchmarks/translation.py``: the shipped x2/x4 model against bicubic."""
    columns = {
        "bicubic": "bicubic",
        "radsynth sr": "radsynth sr",
        "radsynth sr, as written (watermarked)": "as written",
    }
    section = _load("translation.json")["super_resolution"]
    names = {
        volume: volume.replace(" (brain2)", " brain2").replace(" (lung2)", " lung2") for volume in section
    }
    order = sorted(section, key=lambda v: (not v.startswith("MR"), v[-2:]))
    return _restoration({v: section[v] for v in order}, columns, names)


def translation_seconds() -> str:
    """``benchmarks/translation.py``: seconds per slice and per volume, per task."""
    d = _load("translation.json")
    t, machine = d["seconds"], d["settings"]["machine"]
    z, y, x = t["volume_shape"]
    per_slice = ", ".join(f"{task} {v:.3f} s" for task, v in t["per_256_slice"].items())
    per_volume = ", ".join(f"{task} {v:.1f} s" for task, v in t["per_volume"].items())
    return (
        f"Seconds on {machine['cpu']} ({machine['threads']} threads): per 256x256 slice {per_slice} "
        f"(sr2 from a 128x128 input; mr2ct and t1pd run at their model's ~3.4 mm spacing); "
        f"per whole MNI152 volume ({z} slices of {y} x {x}) {per_volume}."
    )


def mr_to_ct() -> str:
    """``benchmarks/translation.py``: the unpaired MR -> CT demonstration, structure kept
    (against an unrelated real CT on the same MR), HU bands and Fréchet distance to real CT."""
    section = _load("translation.json")["mr_to_ct"]
    header = [
        "MR input",
        "NMI / edge correlation with the MR",
        "an unrelated real CT: NMI / edge corr.",
        "HU bands fat / soft / bone",
        "FRD to real head CT (the MR itself)",
    ]
    rows = []
    for name, r in section.items():
        bands = r["hu_bands_translated"]
        rows.append(
            [
                name,
                f"{r['structure']['nmi']:.2f} / {r['structure']['edge_correlation']:.2f}",
                f"{r['structure_of_an_unrelated_ct']['nmi']:.2f} / "
                f"{r['structure_of_an_unrelated_ct']['edge_correlation']:.2f}",
                " / ".join(_pct0(bands[k]) for k in ("fat (-150..-30)", "soft (-30..100)", "bone (> 300)")),
                f"{r['frd_to_real_head_ct']:,.0f} ({r['frd_mr_input_to_real_head_ct']:,.0f})",
            ]
        )
    real = next(iter(section.values()))["hu_bands_real_head_ct"]
    rows.append(
        [
            "the real head CT (InVesalius)",
            "",
            "",
            " / ".join(_pct0(real[k]) for k in ("fat (-150..-30)", "soft (-30..100)", "bone (> 300)")),
            "",
        ]
    )
    return _table(header, rows)


def unet_forward() -> str:
    """``benchmarks/unet_forward.py``: one guided UNet forward under per-step settings."""
    d = _load("unet_forward.json")
    median, diff = d["median_s"], d["max_abs_difference_vs_as_built"]
    base = median["as built"]
    parts = [f"as built {base:.3f} s"] + [
        f"{name} {median[name]:.3f} s ({base / median[name]:.2f}x, "
        + ("output bit-identical" if diff[name] == 0 else f"max difference {diff[name]:.1e}")
        + ")"
        for name in median
        if name != "as built"
    ]
    settings = d.get("settings", {})
    return (
        f"`{settings.get('command', 'benchmarks/unet_forward.py')}`: one guided forward, batch {d['batch']}, "
        f"{d['threads']} threads, median: " + "; ".join(parts) + "."
    )


def prediction_targets() -> str:
    """``benchmarks/prediction_targets.py``: one UNet trained per target, then sampled."""
    variants = _load("prediction_targets.json")["variants"]
    names = {"epsilon": "epsilon", "v": "v", "rflow": "rectified flow"}
    best_fd = {s: min(v[s]["fd_domain"] for v in variants.values()) for s in ("steps_10", "steps_25")}
    best = {
        a: max(v["steps_10"][a] + v["steps_25"][a] for v in variants.values())
        for a in ("modality_acc", "anatomy_acc")
    }

    def fd(v: dict, s: str) -> str:
        cell = f"{v[s]['fd_domain']:.1f}"
        return f"**{cell}**" if v[s]["fd_domain"] == best_fd[s] else cell

    def acc(v: dict, a: str) -> str:
        cell = f"{100 * v['steps_10'][a]:.0f} % / {100 * v['steps_25'][a]:.0f} %"
        return f"**{cell}**" if v["steps_10"][a] + v["steps_25"][a] == best[a] else cell

    rows = [
        [names[k], fd(v, "steps_10"), fd(v, "steps_25"), acc(v, "modality_acc"), acc(v, "anatomy_acc")]
        for k, v in sorted(variants.items(), key=lambda kv: list(names).index(kv[0]))
    ]
    return _table(
        ["target", "FD domain @10", "FD domain @25", "modality @10 / @25", "anatomy @10 / @25"], rows
    )


def watermark() -> str:
    """``benchmarks/provenance.py``: the mark under each edit, on real slices and LDM outputs."""
    result = _load("provenance.json")
    real, ldm = result["watermark_real_slices"], result["watermark_ldm_outputs"]

    def found(attack: dict) -> str:
        return (
            f"{100 * attack['detected']:.0f}% / {100 * attack['payload_recovered']:.0f}%"
            f" / {100 * attack['bit_accuracy']:.1f}%"
        )

    rows = [
        [
            name,
            found(attack),
            found(ldm["attacks"][name]),
            f"{100 * attack['payload_wrong']:.1f}%, {100 * ldm['attacks'][name]['payload_wrong']:.1f}%",
        ]
        for name, attack in real["attacks"].items()
    ]
    psnr = [f"{w['psnr_db']['mean']:.1f} / {w['psnr_db']['min']:.1f} dB" for w in (real, ldm)]
    rows.append(["PSNR marked vs unmarked (mean / min)", *psnr, ""])
    alarms = [
        f"{100 * w['false_positive_rate_unmarked']:.1f}% (max z {w['max_score_unmarked']:.1f})"
        for w in (real, ldm)
    ]
    rows.append(["unmarked flagged (false positives)", *alarms, ""])
    header = [
        "attack",
        f"real slices (n={real['hosts']}): found / payload / bits",
        f"LDM outputs (n={ldm['hosts']}): found / payload / bits",
        "wrong payload (real, LDM)",
    ]
    return _table(header, rows)


def watermark_strength() -> str:
    """``benchmarks/watermark_strength.py``: each strength on validation hosts (generated
    images), then on denoised validation volumes (restoration); the chosen ones in bold."""
    d = _load("watermark_strength.json")
    lossless = ("none (16-bit PNG, metadata stripped)", "8-bit PNG", "DICOM re-save")
    beyond = ("window (x1.4, clips 4 % / 25 %)", "crop 80 % (off centre)")
    rows = []
    for strength, groups in d["outputs"].items():
        label = f"{100 * float(strength):.2f} %"
        if float(strength) == d["chosen"]["outputs"]:
            label = f"**{label}**"
        for group, row in groups.items():
            attacks = row["attacks"]
            rows.append(
                [
                    label,
                    f"{group} (n={d['settings']['hosts'][group]})",
                    f"{row['psnr_db']['mean']:.1f} / {row['psnr_db']['min']:.1f}",
                    _pct(min(v["detected"] for k, v in attacks.items() if k not in beyond)),
                    _pct(attacks["crop 80 % (off centre)"]["detected"]),
                    _pct(min(attacks[k]["payload_recovered"] for k in lossless)),
                ]
            )
    header = [
        "strength",
        "validation hosts",
        "PSNR mean / min (dB)",
        "found, worst attack strength answers",
        "found after an 80 % crop",
        "payload, worst lossless save",
    ]
    strengths = list(next(iter(d["restoration"].values()))["strengths"])
    restoration = [
        [name]
        + [
            f"{_pct0(r['strengths'][s]['found_share'])} / {r['strengths'][s]['psnr_cost_db']:.2f} dB"
            for s in strengths
        ]
        for name, r in d["restoration"].items()
    ]
    names = [
        f"**{100 * float(s):.2f} %**" if float(s) == d["chosen"]["restoration"] else f"{100 * float(s):.2f} %"
        for s in strengths
    ]
    return (
        _table(header, rows)
        + "\n\nRestoration outputs (found on every slice as written and after a DICOM round trip / "
        "PSNR cost against the clean volume):\n\n"
        + _table(["denoised validation volume", *names], restoration)
    )


def detector() -> str:
    """``benchmarks/provenance.py``: the shipped detector on real sources it never trained on
    (each left out once; the research-only and file sources never trained on at all) and on
    each generator, seen in training and left out."""
    det = _load("provenance.json")["detector"]
    calibration, test = det["calibration"], det["test_split"]
    rows = [
        [name, str(r["n"]), f"{100 * r['fpr']:.1f} %", f"{r['auroc']:.3f}", f"{r['max_p']:.6f}"]
        for name, r in calibration["leave_one_source_out"].items()
    ]
    never = sorted(set(test["per_source"]) - set(calibration["leave_one_source_out"]))
    for name in never:
        r = test["per_source"][name]
        rows.append([f"{name} (never trained on; shipped model)", str(r["n"]), f"{100 * r['fpr']:.1f} %",
                     f"{r['auroc']:.3f}", ""])  # fmt: skip
    header = ["real source left out of training", "images", "flagged at the threshold",
              "AUROC vs synthetic test images", "largest P(synthetic)"]  # fmt: skip
    sources = _table(header, rows)
    left_out = calibration["leave_one_generator_out"]
    rows = []
    for name, r in test["per_generator"].items():
        out = left_out.get(name)
        cells = [f"{r['auroc']:.3f}", f"{100 * r['caught']:.0f} %"]
        cells += [f"{out['auroc']:.3f}", f"{100 * out['caught']:.0f} %"] if out else ["", ""]
        rows.append([name, str(r["n"]), *cells])
    header = ["generator", "test images", "AUROC (shipped)", "caught at the threshold",
              "AUROC when left out of training", "caught when left out"]  # fmt: skip
    floor = calibration.get("never_trained", {}).get("threshold")
    line = (
        f"Threshold {calibration['threshold']:.6f}: the sources left out need "
        f"{calibration['threshold_left_out']:.6f}, the never-trained ones {floor:.6f} (each at most "
        f"{100 * calibration['target_fpr']:.0f} % flagged); overall {100 * test['caught']:.0f} % of the "
        f"synthetic test images caught, {100 * test['fpr']:.2f} % of the real ones flagged."
    )
    return f"{line}\n\n{sources}\n\n{_table(header, rows)}"


def startup() -> str:
    """``benchmarks/startup.py``: whole-process wall seconds, before and after, medians."""
    d = _load("startup.json")
    rows = [
        [f"`{name}`", f"{r['before_s']:.2f}", f"{r['after_s']:.2f}", f"{r['before_s'] / r['after_s']:.1f}x",
         f"{r['load_1min_median']:.1f}"]
        for name, r in d["figures"].items()
    ]  # fmt: skip
    header = ["scenario", "before (issue 25) s", "after s", "speed-up", "load (1 min)"]
    commits = d["git_commit"]
    note = (
        f"{d['machine']['cpu']}, {d['machine']['cpus']} cores; before = `{commits['before'][:7]}`, after = "
        f"`{commits['after'][:7]}`; median of {d['settings']['runs']} runs after a warm-up."
    )
    return f"{_table(header, rows)}\n\n{note}"


def verify_real() -> str:
    """``benchmarks/provenance.py --part verify_real_files``: verify on real DICOM from elsewhere."""
    v = _load("provenance.json")["verify_real_files"]
    rows = [[verdict, str(n)] for verdict, n in v["verdicts"].items()]
    rows.append(["detector asked (in its domain)", str(v["detector_asked"])])
    rows += [[f"detector not asked: {why}", str(n)] for why, n in v["detector_not_asked"].items()]
    largest = "" if v["largest_p_real"] is None else f"{v['largest_p_real']:.3f}"
    rows.append(["largest P(synthetic) of a real file asked", largest])
    return _table([f"verdict ({v['files']} files)", "files"], rows)


CXR_COLUMNS = (
    "row", "n", "FRD", "FID (encoder)", "KID", "precision / recall", "MS-SSIM within / across prompts",
    "view / age group / sex / finding read back", "IU reports: finding", "copies",
    "nearest training r (median)", "membership AUC", "img/s",
)  # fmt: skip
CXR_NAMES = {"real train": "real train", "blurred real": "blurred real (sanity)", "ldm": "LDM 128",
             "ldm+sr": "LDM + SR 256 (measured at 128)", "gan": "GAN"}  # fmt: skip
CXR_ATTRIBUTES = ("plane", "age_group", "sex", "finding")  # the reader's heads; "plane" is the view
CXR_TARGETS = {
    "fid_ratio": "FID / real-train FID <= 2",
    "adherence_plane": "view read back >= 90 % of the ceiling",
    "adherence_age_group": "age group read back >= 90 % of the ceiling",
    "adherence_finding": "finding read back >= 90 % of the ceiling",
    "copies": "copies <= 1 %",
    "images_per_s": ">= 5 img/s at 128 px",
}


def _value(record: Any, fmt: str) -> str:
    return fmt.format(record["value"]) if isinstance(record, dict) and "value" in record else "-"


def _share(value: float | None) -> str:
    return "-" if value is None else _pct(value)


def _accuracies(report: dict[str, Any]) -> str:
    return " / ".join(_share(report[a]["accuracy"]) if a in report else "-" for a in CXR_ATTRIBUTES)


def cxr_cells(results: dict[str, Any]) -> list[list[str]]:
    """``benchmarks/cxr.py``'s rows as table cells (its printed table and the README's)."""
    held_out = results["held_out"]
    rows = [
        ["held-out real (reference; the reader's ceiling)", str(held_out["n"]), *["-"] * 5,
         _accuracies(held_out["reader_accuracy"]), "-", "-",
         f"{held_out['nearest_training_correlation']['median']:.2f}", "-", "-"]
    ]  # fmt: skip
    order = list(CXR_NAMES)  # the JSON's keys are sorted; the table keeps this order
    for name, m in sorted(results["rows"].items(), key=lambda kv: order.index(kv[0])):
        if "skipped" in m:
            rows.append([CXR_NAMES[name], *["-"] * 11, f"not run: {m['skipped']}"])
            continue
        f, d, p = m["fidelity"], m["diversity"], m["privacy"]
        prdc = f.get("prdc", {})
        copies = "100 % (they are)" if name == "real train" else _share(p.get("share_synthetic_flagged"))
        rows.append(
            [
                CXR_NAMES[name],
                str(m["n"]),
                _value(f.get("frd"), "{:,.0f}"),
                _value(f.get("fid_domain"), "{:.2f}"),
                _value(f.get("kid_domain"), "{:.3f}"),
                f"{_value(prdc.get('precision'), '{:.2f}')} / {_value(prdc.get('recall'), '{:.2f}')}",
                f"{_value(d.get('ms_ssim_within_prompt'), '{:.2f}')} / "
                f"{_value(d.get('ms_ssim_across_prompts'), '{:.2f}')}",
                _accuracies(m["adherence"]),
                _share(m.get("adherence_iu", {}).get("finding", {}).get("accuracy")),
                copies,
                f"{p['correlation']['median']:.2f}" if "correlation" in p else "-",
                _value(m.get("membership", {}).get("ldm_denoising"), "{:.2f}"),
                f"{m['images_per_s']:.1f}" if "images_per_s" in m else "-",
            ]
        )
    return rows


def cxr_target_cells(results: dict[str, Any]) -> list[list[str]]:
    """The issue's targets per generator row: value and pass / FAIL."""
    rows = []
    for model, checks in sorted(results["targets"].items(), key=lambda kv: list(CXR_NAMES).index(kv[0])):
        if "skipped" in checks:
            rows.append([CXR_NAMES[model], "-", "-", f"not measured: {checks['skipped']}"])
            continue
        for key, label in CXR_TARGETS.items():
            if key in checks:
                c = checks[key]
                rows.append([CXR_NAMES[model], label, f"{c['value']:.3g}", "pass" if c["pass"] else "FAIL"])
    return rows


def cxr() -> str:
    """``benchmarks/cxr.py``: the chest X-ray rows, then the issue's targets."""
    results = _load("cxr.json")
    out = _table(list(CXR_COLUMNS), cxr_cells(results))
    for name, run in results["settings"].get("carried_rows", {}).items():
        commit, command = run["git_commit"][:7], run["command"]
        out += f"\n\n{CXR_NAMES[name]}: carried from the run at commit {commit} (`{command}`)."
    targets = cxr_target_cells(results)
    return out + ("\n\n" + _table(["model", "target", "value", "result"], targets) if targets else "")


STEPS_COLUMNS = ("steps", "FID (encoder) [95 % CI]", "FID minus the best [paired 95 % CI]", "KID",
                     "read back", "s")  # fmt: skip


def steps_cells(results: dict[str, Any]) -> list[list[str]]:
    """``benchmarks/steps.py``'s rows: one per step count, the chosen one marked."""
    rows = []
    for r in results["rows"]:
        f, g = r["fid_domain"], r["fid_minus_best"]
        rows.append(
            [
                f"{r['steps']}" + (" (chosen)" if r["steps"] == results["chosen_steps"] else ""),
                f"{f['value']:.3f} [{f['low']:.3f}, {f['high']:.3f}]",
                f"{g['value']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]",
                f"{r['kid_domain']['value']:.4f}",
                " / ".join(_pct(r["read_back"][a]) for a in results["attributes"]),
                f"{r['seconds']:.0f}",
            ]
        )
    return rows


def cxr_steps() -> str:
    """``benchmarks/steps.py``: the chest X-ray LDM's step count, chosen on validation."""
    return _table(list(STEPS_COLUMNS), steps_cells(_load("steps_cxr-128.json")))


def demo_steps() -> str:
    """``benchmarks/steps.py --weights demo-ct-mr-64``: the rule's answer on the demo's
    validation subject (not applied: see the README)."""
    return _table(list(STEPS_COLUMNS), steps_cells(_load("steps_demo-ct-mr-64.json")))


UTILITY_TASKS = {
    "pediatric": "pediatric (Kermany), 64 px",
    "pediatric-28": "pediatric (Kermany), 28 px",
    "adult": "adult (NIH), 64 px",
}


def _ci(record: dict[str, float] | None, signed: bool = False) -> str:
    if not record:
        return "-"
    f = "+.3f" if signed else ".3f"
    text = f"{record['value']:{f}} [{record['low']:{f}}, {record['high']:{f}}]"
    return f"**{text}**" if signed and record["low"] > 0 else text


def _share_of(regime: str) -> float:
    """Largest regime first: ``"100 %"`` -> -100 (JSON keeps keys sorted as text)."""
    return -float(regime.split()[0])


def _in_study_order(arms: dict[str, Any]) -> list[str]:
    from radsynth.evaluate.utility import STUDY_ARMS

    order = {name: k for k, name in enumerate(STUDY_ARMS)}
    return sorted(arms, key=lambda name: (order.get(name, len(order)), name))


def utility_cells(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Task x test x arm rows; per regime the mean AUROC over seeds [95 % CI over test
    images] and the paired gain over real only (bold where its interval lies above 0)."""
    regimes = sorted(
        {r for report in results["tasks"].values() for r in report.get("regimes", {})}, key=_share_of
    )
    header = ["task", "test", "arm"] + [f"{r}: {m}" for r in regimes for m in ("AUROC", "vs real")]
    rows = []
    for task, report in results["tasks"].items():
        blocks = report.get("regimes", {})
        first = next(iter(blocks.values()), {})
        tests = ["internal"] + list(first.get("external_counts", {}))
        for test in tests:
            for arm in _in_study_order(first.get("arms", {})):
                cells = []
                for regime in regimes:
                    r = blocks.get(regime, {}).get("arms", {}).get(arm, {})
                    s = r if test == "internal" else r.get("external", {}).get(test, {})
                    cells += [_ci(s.get("auroc")), _ci(s.get("vs_real", {}).get("auroc"), signed=True)]
                rows.append([UTILITY_TASKS.get(task, task), test, arm] + cells)
    return header, rows


GOAL_GAIN = 0.02  # issue 19: at 10 % of the data, +2 AUROC points over real only and duplicates


def _goal(arm: dict[str, Any]) -> str:
    gains = [arm.get(f"vs_{k}", {}).get("auroc") for k in ("real", "duplicates")]
    if not all(gains):
        return "-"
    met = all(g["value"] >= GOAL_GAIN and g["low"] > 0 for g in gains)
    return "met" if met else "not met"


def utility_goal_cells(results: dict[str, Any]) -> list[list[str]]:
    """At the smallest regime, each synthetic arm's paired gains over real only and over
    the duplicates control, and whether both clear the goal with intervals above 0."""
    rows = []
    for task, report in results["tasks"].items():
        regimes = report.get("regimes", {})
        if not regimes:
            continue
        smallest = sorted(regimes, key=_share_of)[-1]
        block = regimes[smallest]
        for test in ["internal"] + list(block.get("external_counts", {})):
            for name in _in_study_order(block.get("arms", {})):
                arm = block["arms"][name]
                s = arm if test == "internal" else arm.get("external", {}).get(test, {})
                if "vs_duplicates" not in s or name == "synthetic":  # real + synthetic arms only
                    continue
                rows.append(
                    [UTILITY_TASKS.get(task, task), test, smallest, name]
                    + [_ci(s.get(f"vs_{k}", {}).get("auroc"), signed=True) for k in ("real", "duplicates")]
                    + [_goal(s)]
                )
    for task, tried in results.get("attempts", {}).items():
        for name, report in tried.items():
            if not isinstance(report, dict) or "arms" not in report:
                continue
            arm = report["arms"].get("real+synthetic", {})
            rows.append(
                [UTILITY_TASKS.get(task, task), "internal", tried["regime"], f"attempt: {name}"]
                + [_ci(arm.get(f"vs_{k}", {}).get("auroc"), signed=True) for k in ("real", "duplicates")]
                + [_goal(arm)]
            )
    return rows


def plan_table(d: dict[str, Any]) -> str:
    """``benchmarks/plan.py``'s figures (its printed table and the README's): 1 and 2
    processes, the killed and resumed 1,000-image plan, the classifier trained on it."""
    rows = [
        [str(r["processes"]), f"{r['images']:,}", f"{r['img_per_s']:.2f}", f"{r['img_per_s_drawing']:.2f}",
         f"{r['startup_s']:.0f}", *(_pct(r["share"][part]) for part in ("unet", "decoder", "writing"))]
        for r in d["throughput"]
    ]  # fmt: skip
    header = ["processes", "images", "img/s (whole command)", "img/s (drawing)", "start-up s", "UNet",
              "decoder", "writing"]  # fmt: skip
    k = d["plan_1000"]
    hours = k["extrapolated_10000_wall_s"] / 3600
    resume = (
        f"`{k['command']}` ({k['plan']}): killed (SIGKILL to torchrun and each worker) after "
        f"{k['killed_after']:,} committed images, the same command run again: {k['final_count']:,} images "
        f"in the manifest, "
        f"{k['files']:,} files, {k['missing']} missing, {k['duplicates']} written twice; audit log "
        f"{'intact' if k['audit_log_ok'] else 'BROKEN'} ({k['abandoned_in_audit_log']} line(s) of the chunk "
        f"the kill interrupted abandoned and drawn again). Wall {k['wall_s']:,.0f} s "
        f"({k['first_wall_s']:,.0f} s + resume {k['resume_wall_s']:,.0f} s); a 10,000-image plan, "
        f"extrapolated (one start-up, then the measured {k['busy_s_per_image']:.3f} busy s per image "
        f"over {k['processes']} process(es)): "
        f"~{k['extrapolated_10000_wall_s']:,.0f} s ({hours:.1f} h)."
    )
    u = d["utility"]
    urows = [
        [arm, f"{u['counts'][arm][0]:,} / {u['counts'][arm][1]:,}", _ci3(v.get("auroc")),
         _ci3(v.get("balanced_accuracy"))]
        for arm, v in u["arms"].items()
    ]  # fmt: skip
    utable = _table(["arm", "normal / pneumonia", "AUROC [95 % CI]", "balanced accuracy [95 % CI]"], urows)
    m = d["machine"]
    note = (
        f"{m['cpu']}, {m['cpus']} cores, {d['precision']}, load {d['load_before'][0]} before / "
        f"{d['load_after'][0]} after; GPU: {d['gpu']}. Utility: `{u['code']}`, {u['test']} "
        f"({u['test_counts'][0]} / {u['test_counts'][1]}), {u['steps']} steps, lr {u['lr']:g}, "
        f"{u['seeds']} seeds. Made by `{d['command']}` at `{d['git_commit'][:7]}`."
    )
    return f"{_table(header, rows)}\n\n{resume}\n\n{utable}\n\n{note}"


def plan() -> str:
    """``benchmarks/plan.py``: synthetic datasets at scale (issue 26)."""
    return plan_table(_load("plan.json"))


def utility_cxr() -> str:
    """``benchmarks/utility_cxr.py``: pneumonia classifiers trained with and without
    synthetic chest X-rays; then the goal at the smallest regime, attempts included."""
    results = _load("utility_cxr.json")
    goal = ["task", "test", "regime", "arm", "AUROC gain vs real only", "vs duplicates control", "goal"]
    return _table(*utility_cells(results)) + "\n\n" + _table(goal, utility_goal_cells(results))


# What each shipped model is, for the model tables (the figures come from its card).
MODEL_ROLES = {
    "demo-ct-mr-64/vae": "KL autoencoder 1x64x64 -> 4x16x16",
    "demo-ct-mr-64/ldm": "UNet on the VAE's latents + that VAE; MiniLM text; v-prediction",
    "demo-ct-mr-64/ldm/distilled": "the LDM's UNet guidance-distilled at scale 4: one forward per step "
    "(see Speed); float16, own card `distilled-card.json`",
    "demo-ct-mr-64/gan": "text-conditional GAN, **under-trained** (see below)",
    "demo-ct-mr-64/classifier": "attribute reader for evaluation, real slices only",
    "demo-ct-mr-64/encoder": "domain encoder for FID/KID, precision/recall, privacy (see Evaluate)",
    "demo-ct-mr-64/detector": "real vs synthetic from 14 real sources and 8 generators, calibrated "
    "threshold by leave-one-out runs whose time the card does not hold (see Deepfake defence)",
    "demo-ct-mr-64/translate-denoise": "MR/CT denoiser learnt from every real MR contrast at hand "
    "but FLAIR + CT; checkpoint chosen on validation (see Translate)",
    "demo-ct-mr-64/translate-sr": "x2/x4 super-resolution, the same data",
    "demo-ct-mr-64/translate-mr2ct": "unpaired MR -> CT, a demonstration",
    "demo-ct-mr-64/translate-t1pd": "T1 -> PD on the one demo pair",
    "cxr-128/ldm": "UNet on the VAE's latents + that VAE (KL, 1x128x128 -> 4x16x16, f = 8: "
    "`configs/vae-cxr-128.yaml`, whose run's card is not shipped); MiniLM text (64 tokens); "
    "rectified flow, Euler, guidance 4; float16 storage",
    "cxr-128/ldm/distilled": "the guidance-distilled UNet (Meng et al. 2023, stage one): the guided output "
    "at scale 4 in one forward, started from the LDM's weights; `generate` samples with it at "
    "guidance 4 (`--no-distilled`: the guided original); float16",
    "cxr-128/translate-sr2": "x2 super-resolution for `--size 256`, trained on 64-px patches of the "
    "256-px corpus",
    "cxr-128/classifier": "reader for adherence (view, age group, sex, finding), real training patients only",
    "cxr-128/encoder": "feature space for FID/KID, precision/recall, privacy",
    "brain-real/translate-mr2ct-atlas": "MR -> CT on the Whole Brain Atlas's 8-bit scale (not HU); "
    "atlas cases 28 and 32 held out",
    "brain-real/translate-t1-t2": "T1 -> T2, glioma MR; BraTS-GLI-00001-000 held out",
    "brain-real/translate-t2-flair": "T2 -> FLAIR, glioma MR; BraTS-GLI-00001-000 held out",
    "brain-real/translate-t1-flair": "T1 -> FLAIR, glioma MR; BraTS-GLI-00001-000 held out",
    "brain-real/translate-t1t2-flair": "T1 + T2 -> FLAIR (two inputs), glioma MR; "
    "BraTS-GLI-00001-000 held out",
}


def _model_rows(family: str) -> list[list[str]]:
    """One row per shipped checkpoint of ``family`` (and its distilled UNet), from its card:
    recipe, steps x batch, wall time, the size of its weights file."""
    weights = ROOT / "src" / "radsynth" / "weights" / family
    rows = []
    for folder in sorted(p for p in weights.iterdir() if (p / "card.json").is_file()):
        for key, card_name, file in (
            (folder.name, "card.json", "model.safetensors"),
            (f"{folder.name}/distilled", "distilled-card.json", "distilled.safetensors"),
        ):
            if not (folder / card_name).is_file():
                continue
            card = json.loads((folder / card_name).read_text(encoding="utf-8"))
            config = ROOT / "configs" / f"{card['model_id']}.yaml"
            recipe = f"`configs/{config.name}`" if config.is_file() else "`radsynth detect train`"
            batch = card["config"]["train"]["batch_size"]
            size = (folder / file).stat().st_size / 1e6
            name = f"`{folder.name}`" if key == folder.name else f"`{folder.name}/{file}`"
            rows.append(
                [
                    name,
                    recipe,
                    f"{card['steps']} x {batch}",
                    f"{card['wall_time_s'] / 60:.{1 if card['wall_time_s'] < 300 else 0}f} min",
                    f"{size:.1f} MB",
                    MODEL_ROLES[f"{family}/{key}"],
                ]
            )
    return rows


def _models(family: str) -> str:
    header = ["model", "recipe", "steps x batch", "train wall time (card)", "size", "what it is"]
    return _table(header, _model_rows(family))


def models_demo() -> str:
    """The demo family's shipped checkpoints, from their cards."""
    return _models("demo-ct-mr-64")


def models_cxr() -> str:
    """The chest X-ray family's shipped checkpoints, from their cards; then every shipped
    weights file together against the budget."""
    weights = ROOT / "src" / "radsynth" / "weights"
    files = list(weights.rglob("*.safetensors"))
    total = sum(f.stat().st_size for f in files) / 1e6
    largest = max(f.stat().st_size for f in files) / 1e6
    return (
        _models("cxr-128")
        + f"\n\nAll shipped weights (every family): {total:.0f} MB in {len(files)} files, of the "
        f"150 MB budget; the largest {largest:.1f} MB, of the 30 MB a file may hold "
        "(`tests/models/test_shipped_weights.py`)."
    )


def report_reader() -> str:
    """``benchmarks/report_reader.py``: the report reader against the IU curators' labels,
    per finding (dev F1, held-out precision / recall / F1), the macro rows, then the
    held-out errors by cause."""
    from collections import Counter

    d = _load("report_reader.json")
    dev, held = d["per_finding"]["dev"], d["per_finding"]["held-out"]
    rows = [
        [
            name,
            f"{dev[name]['reports_labelled']} / {held[name]['reports_labelled']}",
            f"{dev[name]['f1']:.2f}",
            f"{held[name]['precision']:.2f}",
            f"{held[name]['recall']:.2f}",
            f"**{held[name]['f1']:.2f}**",
        ]
        for name in held
    ]
    summary = d["summary"]
    rows.append(
        [
            "**macro F1 (15, without pneumothorax)**",
            f"{summary['dev']['reports']} / {summary['held-out']['reports']} reports",
            f"{summary['dev']['macro_f1_15']:.3f}",
            "",
            "",
            f"**{summary['held-out']['macro_f1_15']:.3f}**",
        ]
    )
    rows.append(
        [
            "negated finding read as present",
            "",
            str(summary["dev"]["negated_read_as_present"]),
            "",
            "",
            f"**{summary['held-out']['negated_read_as_present']}**",
        ]
    )
    header = ["finding", "reports (dev / held out)", "dev F1", "held-out P", "held-out R", "held-out F1"]
    causes = sum((Counter(r["errors_by_cause"]) for r in held.values()), Counter())
    errors = ", ".join(f"{cause} {n}" for cause, n in causes.most_common())
    return (
        _table(header, rows)
        + f"\n\nHeld-out errors by cause (commit {d['commit'][:7]}, {d['seconds']:.0f} s): {errors}."
    )


def reader_study() -> str:
    """``benchmarks/reader_study.py``: a scripted reader study through the service's API."""
    result = _load("reader_study.json")

    def cell(value: dict[str, Any]) -> str:
        if "skipped" in value:
            return "n/a"
        return f"{value['value']:.2f} [{value['low']:.2f}, {value['high']:.2f}]"

    metrics = ["accuracy", "sensitivity", "specificity", "fooled", "auroc", "d_prime"]
    header = ["reader", "correct", "accuracy", "sensitivity", "specificity", "fooled", "AUROC", "d'"]
    columns = [*result["readers"].items(), ("pooled", result["pooled"])]
    rows = [[name, f"{s['correct']} / {s['n']}", *(cell(s[m]) for m in metrics)] for name, s in columns]
    settings, timings, agreement = result["settings"], result["timings"], result["agreement"]
    kappa = "n/a" if agreement["fleiss_kappa"] is None else f"{agreement['fleiss_kappa']:.2f}"
    machine = result["machine"]
    facts = (
        f"\n\n{settings['n']} images (seed {settings['seed']}): real = {settings['real']}; synthetic = "
        f"{settings['synthetic']}. 95 % bootstrap intervals over the answers. Fleiss' kappa between the two "
        f"readers {kappa} ({agreement['items']} images); {result['items_fooling_half_or_more']} of "
        f"{result['items']} images fooled at least half the readers. Generating took "
        f"{timings['generate_s']:.0f} s, creating the study (copy, strip, verify each source) "
        f"{timings['create_s']:.1f} s, an answer {timings['answer_p50_ms']:.0f} ms (median); "
        f"{machine['cpu']}, {machine['cpus']} CPUs, load {machine['load_average'][0]}; "
        f"`{result['command']}` at {result['git_commit'][:7]}."
    )
    return _table(header, rows) + facts


METHOD_NAMES = {
    "identity": "identity (the input as it is)",
    "histogram": "histogram matching",
    "cyclegan": "shipped CycleGAN `mr2ct` (demo, unpaired; out of its domain)",
    "pix2pix": "pix2pix (L1, one pass)",
    "flow": "conditional flow (8 Euler steps)",
}


def _cv(record: dict[str, float], fmt: str) -> str:
    return f"{record['value']:{fmt}} [{record['low']:{fmt}}, {record['high']:{fmt}}]"


def _goal_lines(goals: list[dict[str, Any]]) -> str:
    met = [g["goal"] for g in goals if g["met"]]
    missed = [
        f"{g['goal']} ({g['folds_met']}/{g['folds']} folds; "
        + ("worst fold tied" if g["shortfall"] == 0 else f"worst fold short by {-g['shortfall']:.3g}")
        + ")"
        for g in goals
        if not g["met"]
    ]
    return f"Goals met on every fold: {len(met)} of {len(goals)}." + (
        " Missed: " + "; ".join(missed) + "." if missed else ""
    )


def _atlas_cell(row: dict[str, float]) -> str:
    return f"{row['mae']:.1f} / {row['ssim']:.3f} / {row['bone_dice']:.2f}"


def translation_cv_atlas() -> str:
    """``benchmarks/translation_cv.py --part atlas``: MR -> CT on the atlas, 5 folds by case."""
    atlas = _load("translation_cv.json")["atlas"]
    fmts = {"mae": ".1f", "psnr": ".2f", "ssim": ".3f", "bone_dice": ".3f"}
    summary = _table(
        ["method", "MAE (8-bit)", "PSNR dB", "SSIM", "bone Dice"],
        [
            [METHOD_NAMES[m], *[_cv(row[k], f) for k, f in fmts.items()]]
            for m, row in atlas["summary"].items()
        ],
    )
    methods = list(atlas["summary"])
    folds = _table(
        ["fold: held-out cases", *methods],
        [
            [
                f"{f['fold']}: {', '.join(f['cases'])}",
                *[_atlas_cell(f["methods"][m]) for m in methods],
            ]
            for f in atlas["folds"]
        ],
    )
    return f"{summary}\n\nPer fold, MAE / SSIM / bone Dice:\n\n{folds}\n\n{_goal_lines(atlas['goals'])}"


def translation_cv_contrast() -> str:
    """``benchmarks/translation_cv.py --part contrast``: T1/T2 -> T2/FLAIR, leave one subject out."""
    tasks = _load("translation_cv.json")["contrast"]["tasks"]
    fmts = {"mae": ".3f", "psnr": ".2f", "ssim": ".3f", "contrast_ratio": ".2f", "lesion_dice": ".3f"}
    rows, fold_rows, goal_lines = [], [], []
    for task, item in tasks.items():
        for m, row in item["summary"].items():
            rows.append([f"`{task}`", METHOD_NAMES[m], *[_cv(row[k], f) for k, f in fmts.items()]])
        for f in item["folds"]:
            fold_rows.append(
                [
                    f"`{task}`",
                    f["cases"][0],
                    *[
                        f"{f['methods'][m]['psnr']:.2f} / {f['methods'][m]['ssim']:.3f} / "
                        f"{f['methods'][m]['contrast_ratio']:.2f}"
                        for m in item["summary"]
                    ],
                ]
            )
        goal_lines.append(f"- `{task}`: {_goal_lines(item['goals'])}")
    methods = list(next(iter(tasks.values()))["summary"])
    summary = _table(
        ["task", "method", "MAE", "PSNR dB", "SSIM", "lesion contrast ratio", "lesion Dice"], rows
    )
    folds = _table(["task", "held-out subject", *methods], fold_rows)
    return (
        f"{summary}\n\nPer held-out subject, PSNR / SSIM / lesion contrast ratio:\n\n{folds}\n\n"
        + "\n".join(goal_lines)
    )


def restoration_real() -> str:
    """``benchmarks/restoration_real.py``: denoising and x2 SR learnt from every real
    contrast at hand, on the held-out FLAIR and an unseen scanner, against tuned filters."""
    d = _load("restoration_real.json")
    v = d["validation"]
    cf, nlm, bs = (v[k]["chosen"] for k in ("curvature_flow", "non_local_means", "bspline"))
    tables = []
    for task, title in (("denoise", "Denoising"), ("sr2", "x2 super-resolution")):
        section = {volume: tasks[task] for volume, tasks in d["test"].items()}
        columns = {m: m for m in next(iter(section.values()))}
        tables.append(
            f"{title}, PSNR dB / SSIM / MAE:\n\n{_restoration(section, columns, {k: k for k in section})}"
        )
    missed = [g for g in d["goals"] if not g["met"]]
    goals = (
        f"Goal (+{d['settings']['goal_db']} dB over the best classical filter): met on "
        f"{len(d['goals']) - len(missed)} of {len(d['goals'])} volume-task pairs"
        + (
            "; missed: "
            + "; ".join(f"{g['task']} on {g['volume']} ({g['margin_db']:+.2f} dB)" for g in missed)
            if missed
            else ""
        )
        + "."
    )
    chosen = (
        f"Chosen on {', '.join(d['settings']['validation_volumes'])}: CurvatureFlow time step "
        f"{cf['time_step']}, {cf['iterations']} iterations; non-local means bandwidth "
        f"{nlm['bandwidth']} x the estimated sigma, patch radius {nlm['radius']}; B-spline order "
        f"{bs['order']}; checkpoints: denoise step {v['denoise_checkpoint']['chosen_step']}, "
        f"sr2 step {v['sr2_checkpoint']['chosen_step']}."
    )
    own = "; ".join(f"{k} {t['native_noise_over_added']:.2f}" for k, t in d["test"].items())
    noise = f"Each test volume's own noise (Donoho's estimate) over the sigma added: {own}."
    return "\n\n".join([*tables, chosen, noise, goals])


def models_brain() -> str:
    """The real-brain translators' shipped checkpoints, from their cards."""
    return _models("brain-real")


TABLES: dict[str, Callable[[], str]] = {
    "speed": speed,
    "models-demo": models_demo,
    "models-cxr": models_cxr,
    "models-brain": models_brain,
    "translation-cv-atlas": translation_cv_atlas,
    "translation-cv-contrast": translation_cv_contrast,
    "restoration-real": restoration_real,
    "report-reader": report_reader,
    "distilled": distilled,
    "service-load": service_load,
    "denoise": denoise,
    "super-resolution": super_resolution,
    "translation-seconds": translation_seconds,
    "unet-forward": unet_forward,
    "mr-to-ct": mr_to_ct,
    "prediction-targets": prediction_targets,
    "watermark": watermark,
    "watermark-strength": watermark_strength,
    "detector": detector,
    "verify-real": verify_real,
    "startup": startup,
    "cxr": cxr,
    "generation": generation,
    "evaluation": evaluation,
    "guidance-interval": guidance_interval,
    "evaluation-utility": evaluation_utility,
    "cxr-steps": cxr_steps,
    "demo-steps": demo_steps,
    "speed-cxr": speed_cxr,
    "handout-scale": handout_scale,
    "utility-cxr": utility_cxr,
    "plan": plan,
    "reader-study": reader_study,
}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- figures:{re.escape(name)} -->\n)(.*?)(\n<!-- /figures:{re.escape(name)} -->)", re.S
    )


def render_readme(text: str) -> tuple[str, list[str]]:
    """``text`` with every marked table rendered anew, and the names of the tables that
    changed (a marker missing from the README counts as changed)."""
    changed = []
    for name, render in TABLES.items():
        pattern = _block(name)
        found = pattern.search(text)
        table = render()
        if found is None or found.group(2) != table:
            changed.append(name)
        if found is not None:
            text = text[: found.start(2)] + table + text[found.end(2) :]
    return text, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite README.md's tables")
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md's tables differ")
    args = parser.parse_args(argv)
    readme = README.read_text(encoding="utf-8")
    rendered, changed = render_readme(readme)
    if args.check:
        for name in changed:
            print(
                f"README.md: table {name!r} differs from benchmarks/results (run: make figures)",
                file=sys.stderr,
            )
        return 1 if changed else 0
    if args.write:
        missing = [name for name in changed if not _block(name).search(readme)]
        if missing:
            print(f"README.md has no marker for: {', '.join(missing)}", file=sys.stderr)
            return 1
        README.write_text(rendered, encoding="utf-8")
        print(
            f"README.md: {len(changed)} table(s) rewritten" + (f" ({', '.join(changed)})" if changed else "")
        )
        return 0
    for name, render in TABLES.items():
        print(f"<!-- figures:{name} -->\n{render()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
