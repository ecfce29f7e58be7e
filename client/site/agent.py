"""The site agent of one data centre: follows the task's chaincode events and plays its part in each
fusion round (MDFF-SL), acting only on its own data.

A round, as each agent sees it:

0. ``RoundOpened``: each participant joins the round (``Rounds:Join``) if its site policy allows it
   (:mod:`swarmfuse.client.site.policy`), else votes to abort it and does nothing more.
1. Participants run private set intersection with the leader (each learns which of
   its entities are in the aligned set, nothing about the others); the leader records the size of
   the aligned set and a commitment to it (``Rounds:RecordAlignment``).
2. ``AlignmentRecorded``: each participant checks the commitment against its own aligned IDs, extracts
   the features of those rows with its ONNX extractor (the label holder: the labels), records the
   exchange on-chain (SHA-256, size, rows) and sends the file to the leader. In a round with split epochs each
   feature site first sends its features and applies the leader's gradients per epoch; a gradient file that is on
   the record but malformed (not one finite float32 array of its features' shape) it declines the round over,
   saying why, and sends nothing more.
3. The leader accepts a file only when it matches its on-chain record; once every file is in, it
   trains the intermediate-fusion head on the concatenated features and records the model's hash with,
   under an agreement, the contribution table (``Rounds:MarkFused``); a leader that is a feature site of a
   split-learning round first records its own fine-tuned extractor (``Rounds:RecordLeaderExtractor``).
4. ``ModelFused``: every participant downloads the model, checks its hash against the ledger and
   acknowledges it and the contribution table's hash; the participant that acknowledges last closes the
   round (which credits each participant's units).

Every step is an idempotent action in the store (and checked against the ledger before a submit), the
event stream's checkpoint is in the store, and a starting agent looks at every round its store knows as live, so
an agent killed at any point resumes with nothing lost and nothing done twice.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from swarmfuse.chaincode.contracts.records import (
    GRADIENTS_KIND,
    ContributionTable,
    ExtractorProvenance,
    Member,
    MemberStatus,
    PrivacyTerms,
    ReleasePrivacy,
    Round,
    Summary,
    epoch_kind,
)
from swarmfuse.client.gateway import ChaincodeEvent, MVCCReadConflictError
from swarmfuse.client.ledger import LedgerConflict, TaskLedger
from swarmfuse.client.site.alignment import LeaderSession, ParticipantSession, commitment_of
from swarmfuse.client.site.fusion import FeatureBlock, fuse_round
from swarmfuse.client.site.link import Peer
from swarmfuse.client.site.manifest import Manifest
from swarmfuse.client.site.policy import SitePolicy, load_policy
from swarmfuse.client.site.shards import load_labels, privacy_path, write_features, write_labels, write_release
from swarmfuse.client.site.site import Site, SiteError
from swarmfuse.client.site.source import BundleSource
from swarmfuse.client.site.store import SqlCheckpointer, Store
from swarmfuse.extractors.data.cache import sha256_file
from swarmfuse.extractors.split.gradients import GradientError, read_gradients
from swarmfuse.files import make_private, write_atomic

if TYPE_CHECKING:
    from swarmfuse.extractors.split.site import TrainableExtractor

logger = logging.getLogger(__name__)

LABELS = "label"
FEATURES_KIND = "features"
LABELS_KIND = "labels"
MODEL_KIND = "model"
OVER_BUDGET = "above the agreed budget"
"""What the chaincode says of a release past the sender's privacy budget (``Rounds:RecordExchange``)."""


class FeatureSource(Protocol):
    """A site's extractor for one modality (an ONNX bundle): its file hash, width, provenance and ``extract``."""

    sha256: str
    feature_dim: int
    backbone: str
    provenance: ExtractorProvenance | None
    folder: Path
    trainable: bool

    def extract(self, values: list[str], base: Path | None) -> Any: ...


class PeerLink(Protocol):
    """How an agent talks to other sites off-chain (mutual TLS); see :mod:`swarmfuse.client.site.link`."""

    def psi(self, peer: Peer, round_id: str, blinded: list[str]) -> dict[str, Any]: ...

    def psi_confirm(self, peer: Peer, round_id: str, answer: list[str]) -> None: ...

    def alignment(self, peer: Peer, round_id: str) -> dict[str, Any]: ...

    def upload(self, peer: Peer, round_id: str, kind: str, path: Path) -> None: ...

    def download(self, peer: Peer, round_id: str, kind: str, dest: Path, max_bytes: int) -> Path: ...


@dataclass(frozen=True)
class Holding:
    """What the site holds for one modality: its manifest and (for text and images) its extractor."""

    modality: str
    manifest: Manifest
    source: FeatureSource | None


