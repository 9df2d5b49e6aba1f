"""Reader studies ("spot the synthetic"): a balanced, shuffled mix of real and synthetic
images that readers label one by one, kept in the service's database and data folder.

What a reader may learn and when is the point of the design:

- The images are copied to ``<data>/studies/<study>/<item>.png`` under opaque random ids
  as plain 8-bit grey pixels: no PNG text chunk, no file name, no bit depth or size
  difference (sets of different sizes are refused), so nothing but the pixels tells real
  from synthetic.
- The key (which item is real, where it came from) and the evidence shown after answering
  (``radsynth verify`` on the source file: its marking, the watermark read from its full
  bit depth, which 8 bits would erase, and the shipped detector's score) live only in the
  database; a reader gets them once they have answered every item of the study.
- Real images are served only to a reader of their study (or its owner), by opaque id;
  the study records the source of each (manifest record, subject, licence).
- A study of pairs ("which of the two is real?") shows one real and one synthetic image
  side by side, the side drawn with the seed; each image has its own opaque id
  (``study_images``), the pair's item stores which side is real, and the same rules hold.

Readers are tokens with the ``study`` scope listed for a study: made by the owner, or by
a one-time invitation (a secret link that expires) that makes such a token when opened.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from radsynth.errors import InvalidInput, RadsynthError
from radsynth.serve.store import Store, Token, digest

BATCH_CARD = "generation.json"
MAX_ITEMS = 400
MAX_INVITE_HOURS = 24 * 30


class StudyNotFound(RadsynthError):
    """No such study, image or invitation for this caller; another admin's study reads the
    same (HTTP 404), so ids cannot be probed."""


class StudyConflict(RadsynthError):
    """A request that contradicts what is stored: an image answered twice, a reveal before
    every image is answered (HTTP 409)."""


class InvitationGone(RadsynthError):
    """An invitation already used or past its expiry (HTTP 410)."""


@dataclass(frozen=True)
class Candidate:
    """An image that may enter a study: its pixels in [0, 1], its file and where it came from."""

    unit: np.ndarray
    path: Path
    source: dict[str, Any]


def _now() -> datetime:
    return datetime.now(UTC)


def real_candidates(manifest: Path, split: str | None = None) -> list[Candidate]:
    """The manifest's records (of ``split``) as candidates, each with its source facts."""
    from radsynth.data.manifest import load_manifest, read_unit_image

    records = [r for r in load_manifest(manifest) if split is None or r.split == split]
    return [
        Candidate(
            read_unit_image(r.resolve(manifest)),
            r.resolve(manifest),
            {"path": r.path, "subject": r.subject, "source": r.source, "licence": r.licence, "text": r.text},
        )
        for r in records
    ]


def synthetic_candidates(folder: Path) -> list[Candidate]:
    """The PNGs each ``generation.json`` below ``folder`` lists (not its contact sheet)."""
    cards = sorted(Path(folder).rglob(BATCH_CARD))
    if not cards:
        raise InvalidInput(f"no {BATCH_CARD} below this folder: not written by radsynth generate", folder)
    out = []
    for card_path in cards:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        for output in card.get("files", []):
            path = card_path.parent / str(output["file"])
            if path.suffix.lower() == ".png":
                facts = {"model_id": card.get("model_id"), "prompt": card.get("prompt")}
                source = {
                    "path": str(path.relative_to(folder)),
                    "output_id": output.get("output_id"),
                    **facts,
                }
                out.append(Candidate(display_codes(path), path, source))
    return out


def display_codes(path: Path) -> np.ndarray:
    """A generated PNG's codes as [0, 1]: the display window it was drawn in, as evaluation
    reads it. Its ``value_range`` (HU for CT) is not applied: mapped to HU and clipped to
    [0, 1], a lung-window image would turn black and white."""
    from radsynth.io.raster import read_raster

    codes = read_raster(path).array
    top = float(np.iinfo(codes.dtype).max) if codes.dtype.kind in "ui" else 1.0
    return np.clip(codes.astype(np.float32) / top, 0, 1)


