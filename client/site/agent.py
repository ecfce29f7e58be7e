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
   exchange on-chain (SHA-256, size, rows) and sends the file to the leader.
3. The leader accepts a file only when it matches its on-chain record; once every file is in, it
   trains the intermediate-fusion head on the concatenated features and records the model's hash with,
   under an agreement, the contribution table (``Rounds:MarkFused``).
4. ``ModelFused``: every participant downloads the model, checks its hash against the ledger and
   acknowledges it and the contribution table's hash; the participant that acknowledges last closes the
   round (which credits each participant's units).

Every step is an idempotent action in the store (and checked against the ledger before a submit), and
the event stream's checkpoint is in the store, so an agent killed at any point resumes with nothing
lost and nothing done twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from swarmfuse.chaincode.contracts.records import (
    ContributionTable,
    Member,
    MemberStatus,
    PrivacyTerms,
    ReleasePrivacy,
    Round,
    Summary,
)
from swarmfuse.client.gateway import ChaincodeEvent
from swarmfuse.client.site.alignment import LeaderSession, ParticipantSession, commitment_of
from swarmfuse.client.ledger import LedgerConflict, TaskLedger
from swarmfuse.client.site.manifest import Manifest
from swarmfuse.client.site.link import Peer
from swarmfuse.client.site.policy import SitePolicy, load_policy
from swarmfuse.client.site.fusion import FeatureBlock, fuse_round
from swarmfuse.client.site.shards import privacy_path, write_features, write_labels, write_release
from swarmfuse.client.site.site import Site, SiteError
from swarmfuse.client.site.store import SqlCheckpointer, Store
from swarmfuse.extractors.data.cache import sha256_file
from swarmfuse.files import write_atomic

logger = logging.getLogger(__name__)

LABELS = "label"
FEATURES_KIND = "features"
LABELS_KIND = "labels"
MODEL_KIND = "model"
OVER_BUDGET = "above the agreed budget"
"""What the chaincode says of a release past the sender's privacy budget (``Rounds:RecordExchange``)."""


class FeatureSource(Protocol):
    """A site's extractor for one modality (an ONNX bundle): its file hash, width and ``extract``."""

    sha256: str
    feature_dim: int
    backbone: str

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
        if holding.source is not None:
            feature_dim, extractor, extractor_sha = holding.source.feature_dim, holding.source.backbone, \
                holding.source.sha256
            labels = None
        else:  # labels: the class list stands for the extractor
            classes = sorted({row.value for row in manifest.rows})
            feature_dim, extractor = len(classes), "labels"
            extractor_sha = hashlib.sha256(json.dumps(classes).encode()).hexdigest()
            labels = classes[:64]
        summary = {
            "modality": modality, "entity_count": len(manifest.rows), "feature_dim": feature_dim,
            "manifest_sha256": manifest.fingerprint(), "entity_commitment": manifest.entity_commitment(salt),
            "extractor": extractor, "extractor_onnx_sha256": extractor_sha, "labels": labels,
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
        checkpointer = SqlCheckpointer(self.store, self.ledger.task, "swarmfuse")
        while not stop.is_set():
            start = None if checkpointer.position.block_number is not None else 0
            events = self.ledger.events(checkpointer, start_block=start)
            closer = threading.Thread(target=lambda: (stop.wait(), events.close()), daemon=True)
            closer.start()
            try:
                for event in events:
                    self._on_event(event)
            except Exception as exc:  # a broken stream (engine restart, network): reopen from the checkpoint
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
        site's join to nobody (each participant joins before it aligns), and an acknowledgement to nobody (the
        site that acknowledges last closes the round)."""
        return name not in ("ExchangeRecorded", "RoundJoined", "Acknowledged")

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
                self._try_fuse(rnd)
            else:
                self._join_alignment(rnd)
                self._send_shards(rnd)
        elif rnd.state == "fused":
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
        reason = self.policy.refusal(rnd, self.mspid) or self._outside_terms(rnd)
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
        for kind in self._shards_to_send(rnd):
            action = f"send-{kind}"
            if self.store.action_done(round_id, action):
                continue
            path = self.shard(rnd, kind)
            size, digest = path.stat().st_size, sha256_file(path)
            recorded = self.ledger.exchange(round_id, self.mspid, rnd.leader, kind)
            if recorded is None:
                made = privacy_path(path)
                privacy = ReleasePrivacy.model_validate_json(made.read_bytes()) if made.exists() else None
                try:
                    self.ledger.record_exchange(round_id, rnd.leader, kind, digest, size,
                                                len(self.aligned(round_id)), privacy)
                except LedgerConflict as exc:
                    if OVER_BUDGET not in exc.message:
                        raise
                    self._decline(round_id, f"its {kind} would exceed the privacy budget: {exc.message}")
                    return
            elif (recorded.sha256, recorded.bytes) != (digest, size):
                raise SiteError(f"round {round_id}: the {kind} recorded on-chain differ from the local file")
            self.link.upload(self.peer(rnd.leader), round_id, kind, path)
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
            holding = self.holdings[modality]
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
            except LedgerConflict:
                pass  # another participant closed it first

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
