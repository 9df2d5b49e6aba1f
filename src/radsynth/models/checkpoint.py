"""Checkpoints: ``model.safetensors`` + ``card.json`` in one folder, written atomically.

A checkpoint folder holds the shipped weights and the card that says what they are:

- ``model.safetensors``: every module's state dict, keyed ``"<module>.<param>"``. Tensors
  that share memory (tied weights) are stored once; the alias is kept in the file's
  metadata and restored on load. Never a pickle, so a service can load untrusted files.
- ``card.json``: ``radsynth_version``, ``model_id``, ``task``, ``config``, ``data``
  (manifest, sources with licence and count), ``steps``, ``wall_time_s``, ``metrics``,
  ``created`` (and, per task, ``task_info``: facts the generator needs, such as the
  latent scale factor).
- optionally ``train_state.safetensors`` + ``train_state.json``: optimizer, EMA and
  progress state for ``radsynth train --resume``; never needed to generate.

The folder is written under a temporary name and renamed, so a crash mid-save leaves the
previous checkpoint as it was and never a half-written one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from radsynth.errors import CheckpointMismatch, InvalidInput
from radsynth.io.atomic import atomic_path

WEIGHTS = "model.safetensors"
CARD = "card.json"
TRAIN_STATE = "train_state.safetensors"
TRAIN_META = "train_state.json"
CARD_KEYS = (
    "radsynth_version",
    "model_id",
    "task",
    "config",
    "data",
    "steps",
    "wall_time_s",
    "metrics",
    "created",
)

StateDict = dict[str, torch.Tensor]


def save_checkpoint(
    folder: str | Path,
    modules: Mapping[str, nn.Module | Mapping[str, torch.Tensor]],
    card: Mapping[str, Any],
    *,
    train_state: tuple[StateDict, Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``modules`` and ``card`` (and the resume state, if given) to ``folder`` atomically.

    ``modules`` maps a name without dots to a module or a state dict. ``card`` gets
    ``radsynth_version`` and ``created`` filled in when absent. Returns the folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors, metadata = _flatten_modules(modules)
    card = _complete_card(card)
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        save_file(tensors, str(tmp / WEIGHTS), metadata=metadata)
        (tmp / CARD).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        if train_state is not None:
            state_tensors, state_meta = train_state
            flat, state_md = _dedupe({k: v for k, v in state_tensors.items()})
            save_file(flat, str(tmp / TRAIN_STATE), metadata=state_md)
            (tmp / TRAIN_META).write_text(json.dumps(dict(state_meta), indent=2) + "\n", encoding="utf-8")
    return folder


def load_checkpoint(
    folder: str | Path, device: str | torch.device = "cpu"
) -> tuple[dict[str, StateDict], dict]:
    """Read a checkpoint folder: ``({module: state_dict}, card)``.

    Raises ``InvalidInput`` when the folder or a file is missing, ``CheckpointMismatch``
    when a file is there but unreadable.
    """
    folder = _checkpoint_folder(folder)
    card = _read_json(folder / CARD)
    tensors, metadata = _read_safetensors(folder / WEIGHTS, device)
    names = json.loads(metadata.get("radsynth_modules", "[]")) or sorted(
        {k.split(".", 1)[0] for k in tensors}
    )
    state: dict[str, StateDict] = {name: {} for name in names}
    for key, value in tensors.items():
        module, _, param = key.partition(".")
        if module not in state or not param:
            raise CheckpointMismatch(f"{WEIGHTS} holds a key {key!r} of no listed module", folder)
        state[module][param] = value
    return state, card


def load_card(folder: str | Path) -> dict:
    """Read only the card (cheap: no weights are loaded)."""
    return _read_json(_checkpoint_folder(folder) / CARD)


def load_into(
    modules: Mapping[str, nn.Module],
    state: Mapping[str, StateDict],
    strict: bool = True,
    *,
    folder: str | Path | None = None,
) -> None:
    """Copy ``state`` into ``modules``; on any mismatch raise ``CheckpointMismatch`` (one line).

    With ``strict`` every module, key and shape must match both ways; without it, modules
    and keys missing on either side are skipped but shapes must still agree. ``folder``
    only names the source in the error.
    """
    where = folder if folder is not None else "checkpoint"
    if strict:
        _require_same_names(set(modules), set(state), "module", where)
    for name, module in modules.items():
        if name not in state:
            continue
        own = module.state_dict()
        saved = state[name]
        if strict:
            _require_same_names(set(own), set(saved), f"key of module {name!r}", where)
        for key, tensor in own.items():  # the model's order: the first layer first
            if key in saved and saved[key].shape != tensor.shape:
                raise CheckpointMismatch(
                    f"{name}.{key} has shape {tuple(saved[key].shape)} in the checkpoint but "
                    f"{tuple(tensor.shape)} in the model",
                    where,
                )
        module.load_state_dict({k: v for k, v in saved.items() if k in own}, strict=strict)


def restore(
    folder: str | Path,
    modules: Mapping[str, nn.Module],
    strict: bool = True,
    device: str | torch.device = "cpu",
) -> dict:
    """Load the checkpoint in ``folder`` into ``modules`` and return its card."""
    state, card = load_checkpoint(folder, device)
    load_into(modules, state, strict, folder=folder)
    return card


def load_train_state(folder: str | Path) -> tuple[StateDict, dict]:
    """Read the resume state written beside the weights: ``(tensors, meta)``."""
    folder = _checkpoint_folder(folder)
    meta = _read_json(folder / TRAIN_META)
    tensors, _ = _read_safetensors(folder / TRAIN_STATE, "cpu")
    return tensors, meta


def has_train_state(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / TRAIN_STATE).is_file() and (folder / TRAIN_META).is_file()


def _complete_card(card: Mapping[str, Any]) -> dict:
    from radsynth import __version__

    out = {"radsynth_version": __version__}
    out.update(card)
    out.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    for key in ("model_id", "task"):
        if key not in out:
            raise InvalidInput(f"a checkpoint card needs {key!r}")
    try:
        json.dumps(out)  # fail here, before anything is written, on values JSON cannot hold
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"the checkpoint card does not fit in JSON ({_one_line(err)})") from None
    return out


def _flatten_modules(
    modules: Mapping[str, nn.Module | Mapping[str, torch.Tensor]],
) -> tuple[StateDict, dict[str, str]]:
    if not modules:
        raise InvalidInput("a checkpoint needs at least one module")
    flat: StateDict = {}
    for name, module in modules.items():
        if not name or "." in name:
            raise InvalidInput(f"module name {name!r} must be non-empty and hold no '.'")
        items = module.state_dict() if isinstance(module, nn.Module) else module
        for key, value in items.items():
            if not isinstance(value, torch.Tensor):
                raise InvalidInput(f"{name}.{key} is a {type(value).__name__}, not a tensor")
            flat[f"{name}.{key}"] = value
    tensors, metadata = _dedupe(flat)
    metadata["radsynth_modules"] = json.dumps(list(modules))
    return tensors, metadata


def _dedupe(flat: Mapping[str, torch.Tensor]) -> tuple[StateDict, dict[str, str]]:
    """Store tied tensors once (aliases in metadata); give other shared views their own memory."""
    out: StateDict = {}
    aliases: dict[str, str] = {}
    seen_views: dict[tuple, str] = {}
    seen_storages: set[int] = set()
    for key, value in flat.items():
        value = value.detach().to("cpu")
        view = (
            value.untyped_storage().data_ptr(),
            value.storage_offset(),
            tuple(value.shape),
            value.stride(),
            value.dtype,
        )
        if value.numel() and view in seen_views:
            aliases[key] = seen_views[view]
            continue
        storage = value.untyped_storage().data_ptr()
        if value.numel() and (storage in seen_storages or not value.is_contiguous()):
            value = value.contiguous().clone()
        elif value.numel() and value.untyped_storage().nbytes() != value.numel() * value.element_size():
            value = value.clone()  # a view into a larger buffer: save only what it shows
        if value.numel():
            seen_views[view] = key
            seen_storages.add(storage)
        out[key] = value
    return out, {"format": "pt", "aliases": json.dumps(aliases)}


def _checkpoint_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput("no checkpoint folder here", folder)
    return folder


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise InvalidInput(f"checkpoint has no {path.name}", path.parent)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointMismatch(f"{path.name} is not valid JSON ({_one_line(err)})", path.parent) from None
    if not isinstance(value, dict):
        raise CheckpointMismatch(f"{path.name} does not hold a JSON object", path.parent)
    return value


def _read_safetensors(path: Path, device: str | torch.device) -> tuple[StateDict, dict[str, str]]:
    from safetensors import safe_open

    if not path.is_file():
        raise InvalidInput(f"checkpoint has no {path.name}", path.parent)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        aliases = json.loads(metadata.get("aliases", "{}"))
    except Exception as err:  # safetensors raises several types for a damaged file
        raise CheckpointMismatch(f"{path.name} is unreadable ({_one_line(err)})", path.parent) from None
    for alias, target in aliases.items():
        if target not in tensors:
            raise CheckpointMismatch(
                f"{path.name}: alias {alias!r} points to missing {target!r}", path.parent
            )
        tensors[alias] = tensors[target]
    return tensors, metadata


def _require_same_names(have: set[str], saved: set[str], what: str, where: str | Path) -> None:
    missing = sorted(have - saved)
    if missing:
        raise CheckpointMismatch(f"{what} {missing[0]!r} is missing from the checkpoint", where)
    extra = sorted(saved - have)
    if extra:
        raise CheckpointMismatch(f"{what} {extra[0]!r} in the checkpoint is not in the model", where)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]