def pick(real: list[Candidate], synthetic: list[Candidate], n: int, seed: int) -> list[tuple[str, Candidate]]:
    """``n`` images, half real and half synthetic, drawn and shuffled by ``seed``; refused
    in one line when a set is too small or the sizes differ (a reader would see it)."""
    if n < 2 or n % 2 or n > MAX_ITEMS:
        raise InvalidInput(f"-n must be an even number of images in 2..{MAX_ITEMS}, got {n}")
    half = n // 2
    for name, found in (("real", real), ("synthetic", synthetic)):
        if len(found) < half:
            raise InvalidInput(
                f"a study of {n} images needs {half} {name} images; the {name} set has {len(found)}"
            )
    rng = np.random.default_rng(seed)
    chosen = [("real", real[i]) for i in rng.choice(len(real), half, replace=False)]
    chosen += [("synthetic", synthetic[i]) for i in rng.choice(len(synthetic), half, replace=False)]
    sizes = sorted({c.unit.shape for _, c in chosen})
    if len(sizes) > 1:
        shown = ", ".join("x".join(map(str, s)) for s in sizes)
        raise InvalidInput(f"the images differ in size ({shown}): a reader would tell them apart by size")
    return [chosen[i] for i in rng.permutation(n)]


def pair_up(chosen: list[tuple[str, Candidate]], seed: int) -> list[tuple[str, Candidate, Candidate]]:
    """The drawn images as n/2 pairs (real side, left, right): the k-th real image of the
    shuffled draw with the k-th synthetic one, the real one's side drawn from a stream of
    its own, so the side says nothing about the draw's order."""
    real = [c for truth, c in chosen if truth == "real"]
    synthetic = [c for truth, c in chosen if truth == "synthetic"]
    sides = np.random.default_rng([seed, 1]).integers(2, size=len(real))
    return [
        ("left", r, s) if side == 0 else ("right", s, r)
        for r, s, side in zip(real, synthetic, sides, strict=True)
    ]