class SiteAgent:
    """One org's agent: registration, data summaries, and its part in every round it takes part in."""

    def __init__(self, site: Site, ledger: TaskLedger, store: Store, link: PeerLink,
                 holdings: dict[str, Holding]) -> None:
        self.site = site
        self.ledger = ledger
        self.store = store
        self.link = link
        self.holdings = holdings
        self._work: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._psi_lock = threading.Lock()
        self._trainables: dict[str, TrainableExtractor] = {}  # round -> this site's extractor in split learning
        self._tuned: dict[str, Holding] = {}  # round -> its holding with the extractor split learning fine-tuned

    @property
    def mspid(self) -> str:
        return self.site.mspid

    # --- registration and summaries -------------------------------------------------------------

    def ensure_registered(self, tls_fingerprint: str) -> Member:
        """Register the org (once); returns its member record."""
        current = self.ledger.member(self.mspid)
        if current is not None and current.status in (MemberStatus.ACTIVE, MemberStatus.PENDING):
            return current
        profile = {"name": f"{self.site.org_name} data centre", "endpoint": self.site.url.removeprefix("https://"),
                   "tls_fingerprint": tls_fingerprint, "modalities": sorted(self.holdings)}
        return self.ledger.register(profile)

    def publish(self, modality: str) -> Summary:
        """Publish the data summary of ``modality`` from the data itself (never the data)."""
        holding = self.holdings[modality]
        manifest = holding.manifest
        salt = self._commitment_salt()
        provenance = None
        if holding.source is not None:
            feature_dim, extractor, extractor_sha = holding.source.feature_dim, holding.source.backbone, \
                holding.source.sha256
            labels, provenance = None, holding.source.provenance
        else:  # labels: the class list stands for the extractor
            classes = sorted({row.value for row in manifest.rows})
            feature_dim, extractor = len(classes), "labels"
            extractor_sha = hashlib.sha256(json.dumps(classes).encode()).hexdigest()
            labels = classes[:64]
        summary = {
            "modality": modality, "entity_count": len(manifest.rows), "feature_dim": feature_dim,
            "manifest_sha256": manifest.fingerprint(), "entity_commitment": manifest.entity_commitment(salt),
            "extractor": extractor, "extractor_onnx_sha256": extractor_sha, "labels": labels,
            # a bundle without provenance publishes none, as sites did before provenance existed
            **({"extractor_provenance": provenance.model_dump(mode="json")} if provenance is not None else {}),
        }
        self.store.add_dataset(modality=modality, manifest_path=manifest.path, manifest_sha256=manifest.sha256,
                               fingerprint=manifest.fingerprint(), entity_count=len(manifest.rows),
                               feature_dim=feature_dim, extractor_sha256=extractor_sha)
        return self.ledger.publish_summary(summary)

    def _commitment_salt(self) -> bytes:
        """A per-site secret salt (kept in the site folder) for the published entity commitment."""
        path = self.site.folder / "commitment.salt"
        if not path.exists():
            write_atomic(path, secrets.token_bytes(32))
        return path.read_bytes()

    # --- the event loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Follow the chaincode's events (checkpointed in the store) and do the work they call for, until ``stop``."""
        worker = threading.Thread(target=self._work_loop, args=(stop,), name="site-worker", daemon=True)
        worker.start()
        for state in ("open", "fused"):  # a restart looks at every live round again: what woke the worker for its
            for known in self.store.rounds(state):  # last step (a file's arrival) may have come just before it died
                self.poke(known.round_id)
        checkpointer = SqlCheckpointer(self.store, self.ledger.task, "swarmfuse")
        while not stop.is_set():
            start = None if checkpointer.position.block_number is not None else 0
            events = self.ledger.events(checkpointer, start_block=start)
            closer = threading.Thread(target=lambda events=events: (stop.wait(), events.close()), daemon=True)
            closer.start()
            try:
                for event in events:
                    self._on_event(event)
            except Exception as exc:  # noqa: BLE001 - a broken stream (engine restart, network): reopen at the checkpoint
                if stop.is_set():
                    break
                logger.warning("event stream ended (%s); resuming from the checkpoint", exc)
                stop.wait(1.0)
        self._work.put(None)
        worker.join(timeout=30)

    def _on_event(self, event: ChaincodeEvent) -> None:
        payload = json.loads(event.payload or b"{}")
        round_id = payload.get("round")
        if not round_id or not self._concerns(event.event_name, round_id, payload):
            return
        logger.info("event %s for round %s", event.event_name, round_id)
        self._work.put((event.event_name, round_id))

    def _concerns(self, name: str, round_id: str, payload: dict[str, Any]) -> bool:
        """Whether an event can change what this site owes the round (the others are not worth a ledger read):
        a recorded exchange matters only to its receiver, who learns of the file itself when it arrives, another
        site's join to nobody (each participant joins before it aligns), an acknowledgement to nobody (the
        site that acknowledges last closes the round), and the leader's record of its own extractor to nobody but
        the leader, who made it."""
        return name not in ("ExchangeRecorded", "RoundJoined", "Acknowledged", "LeaderExtractorRecorded")

    def poke(self, round_id: str) -> None:
        """Ask the worker to look at a round again (e.g. after a file arrived)."""
        self._work.put(("Poke", round_id))

    def _work_loop(self, stop: threading.Event) -> None:
        while (item := self._work.get()) is not None:
            name, round_id = item
            try:
                self.advance(round_id)
            except Exception:
                logger.exception("round %s: handling %s failed; it is retried on the next event", round_id, name)
                if not stop.is_set():
                    threading.Timer(5.0, self.poke, args=(round_id,)).start()

    # --- one round ------------------------------------------------------------------------------

    def advance(self, round_id: str) -> None:
        """Do whatever this site still owes the round in its current on-chain state (idempotent)."""
        start, ledger_before = time.perf_counter(), self.ledger.seconds
        rnd = self.ledger.round(round_id)
        if self.mspid not in rnd.participants:
            return
        try:
            self._advance(rnd)
        finally:
            self._account(round_id, time.perf_counter() - start, self.ledger.seconds - ledger_before)

    def _account(self, round_id: str, busy: float, ledger: float) -> None:
        """Add this step's busy time and ledger time to the round's ``timing.json`` (site-local)."""
        path = self.site.round_dir(round_id) / "timing.json"
        timing = json.loads(path.read_text()) if path.exists() else {"busy_s": 0.0, "ledger_s": 0.0}
        timing = {"busy_s": timing["busy_s"] + busy, "ledger_s": timing["ledger_s"] + ledger}
        write_atomic(path, json.dumps(timing).encode())

    def _advance(self, rnd: Round) -> None:
        round_id = rnd.round_id
        leader = rnd.leader == self.mspid
        self.store.save_round(round_id, state=rnd.state.value, role="leader" if leader else "participant",
                              leader=rnd.leader)
        if rnd.state == "open":
            if not self._consent(rnd):
                return
            if leader:
                self._lead_alignment(rnd)
                if self._split_led(rnd):
                    self._try_fuse(rnd)
            else:
                self._join_alignment(rnd)
                self._send_shards(rnd)
        elif rnd.state == "fused":
            self._trainables.pop(round_id, None)  # split learning is over: its tops are on disk
            if self._take_model(rnd):
                rnd = self.ledger.round(round_id)
            self._try_close(rnd)  # whoever sees every acknowledgement first closes (the last to acknowledge, or
            # a site resuming after a crash between its acknowledgement and the close)

    # step 0: consent -----------------------------------------------------------------------------

    @property
    def policy(self) -> SitePolicy:
        """The site's consent policy as its file says now (``swarmfuse site policy`` changes it while serving)."""
        return load_policy(self.site.folder)

    def _consent(self, rnd: Round) -> bool:
        """Join the round if the site's policy allows it (once); otherwise vote to abort it, saying why."""
        round_id = rnd.round_id
        if self.store.action_done(round_id, "join"):
            return True
        if self.store.action_done(round_id, "decline"):
            return False
        reason = self.policy.refusal(rnd, self.mspid) or self._outside_terms(rnd) or self._cannot_split(rnd)
        if reason is not None:
            self._decline(round_id, reason)
            return False
        if self.mspid not in rnd.joined:
            try:
                self.ledger.join(round_id)
            except LedgerConflict as exc:
                if "already joined" not in exc.message:
                    raise
        self.store.finish_action(round_id, "join", "the site's policy allows the round")
        return True

    def _outside_terms(self, rnd: Round) -> str | None:
        """Why the round asks this site to send what the round's agreement does not allow (``None``: nothing)."""
        terms = self.ledger.round_terms(rnd)
        if terms is None:
            return None
        allowed = set(terms.exchange_kinds)
        forbidden = [kind for kind in self._shards_to_send(rnd) if kind not in allowed]
        if not forbidden:
            return None
        return (f"the round's agreement {terms.agreement_sha256[:16]} does not allow sending "
                f"{', '.join(forbidden)} (it allows {', '.join(sorted(allowed)) or 'nothing'})")

    def _cannot_split(self, rnd: Round) -> str | None:
        """Why this site cannot fine-tune its extractor in the round's split learning (``None``: it can, or the round
        has none, or the site sends no features)."""
        modality = self._modality_of(rnd, self.mspid)
        if not rnd.split_epochs or modality == LABELS:
            return None
        source = self.holdings[modality].source
        if source is None or not source.trainable:
            return (f"the round asks for split learning and its {modality} extractor bundle holds no trainable weights "
                    "(train or export it again)")
        if importlib.util.find_spec("torch") is None:
            return "the round asks for split learning, which needs PyTorch (the 'ml' extra) at this site"
        return None

    def _decline(self, round_id: str, reason: str) -> None:
        """Take no (further) part in the round: vote to abort it with ``reason`` (once)."""
        logger.warning("round %s: %s declines: %s", round_id, self.mspid, reason)
        try:
            self.ledger.abort(round_id, f"{self.site.org_name} declines: {reason}"[:512])
        except LedgerConflict:
            pass  # voted already, or the round has ended
        self.store.finish_action(round_id, "decline", reason)

    # step 1: alignment ---------------------------------------------------------------------------

    def _modality_of(self, rnd: Round, mspid: str) -> str:
        return rnd.roles[mspid][0]

    def declared(self, rnd: Round, mspid: str) -> int:
        """How many entities ``mspid`` declares on-chain for its role in the round (its summary's entity count):
        the most IDs it may align on."""
        modality = self._modality_of(rnd, mspid)
        summary = self.ledger.summary(mspid, modality)
        if summary is None:
            raise SiteError(f"round {rnd.round_id}: {mspid} has published no {modality} summary")
        return summary.entity_count

    def _own_ids(self, rnd: Round) -> list[str]:
        """The IDs this site aligns on: its role's modality (plus labels for the label holder)."""
        modality = self._modality_of(rnd, self.mspid)
        ids = set(self.holdings[modality].manifest.ids)
        if rnd.label_holder == self.mspid and LABELS in self.holdings and modality != LABELS:
            ids &= set(self.holdings[LABELS].manifest.ids)
        return sorted(ids)

    def _context(self, round_id: str) -> str:
        return f"{self.site.task}/{round_id}"

    def leader_session(self, rnd: Round) -> LeaderSession:
        """This leader's alignment session of a round (made on first use, kept in the round's folder)."""
        with self._psi_lock:
            round_id = rnd.round_id
            return LeaderSession.load_or_create(self.site.round_dir(round_id) / "psi-leader.json",
                                                self._context(round_id), self._own_ids(rnd))

    def _lead_alignment(self, rnd: Round) -> None:
        round_id = rnd.round_id
        if self.store.action_done(round_id, "alignment"):
            return
        session = self.leader_session(rnd)
        others = [p for p in rnd.participants if p != self.mspid]
        if not session.complete(others):
            return  # participants contact the leader; each contact pokes the worker
        aligned = session.aligned_ids(others)
        if not aligned:
            raise SiteError(f"round {round_id}: the parties share no entity")
        commitment = session.commitment(aligned)
        if self.ledger.alignment(round_id) is None:
            self.ledger.record_alignment(round_id, len(aligned), commitment)
        self._save_aligned(round_id, aligned, session.salt)
        self.store.save_round(round_id, aligned_count=len(aligned), commitment=commitment)
        self.store.finish_action(round_id, "alignment", f"{len(aligned)} entities")

    def _join_alignment(self, rnd: Round) -> None:
        round_id = rnd.round_id
        if self.store.action_done(round_id, "alignment"):
            return
        leader = self.peer(rnd.leader)
        session = ParticipantSession.load_or_create(self.site.round_dir(round_id) / "psi.json",
                                                    self._context(round_id), self._own_ids(rnd))
        if not session.answered:
            reply = self.link.psi(leader, round_id, session.blinded())
            answer = session.answer(reply["leader"], self.declared(rnd, rnd.leader))
            self.link.psi_confirm(leader, round_id, answer)
            session.save()
        recorded = self.ledger.alignment(round_id)
        if recorded is None:
            return  # the leader has not finished; AlignmentRecorded will bring the worker back
        result = self.link.alignment(leader, round_id)
        aligned = session.aligned_ids(result["positions"])
        salt = bytes.fromhex(result["salt"])
        if commitment_of(salt, aligned) != recorded.commitment_sha256 or len(aligned) != recorded.entity_count:
            raise SiteError(f"round {round_id}: the leader's alignment does not match its on-chain commitment")
        self._save_aligned(round_id, aligned, salt)
        self.store.save_round(round_id, aligned_count=len(aligned), commitment=recorded.commitment_sha256)
        self.store.finish_action(round_id, "alignment", f"{len(aligned)} entities, commitment verified")

    def _save_aligned(self, round_id: str, ids: list[str], salt: bytes) -> None:
        document = {"ids": ids, "salt": salt.hex()}
        write_atomic(self.site.round_dir(round_id) / "aligned.json", json.dumps(document).encode())

    def aligned(self, round_id: str) -> list[str]:
        return json.loads((self.site.round_dir(round_id) / "aligned.json").read_text())["ids"]

    # step 2: shards --------------------------------------------------------------------------------

    def _shards_to_send(self, rnd: Round) -> list[str]:
        kinds = [FEATURES_KIND] if self._modality_of(rnd, self.mspid) != LABELS else []
        if rnd.label_holder == self.mspid:
            kinds.append(LABELS_KIND)
        return kinds

    def _send_shards(self, rnd: Round) -> None:
        round_id = rnd.round_id
        if not self.store.action_done(round_id, "alignment") or self.store.action_done(round_id, "decline"):
            return
        too_many = self.policy.too_many_rows(len(self.aligned(round_id)))
        if too_many is not None:
            self._decline(round_id, too_many)
            return
        for kind in sorted(self._shards_to_send(rnd), key=lambda k: k != LABELS_KIND):  # labels first
            if self.store.action_done(round_id, f"send-{kind}"):
                continue
            if kind == FEATURES_KIND and rnd.split_epochs and not self._split_epochs_sent(rnd):
                return  # the final features follow the last epoch's gradients
            path = self.shard(rnd, kind)
            made = privacy_path(path)
            privacy = ReleasePrivacy.model_validate_json(made.read_bytes()) if made.exists() else None
            try:
                self._send(rnd, kind, path, rnd.leader, privacy)
            except LedgerConflict as exc:
                if OVER_BUDGET not in exc.message:
                    raise
                self._decline(round_id, f"its {kind} would exceed the privacy budget: {exc.message}")
                return

    def _send(self, rnd: Round, kind: str, path: Path, receiver: str, privacy: ReleasePrivacy | None = None) -> None:
        """Record ``path`` as this site's ``kind`` exchange to ``receiver`` (unless it is already, with these bytes)
        and upload it (once: the store's ``send-<kind>`` action). Features name the extractor that made them: the
        bundle the round fine-tuned after split learning, else the installed one."""
        round_id = rnd.round_id
        action = f"send-{kind}" if receiver == rnd.leader else f"send-{kind}-{receiver}"
        if self.store.action_done(round_id, action):
            return
        size, digest = path.stat().st_size, sha256_file(path)
        extractor = None
        if kind == FEATURES_KIND:
            source = self.holding(rnd, self._modality_of(rnd, self.mspid)).source
            assert source is not None, "features come from an extractor"
            extractor = source.sha256
        recorded = self.ledger.exchange(round_id, self.mspid, receiver, kind)
        if recorded is None:
            self.ledger.record_exchange(round_id, receiver, kind, digest, size, len(self.aligned(round_id)), privacy,
                                        extractor)
        elif (recorded.sha256, recorded.bytes) != (digest, size) or \
                recorded.extractor_onnx_sha256 not in (None, extractor):  # none: recorded before extractors were
            raise SiteError(f"round {round_id}: the {kind} recorded on-chain differ from the local file or its "
                            f"extractor")
        self.link.upload(self.peer(receiver), round_id, kind, path)
        self.store.finish_action(round_id, action, f"{size} bytes, sha256 {digest}")

    def shard(self, rnd: Round, kind: str) -> Path:
        """This site's file of ``kind`` for the round's aligned rows (made once, then reused): the features are
        a DP release when the round's terms make them one, unless this site leads (it sends nothing then)."""
        round_id = rnd.round_id
        path = self.site.round_dir(round_id) / f"{kind}.npy" if kind == FEATURES_KIND else \
            self.site.round_dir(round_id) / f"{kind}.npz"
        if path.exists():
            return path
        ids = self.aligned(round_id)
        if kind == FEATURES_KIND:
            modality = self._modality_of(rnd, self.mspid)
            holding = self.holding(rnd, modality)
            assert holding.source is not None, "a features shard needs an extractor"
            private = self.privacy_terms(rnd)
            if private is not None and kind in private.kinds and rnd.leader != self.mspid:
                summary = self.ledger.summary(self.mspid, modality)
                if summary is None:
                    raise SiteError(f"round {round_id}: {self.mspid} has published no {modality} summary")
                write_release(path, holding, ids, private, summary.manifest_sha256, self.site.folder / "releases")
            else:
                write_features(path, holding, ids)
        else:
            write_labels(path, self.holdings[LABELS].manifest, ids)
        return path

    def privacy_terms(self, rnd: Round) -> PrivacyTerms | None:
        """The differential privacy the round's agreement asks of releases (``None``: none)."""
        terms = self.ledger.round_terms(rnd)
        return terms.privacy if terms is not None else None

    # step 2b: split learning of the extractors (rounds with split epochs) ---------------------------------

    def holding(self, rnd: Round, modality: str) -> Holding:
        """What the site uses for ``modality`` in the round: its own holding, with, after split learning, the
        extractor the round fine-tuned (exported once into the round's ``extractor/`` folder)."""
        if not rnd.split_epochs or modality == LABELS:
            return self.holdings[modality]
        found = self._tuned.get(rnd.round_id)
        if found is None:
            from swarmfuse.extractors.bundle import load_bundle
            from swarmfuse.extractors.data.cache import atomic_dir

            folder = self.site.round_dir(rnd.round_id) / "extractor"
            if not (folder / "bundle.json").is_file():
                if not (self._split_dir(rnd) / f"top.{rnd.split_epochs}.pt").is_file():
                    raise SiteError(f"round {rnd.round_id}: split learning has not finished at {self.mspid}")
                trainable = self._trainable(rnd)
                with atomic_dir(folder) as scratch:
                    trainable.export(scratch, f"{trainable.bundle.source} fine-tuned by split learning in round "
                                              f"{rnd.round_id} of {self.site.task}", round_id=rnd.round_id)
                    make_private(scratch)  # a round's artefacts are the site's alone
            found = Holding(modality, self.holdings[modality].manifest, BundleSource(load_bundle(folder)))
            self._tuned[rnd.round_id] = found
        return found

    def _split_dir(self, rnd: Round) -> Path:
        return self.site.round_dir(rnd.round_id) / "split"

    def _trainable(self, rnd: Round) -> TrainableExtractor:
        """This site's extractor as split learning trains it over the round's aligned rows (resumed from the last
        epoch whose gradients it applied)."""
        found = self._trainables.get(rnd.round_id)
        if found is None:
            from swarmfuse.extractors.split.site import TrainableExtractor

            holding = self.holdings[self._modality_of(rnd, self.mspid)]
            assert holding.source is not None, "split learning fine-tunes a feature site's extractor"
            manifest = holding.manifest
            found = TrainableExtractor(holding.source.folder, [manifest.row(i).value for i in self.aligned(rnd.round_id)],
                                       manifest.path.parent)
            done = [e for e in range(rnd.split_epochs, 0, -1) if (self._split_dir(rnd) / f"top.{e}.pt").is_file()]
            if done:
                found.load(self._split_dir(rnd) / f"top.{done[0]}.pt")
            self._trainables[rnd.round_id] = found
        return found

    def _epoch_features(self, rnd: Round, epoch: int) -> Path:
        """This site's features of the round's rows before it applies epoch ``epoch``'s gradients (made once)."""
        path = self._split_dir(rnd) / f"{epoch_kind(FEATURES_KIND, epoch)}.npy"
        if not path.is_file():
            buffer = io.BytesIO()
            np.save(buffer, self._trainable(rnd).features(), allow_pickle=False)
            write_atomic(path, buffer.getvalue())
        return path

    def _apply_gradients(self, rnd: Round, epoch: int, gradients: Path) -> None:
        """Move the trainable top along epoch ``epoch``'s gradients and keep it as ``top.<epoch>.pt`` (once)."""
        tuned = self._split_dir(rnd) / f"top.{epoch}.pt"
        if tuned.is_file():
            return
        trainable = self._trainable(rnd)
        trainable.step(read_gradients(gradients), epoch=epoch)  # GradientError: the file is malformed, nothing moved
        trainable.save(tuned)
        self.store.finish_action(rnd.round_id, f"apply-{epoch_kind(GRADIENTS_KIND, epoch)}", f"top of epoch {epoch} kept")

    def _inbound(self, rnd: Round, sender: str, kind: str) -> Path | None:
        """The verified file of ``kind`` ``sender`` sent this site (re-hashed), ``None`` while it has not come."""
        record = self.store.verified_artefact(rnd.round_id, kind=kind, direction="in", peer_org=sender)
        if record is None:
            return None
        path = Path(record.path)
        if sha256_file(path) != record.sha256:
            raise SiteError(f"round {rnd.round_id}: the {kind} file of {sender} no longer has the SHA-256 the ledger "
                            f"records ({record.sha256})")
        return path

    def _split_epochs_sent(self, rnd: Round) -> bool:
        """A feature site's epochs: send its features, apply the leader's gradients, in turn; True once all are
        applied (its final features may then go)."""
        for epoch in range(1, rnd.split_epochs + 1):
            self._send(rnd, epoch_kind(FEATURES_KIND, epoch), self._epoch_features(rnd, epoch), rnd.leader)
            if not (self._split_dir(rnd) / f"top.{epoch}.pt").is_file():
                gradients = self._inbound(rnd, rnd.leader, epoch_kind(GRADIENTS_KIND, epoch))
                if gradients is None:
                    return False  # their arrival pokes the worker
                try:
                    self._apply_gradients(rnd, epoch, gradients)
                except GradientError as exc:  # the recorded file itself is malformed: no resend can mend it
                    self._decline(rnd.round_id, f"the leader's {epoch_kind(GRADIENTS_KIND, epoch)} cannot be applied: "
                                                f"{exc}")
                    return False
        return True

    def _split_led(self, rnd: Round) -> bool:
        """The leader's epochs: once every feature site's features of an epoch are in, train the heads a pass and
        send each site its gradients (its own block it applies itself); True when the round has no (more) epochs."""
        round_id = rnd.round_id
        if not rnd.split_epochs:
            return True
        if not self.store.action_done(round_id, "alignment"):
            return False
        from swarmfuse.extractors.split.leader import SplitLeader

        labels = self.shard(rnd, LABELS_KIND) if rnd.label_holder == self.mspid \
            else self._inbound(rnd, rnd.label_holder, LABELS_KIND)
        if labels is None:
            return False
        y, classes, split = load_labels(labels)
        sites = [p for p in sorted(rnd.participants) if self._modality_of(rnd, p) != LABELS]
        folder = self._split_dir(rnd)
        for epoch in range(1, rnd.split_epochs + 1):
            kind = epoch_kind(GRADIENTS_KIND, epoch)
            outputs = {org: folder / f"{kind}.{org}.npy" for org in sites}
            state = folder / f"leader.{epoch}.pt"
            if not (state.is_file() and all(path.is_file() for path in outputs.values())):
                blocks = []
                for org in sites:
                    path = self._epoch_features(rnd, epoch) if org == self.mspid \
                        else self._inbound(rnd, org, epoch_kind(FEATURES_KIND, epoch))
                    if path is None:
                        return False  # each arrival pokes the worker
                    blocks.append(np.load(path, allow_pickle=False))
                leader = SplitLeader([b.shape[1] for b in blocks], len(classes))
                if epoch > 1:
                    leader.load(folder / f"leader.{epoch - 1}.pt")
                for org, gradients in zip(sites, leader.epoch(blocks, y, split == "train"), strict=True):
                    buffer = io.BytesIO()
                    np.save(buffer, gradients, allow_pickle=False)
                    write_atomic(outputs[org], buffer.getvalue())
                leader.save(state)
            for org in sites:
                if org == self.mspid:
                    self._apply_gradients(rnd, epoch, outputs[org])
                else:
                    self._send(rnd, kind, outputs[org], org)
        return True

    # step 3: fusion (leader) -----------------------------------------------------------------------

    def expected_inbound(self, rnd: Round) -> list[tuple[str, str]]:
        """(sender, kind) of every file the leader must receive."""
        expected = [(p, FEATURES_KIND) for p in rnd.participants
                    if p != self.mspid and self._modality_of(rnd, p) != LABELS]
        if rnd.label_holder != self.mspid:
            expected.append((rnd.label_holder, LABELS_KIND))
        return expected

    def _try_fuse(self, rnd: Round) -> None:
        round_id = rnd.round_id
        if not self.store.action_done(round_id, "alignment") or self.store.action_done(round_id, "fuse"):
            return
        inbound = {}
        for sender, kind in self.expected_inbound(rnd):
            record = self.store.verified_artefact(round_id, kind=kind, direction="in", peer_org=sender)
            if record is None:
                return  # not all in yet; each verified arrival pokes the worker
            inbound[(sender, kind)] = Path(record.path)
            if sha256_file(inbound[(sender, kind)]) != record.sha256:  # changed on disk since it was verified
                raise SiteError(f"round {round_id}: the {kind} file of {sender} no longer has the SHA-256 the "
                                f"ledger records ({record.sha256}); it is not fused")
        model_path = self.site.round_dir(round_id) / "model.npz"
        published = self.site.round_dir(round_id) / "published.json"
        if not model_path.exists() or not published.exists():
            terms = self.ledger.round_terms(rnd)
            blocks = [FeatureBlock(mspid, self._modality_of(rnd, mspid),
                                   self.shard(rnd, FEATURES_KIND) if mspid == self.mspid
                                   else inbound[(mspid, FEATURES_KIND)])
                      for mspid in sorted(rnd.participants) if self._modality_of(rnd, mspid) != LABELS]
            labels = self.shard(rnd, LABELS_KIND) if rnd.label_holder == self.mspid \
                else inbound[(rnd.label_holder, LABELS_KIND)]
            fused = fuse_round(round_id, blocks, labels, terms.reward if terms is not None else None)
            table = fused.contributions.model_dump(mode="json") if fused.contributions is not None else None
            write_atomic(published, json.dumps({"metrics": fused.metrics, "contributions": table}).encode())
            write_atomic(model_path, fused.model)
        self._record_own_extractor(rnd)
        record = json.loads(published.read_text())
        digest = sha256_file(model_path)
        try:
            self.ledger.mark_fused(round_id, digest, model_path.stat().st_size, record["metrics"],
                                   self.acknowledgement_deadline(rnd),
                                   ContributionTable.model_validate(record["contributions"])
                                   if record["contributions"] is not None else None)
        except LedgerConflict:
            if self.ledger.round(round_id).model_sha256 != digest:
                raise
        self.store.finish_action(round_id, "fuse", f"model sha256 {digest}")

    def _record_own_extractor(self, rnd: Round) -> None:
        """A leader that is a feature site of a split-learning round records the extractor the round fine-tuned here
        (the others name theirs on their final features; its own are fused, never sent), once, before the model."""
        round_id, modality = rnd.round_id, self._modality_of(rnd, self.mspid)
        if not rnd.split_epochs or modality == LABELS or self.store.action_done(round_id, "record-extractor"):
            return
        source = self.holding(rnd, modality).source
        assert source is not None, "a feature site's features come from an extractor"
        recorded = self.ledger.leader_extractor(round_id)
        if recorded is None:
            self.ledger.record_leader_extractor(round_id, source.sha256)
        elif recorded.extractor_onnx_sha256 != source.sha256:
            raise SiteError(f"round {round_id}: the extractor recorded on-chain as {self.mspid}'s differs from the one "
                            f"the round fine-tuned here")
        self.store.finish_action(round_id, "record-extractor", f"extractor onnx sha256 {source.sha256}")

    def acknowledgement_deadline(self, rnd: Round) -> datetime:
        """The participants' fresh window to acknowledge the model: as long as the round was given when it
        opened, and at least the task's deadline window plus a minute for the transaction to reach the
        endorsers."""
        span = rnd.deadline - rnd.opened_at
        return datetime.now(UTC) + max(span, self.ledger.deadline_window() + timedelta(minutes=1))

    # step 4: the model -----------------------------------------------------------------------------

    def model_path(self, round_id: str) -> Path:
        return self.site.round_dir(round_id) / "model.npz"

    def _take_model(self, rnd: Round) -> bool:
        """Fetch, verify and acknowledge the model (once); True when this call acknowledged it."""
        round_id = rnd.round_id
        if self.store.action_done(round_id, "acknowledge"):
            return False
        path = self.model_path(round_id)
        if rnd.leader != self.mspid and not self.store.verified_artefact(
                round_id, kind=MODEL_KIND, direction="in", peer_org=rnd.leader):
            self.link.download(self.peer(rnd.leader), round_id, MODEL_KIND, path, rnd.model_bytes)
        digest = sha256_file(path)
        if digest != rnd.model_sha256:
            path.unlink(missing_ok=True)
            raise SiteError(f"round {round_id}: the model file's SHA-256 {digest} is not the one on the ledger")
        if rnd.leader != self.mspid and not self.store.verified_artefact(
                round_id, kind=MODEL_KIND, direction="in", peer_org=rnd.leader):
            self.store.add_artefact(round_id, kind=MODEL_KIND, direction="in", peer_org=rnd.leader, sha256=digest,
                                    size=path.stat().st_size, path=str(path), status="verified")
        if self.mspid not in rnd.acknowledgements:
            try:
                self.ledger.acknowledge(round_id, digest, rnd.contribution_sha256)
            except LedgerConflict:
                pass  # acknowledged already (the hashes were checked against the round above)
        self.store.finish_action(round_id, "acknowledge", f"model sha256 {digest}")
        return True

    def _try_close(self, rnd: Round) -> None:
        if set(rnd.acknowledgements) >= set(rnd.participants):
            try:
                self.ledger.close(rnd.round_id)
            except (LedgerConflict, MVCCReadConflictError):
                if self.ledger.round(rnd.round_id).state != "closed":
                    raise
                # another participant closed it first (or in the same block)

    # --- status -------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the site holds and is doing, from its store."""
        return {
            "org": self.site.org_name, "mspid": self.mspid, "task": self.site.task, "url": self.site.url,
            "datasets": [{"modality": d.modality.value, "entities": d.entity_count, "feature_dim": d.feature_dim,
                          "fingerprint": d.fingerprint} for d in self.store.datasets()],
            "rounds": [{"round": r.round_id, "state": r.state, "role": r.role, "leader": r.leader,
                        "aligned": r.aligned_count} for r in self.store.rounds()],
            "actions": [{"round": a.round_id, "action": a.action, "status": a.status.value, "detail": a.detail}
                        for a in self.store.actions()],
        }

    # --- peers ------------------------------------------------------------------------------------

    def features_for(self, round_id: str, modality: str, ids: list[str]) -> Any:
        """Features of ``ids`` from this site's extractor, for scoring with the round's model."""
        private = self.privacy_terms(self.ledger.round(round_id))
        if private is not None and FEATURES_KIND in private.kinds:
            raise SiteError(f"round {round_id}'s features were DP releases: scoring replies would be releases its "
                            "privacy budget does not account for, so this site sends none")
        holding = self.holdings.get(modality)
        if holding is None or holding.source is None:
            raise SiteError(f"{self.mspid} holds no {modality} data with an extractor")
        holding = self.holding(self.ledger.round(round_id), modality)
        missing = [entity for entity in ids if entity not in holding.manifest]
        if missing:
            raise SiteError(f"{self.mspid} holds no {modality} for {len(missing)} of the entities, e.g. {missing[0]!r}")
        values = [holding.manifest.row(entity).value for entity in ids]
        return holding.source.extract(values, holding.manifest.path.parent)

    def peer(self, mspid: str) -> Peer:
        """``mspid``'s site as its member record describes it: where it listens and its TLS certificate's hash
        (read again whenever the record changes: each lookup costs one ledger query)."""
        member = self.ledger.member(mspid)
        if member is None:
            raise SiteError(f"{mspid} is not registered: its endpoint is unknown")
        return Peer(mspid, f"https://{member.endpoint.removeprefix('https://')}", member.tls_fingerprint)