def _write_png(path: Path, candidate: Candidate) -> None:
    from PIL import Image

    codes = np.round(np.clip(candidate.unit, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(codes, mode="L").save(path)  # plain pixels: no text chunk, no marking


def create_study(
    store: Store,
    data_dir: Path,
    owner: str,
    real: Path,
    synthetic: Path,
    n: int,
    seed: int = 0,
    split: str | None = None,
    detector: Any | None = None,
    pairs: bool = False,
) -> str:
    """A new study owned by the admin token ``owner`` (its id): its images written under
    ``data_dir/studies/<id>/``, its key and evidence in the database; with ``pairs`` its
    ``n`` images make n/2 real-synthetic pairs. Returns its id."""
    from radsynth.provenance.verify import summarise, verify_file

    def evidence_of(candidate: Candidate) -> dict[str, Any]:
        evidence = verify_file(candidate.path, detector=detector, audit=None).evidence
        return evidence | {"summary": summarise(evidence)}

    admins = [t for t in store.tokens() if t.id == owner and "admin" in t.scopes]
    if not admins:
        raise InvalidInput(
            f"--owner {owner[:64]!r} is not an admin token of this data folder (radsynth token list)"
        )
    chosen = pick(real_candidates(real, split), synthetic_candidates(synthetic), n, seed)
    study_id = secrets.token_hex(6)
    folder = data_dir / "studies" / study_id
    folder.mkdir(parents=True)
    rows, images = [], []
    if pairs:
        for position, (real_side, left, right) in enumerate(pair_up(chosen, seed)):
            item_id = secrets.token_hex(8)
            shown = {"left": left, "right": right}
            for side, candidate in shown.items():
                image_id = secrets.token_hex(8)
                _write_png(folder / f"{image_id}.png", candidate)
                images.append((image_id, item_id, study_id, side))
            source = {side: c.source for side, c in shown.items()}
            evidence = {side: evidence_of(c) for side, c in shown.items()}
            rows.append((item_id, study_id, position, real_side, json.dumps(source), json.dumps(evidence)))
    else:
        for position, (truth, candidate) in enumerate(chosen):
            item_id = secrets.token_hex(8)
            _write_png(folder / f"{item_id}.png", candidate)
            evidence = json.dumps(evidence_of(candidate))
            rows.append((item_id, study_id, position, truth, json.dumps(candidate.source), evidence))
    params = {
        "n": n,
        "seed": seed,
        "split": split,
        "real": str(real),
        "synthetic": str(synthetic),
        "mode": "pairs" if pairs else "singles",
    }
    with store.transaction() as db:
        db.execute(
            "INSERT INTO studies (id, owner, created, params) VALUES (?, ?, ?, ?)",
            (study_id, owner, _now().isoformat(timespec="seconds"), json.dumps(params)),
        )
        db.executemany(
            "INSERT INTO study_items (id, study_id, position, truth, source, evidence)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.executemany("INSERT INTO study_images (id, item_id, study_id, side) VALUES (?, ?, ?, ?)", images)
    return study_id


class Studies:
    """The studies of one service: who may see which, answers, invitations, reports."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store, self.data_dir = store, data_dir

    def study(self, study_id: str, who: Token) -> dict[str, Any]:
        """The study, if ``who`` owns it or is one of its readers; a missing study and
        another admin's study give the same one-line ``StudyNotFound``."""
        rows = self.store.read("SELECT * FROM studies WHERE id = ?", (study_id,))
        if rows and (rows[0]["owner"] == who.id or self.is_reader(study_id, who)):
            return dict(rows[0])
        raise StudyNotFound(f"no study {study_id[:64]}")

    def owned(self, study_id: str, who: Token) -> dict[str, Any]:
        study = self.study(study_id, who)
        if study["owner"] != who.id:
            raise StudyNotFound(f"no study {study_id[:64]}")
        return study

    def is_reader(self, study_id: str, who: Token) -> bool:
        found = self.store.read(
            "SELECT 1 FROM study_readers WHERE study_id = ? AND token_id = ?", (study_id, who.id)
        )
        return bool(found)

    def is_pairs(self, study_id: str) -> bool:
        rows = self.store.read("SELECT params FROM studies WHERE id = ?", (study_id,))
        return bool(rows) and json.loads(rows[0]["params"]).get("mode") == "pairs"

    def pair_images(self, study_id: str) -> dict[str, list[dict[str, Any]]]:
        """Each pair's two images (id and side), left first."""
        rows = self.store.read("SELECT * FROM study_images WHERE study_id = ? ORDER BY side", (study_id,))
        out: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(r["item_id"], []).append(dict(r))
        return out

    def listed(self, who: Token) -> list[dict[str, Any]]:
        """The studies ``who`` owns or reads, each with its size and this caller's progress."""
        rows = self.store.read(
            "SELECT s.id, s.owner, s.created, s.params,"
            " (SELECT COUNT(*) FROM study_items i WHERE i.study_id = s.id) AS n,"
            " (SELECT COUNT(*) FROM study_answers a WHERE a.study_id = s.id AND a.token_id = ?) AS answered"
            " FROM studies s WHERE s.owner = ?"
            " OR s.id IN (SELECT study_id FROM study_readers WHERE token_id = ?)"
            " ORDER BY s.created DESC",
            (who.id, who.id, who.id),
        )
        return [
            {
                "id": r["id"],
                "created": r["created"],
                "n": r["n"],
                "answered": r["answered"],
                "owner": r["owner"] == who.id,
                "mode": json.loads(r["params"]).get("mode", "singles"),
            }
            for r in rows
        ]

    def items(self, study_id: str) -> list[dict[str, Any]]:
        rows = self.store.read("SELECT * FROM study_items WHERE study_id = ? ORDER BY position", (study_id,))
        return [dict(r) for r in rows]

    def answered(self, study_id: str, who: Token) -> dict[str, dict[str, Any]]:
        rows = self.store.read(
            "SELECT * FROM study_answers WHERE study_id = ? AND token_id = ?", (study_id, who.id)
        )
        return {r["item_id"]: dict(r) for r in rows}

    def next_item(self, study_id: str, who: Token) -> dict[str, Any]:
        """The reader's next unanswered image (its opaque id and position only), or done; a
        pair adds its two images' opaque ids, left first."""
        self.study(study_id, who)
        items, done = self.items(study_id), self.answered(study_id, who)
        left = [i for i in items if i["id"] not in done]
        if not left:
            return {"done": True, "total": len(items), "answered": len(done)}
        shown = {"done": False, "item": left[0]["id"], "position": len(done) + 1, "total": len(items)}
        if self.is_pairs(study_id):
            shown["images"] = [image["id"] for image in self.pair_images(study_id)[left[0]["id"]]]
        return shown

    def image(self, study_id: str, image_id: str, who: Token) -> Path:
        """The file of one image: an item of a study of singles, one side of a pair."""
        self.study(study_id, who)
        if self.is_pairs(study_id):
            ids = [image["id"] for pair in self.pair_images(study_id).values() for image in pair]
        else:
            ids = [i["id"] for i in self.items(study_id)]
        if image_id not in ids:
            raise StudyNotFound(f"no image {image_id[:64]} in study {study_id[:64]}")
        return self.data_dir / "studies" / study_id / f"{image_id}.png"

    def answer(
        self, study_id: str, who: Token, item_id: str, answer: str, confidence: int, response_ms: int
    ) -> None:
        """Store one answer, once: a second answer to the same image (or pair) is refused.
        On a pair the answer is the side picked as real."""
        from radsynth.evaluate.reader_study import ANSWERS, SIDES

        self.study(study_id, who)
        if not self.is_reader(study_id, who):
            raise InvalidInput("only a reader of this study answers it (its owner reads the report)")
        allowed = SIDES if self.is_pairs(study_id) else ANSWERS
        if answer not in allowed:
            raise InvalidInput(f"answer must be {' or '.join(allowed)}, got {answer[:32]!r}")
        if not 1 <= confidence <= 5:
            raise InvalidInput(f"confidence must be 1..5, got {confidence}")
        if not 0 <= response_ms <= 24 * 3600 * 1000:
            raise InvalidInput(f"response_ms must be 0..86400000, got {response_ms}")
        if not any(i["id"] == item_id for i in self.items(study_id)):
            raise StudyNotFound(f"no image {item_id[:64]} in study {study_id[:64]}")
        with self.store.transaction() as db:
            if db.execute(
                "SELECT 1 FROM study_answers WHERE item_id = ? AND token_id = ?", (item_id, who.id)
            ).fetchone():
                raise StudyConflict(f"image {item_id} is already answered; an answer cannot be changed")
            db.execute(
                "INSERT INTO study_answers"
                " (item_id, token_id, study_id, answer, confidence, response_ms, time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    item_id,
                    who.id,
                    study_id,
                    answer,
                    confidence,
                    response_ms,
                    _now().isoformat(timespec="milliseconds"),
                ),
            )

    def reveal(self, study_id: str, who: Token) -> dict[str, Any]:
        """After the last answer: the reader's score and every image's label and evidence
        (on a pair: the real one's side, and both images labelled with their evidence)."""
        self.study(study_id, who)
        items, done = self.items(study_id), self.answered(study_id, who)
        if len(done) < len(items):
            raise StudyConflict(f"answer every image first ({len(done)} of {len(items)} answered)")
        shown = [
            {
                "item": i["id"],
                "position": i["position"] + 1,
                "truth": i["truth"],
                "answer": done[i["id"]]["answer"],
                "confidence": done[i["id"]]["confidence"],
                "correct": done[i["id"]]["answer"] == i["truth"],
                "evidence": json.loads(i["evidence"]),
            }
            for i in items
        ]
        if self.is_pairs(study_id):
            images = self.pair_images(study_id)
            for pair in shown:
                pair["images"] = [
                    {
                        "image": image["id"],
                        "side": image["side"],
                        "truth": "real" if image["side"] == pair["truth"] else "synthetic",
                        "evidence": pair["evidence"][image["side"]],
                    }
                    for image in images[pair["item"]]
                ]
                del pair["evidence"]
        return {"correct": sum(s["correct"] for s in shown), "total": len(shown), "items": shown}

    def add_reader(self, study_id: str, owner: Token, name: str) -> str:
        """A new ``study``-scope token reading this study; its secret, shown once."""
        self.owned(study_id, owner)
        made, secret = self.store.create_token(name, ["study"])
        with self.store.transaction() as db:
            db.execute("INSERT INTO study_readers (study_id, token_id) VALUES (?, ?)", (study_id, made.id))
        return secret

    def invite(self, study_id: str, owner: Token, hours: float) -> tuple[str, str]:
        """A one-time invitation: (its secret code, its expiry); stored only as a digest."""
        self.owned(study_id, owner)
        if not 0 < hours <= MAX_INVITE_HOURS:
            raise InvalidInput(f"hours must be in (0, {MAX_INVITE_HOURS}], got {hours}")
        code = secrets.token_urlsafe(24)
        expires = (_now() + timedelta(hours=hours)).isoformat(timespec="seconds")
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO study_invitations (digest, study_id, expires) VALUES (?, ?, ?)",
                (digest(code), study_id, expires),
            )
        return code, expires

    def accept(self, code: str, name: str) -> tuple[str, str]:
        """Open an invitation once: (study id, a new reader token's secret)."""
        rows = self.store.read("SELECT * FROM study_invitations WHERE digest = ?", (digest(code),))
        if not rows:
            raise StudyNotFound("no such invitation: check the link")
        invitation = rows[0]
        if invitation["used_by"] is not None:
            raise InvitationGone("this invitation was already used; ask the study's owner for a new one")
        if datetime.fromisoformat(invitation["expires"]) <= _now():
            raise InvitationGone(f"this invitation expired at {invitation['expires']}; ask for a new one")
        made, secret = self.store.create_token(name, ["study"])
        with self.store.transaction() as db:
            claimed = db.execute(
                "UPDATE study_invitations SET used_by = ? WHERE digest = ? AND used_by IS NULL",
                (made.id, digest(code)),
            ).rowcount
            if claimed:
                db.execute(
                    "INSERT INTO study_readers (study_id, token_id) VALUES (?, ?)",
                    (invitation["study_id"], made.id),
                )
        if not claimed:  # opened twice at the same moment: the other request won; this token goes
            self.store.revoke_token(made.id)
            raise InvitationGone("this invitation was already used; ask the study's owner for a new one")
        return invitation["study_id"], secret

    def answers(self, study_id: str) -> list[dict[str, Any]]:
        """Every answer with its reader's name, the truth, time and response time."""
        rows = self.store.read(
            "SELECT a.*, i.truth, i.position, t.name AS reader_name FROM study_answers a"
            " JOIN study_items i ON i.id = a.item_id JOIN tokens t ON t.id = a.token_id"
            " WHERE a.study_id = ? ORDER BY a.time",
            (study_id,),
        )
        return [dict(r) for r in rows]


def study_report(studies: Studies, study_id: str, n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """The statistics of every answer so far (``evaluate.reader_study.report``), with each
    image's source and evidence and the raw answers."""
    from radsynth.evaluate.reader_study import Answer, report

    if not studies.store.read("SELECT 1 FROM studies WHERE id = ?", (study_id,)):
        raise StudyNotFound(f"no study {study_id[:64]}")
    answers = studies.answers(study_id)
    if not answers:
        raise InvalidInput(f"study {study_id} has no answers yet")
    given = [Answer(a["token_id"], a["item_id"], a["truth"], a["answer"], a["confidence"]) for a in answers]
    stats = report(given, n_boot=n_boot, seed=seed, pairs=studies.is_pairs(study_id))
    names = {a["token_id"]: a["reader_name"] for a in answers}
    items = {i["id"]: i for i in studies.items(study_id)}
    for row in stats["items"]:
        item = items[row["item"]]
        row |= {"position": item["position"] + 1, "source": json.loads(item["source"])}
    raw = [
        {k: a[k] for k in ("item_id", "token_id", "answer", "confidence", "response_ms", "time")}
        for a in answers
    ]
    return {"study": study_id, "reader_names": names, **stats, "answers": raw}
