"""The trust store: a directory of roots by kind, and the charger's own chains and keys.

Rules of this module:

- Layout (``STORE`` is the directory given to :class:`TrustStore`)::

      STORE/current -> snapshots/00000007      symlink, swapped atomically
      STORE/snapshots/00000007/roots/{v2g,mo,oem,csms}/<sha256>.pem
      STORE/snapshots/00000007/{secc,charging-station}/chain.pem, key.pem
                                                 .../previous/chain.pem, key.pem
                                                 .../pending.key
                                                 .../ocsp/<sha256>.der   OCSP responses for
                                                     the chain's certificates (by fingerprint)
      STORE/.lock                                writers hold an exclusive flock

- Snapshots are never modified. A change builds the next snapshot (hard links to the
  unchanged files, new files written and fsynced), renames it into place, fsyncs, and only
  then swaps ``current`` with a rename. Readers resolve ``current`` once and read one
  snapshot, so they see the store before or after a change, never half of one, even when
  the change touches several files (a chain and its key). A crash before the swap leaves
  the old snapshot current.
- Reading is cheap: :meth:`TrustStore.snapshot` costs one ``readlink`` when nothing
  changed; a change made by another process (the CLI) is seen on the next call.
- The last few snapshots are kept so that a reader still loading an old one can finish;
  a reader that loses the race retries on the new one.
- Key files are created with mode 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from pnc_bridge.pki._certio import (
    PkiInputError,
    atomic_write,
    cert_der,
    chain_pem,
    fsync_dir,
    key_pem,
    load_certificates,
    load_private_key,
    public_key_der,
)
from pnc_bridge.pki._profiles import ANCHORS, Purpose, RootKind
from pnc_bridge.pki._validate import Anchors

SNAPSHOTS_KEPT = 4
_LOAD_RETRIES = 20


class StoreError(Exception):
    """The trust store cannot do what was asked; the message says why, in admin terms."""


class LeafSlot(StrEnum):
    """The charger's own certificates, named after OCPP's ``CertificateSigningUseEnumType``."""

    SECC = "secc"  # V2GCertificate: TLS server towards the EV
    #: ISO 15118-20's V2GCertificate (P-521 / Ed448, TLS 1.3), next to the -2 one (P-256,
    #: TLS 1.2), so one TLS port serves EVs of both generations
    SECC20 = "secc20"
    CHARGING_STATION = "charging-station"  # ChargingStationCertificate: TLS client towards the CSMS


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, lower-case hex (what ``openssl x509 -fingerprint
    -sha256`` prints, without the colons)."""
    return hashlib.sha256(cert_der(cert)).hexdigest()


@dataclass(frozen=True)
class RootEntry:
    kind: RootKind
    certificate: x509.Certificate = field(repr=False)
    fingerprint: str
    path: Path


@dataclass(frozen=True)
class LeafEntry:
    slot: LeafSlot
    chain: tuple[x509.Certificate, ...] = field(repr=False)
    key: PrivateKeyTypes = field(repr=False)
    chain_path: Path
    key_path: Path

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]


class Snapshot:
    """One immutable state of the store."""

    def __init__(
        self,
        generation: int,
        path: Path,
        roots: tuple[RootEntry, ...],
        leaves: dict[LeafSlot, LeafEntry],
        previous: dict[LeafSlot, LeafEntry],
        pending_keys: dict[LeafSlot, PrivateKeyTypes],
        ocsp: dict[LeafSlot, dict[str, bytes]] | None = None,
    ) -> None:
        self.generation = generation
        self.path = path
        self.roots = roots
        self.leaves = leaves
        self.previous = previous
        self.pending_keys = pending_keys
        #: DER OCSP responses about the certificates of a slot's chain, by certificate fingerprint
        self.ocsp = ocsp or {}
        self._anchors: dict[Purpose, Anchors] = {}
        self._lock = threading.Lock()

    def ocsp_response(self, slot: LeafSlot | str, cert: x509.Certificate) -> bytes | None:
        """The stored OCSP response about ``cert`` (a certificate of ``slot``'s chain), if any."""
        return self.ocsp.get(LeafSlot(slot), {}).get(fingerprint(cert))

    def roots_of(self, kind: RootKind | str) -> list[x509.Certificate]:
        kind = RootKind(kind)
        return [r.certificate for r in self.roots if r.kind is kind]

    def anchors_for(self, purpose: Purpose) -> Anchors:
        """The roots that anchor ``purpose``, indexed once per snapshot."""
        purpose = Purpose(purpose)
        anchors = self._anchors.get(purpose)
        if anchors is None:
            with self._lock:
                anchors = self._anchors.get(purpose)
                if anchors is None:
                    kinds = ANCHORS[purpose]
                    anchors = Anchors(r.certificate for r in self.roots if r.kind in kinds)
                    self._anchors[purpose] = anchors
        return anchors


def _read_leaf(slot: LeafSlot, directory: Path) -> LeafEntry | None:
    chain_path, key_path = directory / "chain.pem", directory / "key.pem"
    if not chain_path.exists():
        return None
    chain = tuple(load_certificates(chain_path.read_bytes(), source=str(chain_path)))
    key = load_private_key(key_path.read_bytes(), source=str(key_path))
    return LeafEntry(slot, chain, key, chain_path, key_path)


def _load_snapshot(path: Path) -> Snapshot:
    generation = int(path.name)
    roots: list[RootEntry] = []
    for kind in RootKind:
        kind_dir = path / "roots" / kind.value
        if not kind_dir.is_dir():
            continue
        for file in sorted(kind_dir.glob("*.pem")):
            for cert in load_certificates(file.read_bytes(), source=str(file)):
                roots.append(RootEntry(kind, cert, fingerprint(cert), file))
    leaves: dict[LeafSlot, LeafEntry] = {}
    previous: dict[LeafSlot, LeafEntry] = {}
    pending: dict[LeafSlot, PrivateKeyTypes] = {}
    ocsp: dict[LeafSlot, dict[str, bytes]] = {}
    for slot in LeafSlot:
        slot_dir = path / slot.value
        if (entry := _read_leaf(slot, slot_dir)) is not None:
            leaves[slot] = entry
        if (entry := _read_leaf(slot, slot_dir / "previous")) is not None:
            previous[slot] = entry
        pending_path = slot_dir / "pending.key"
        if pending_path.exists():
            pending[slot] = load_private_key(pending_path.read_bytes(), source=str(pending_path))
        ocsp_dir = slot_dir / "ocsp"
        if ocsp_dir.is_dir():
            ocsp[slot] = {file.stem: file.read_bytes() for file in sorted(ocsp_dir.glob("*.der"))}
    return Snapshot(generation, path, tuple(roots), leaves, previous, pending, ocsp)


class _Draft:
    """The next snapshot while a writer builds it (a private directory until committed)."""

    def __init__(self, path: Path, base: Snapshot | None) -> None:
        self.path = path
        self.base = base

    def write(self, relative: str, data: bytes, *, mode: int = 0o644) -> None:
        target = self.path / relative
        if target.exists():
            target.unlink()  # a hard link to the previous snapshot's file: never write through it
        atomic_write(target, data, mode=mode)

    def remove(self, relative: str) -> None:
        target = self.path / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()

    def move(self, source: str, destination: str) -> None:
        src, dst = self.path / source, self.path / destination
        if dst.exists():
            dst.unlink()
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)


class TrustStore:
    """A trust-store directory. Cheap to read from any thread; safe to change from the CLI
    while the service reads it. Create one with :meth:`init` (``pnc-bridge pki store init``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._cache: Snapshot | None = None
        self._cache_target: str | None = None
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- reading

    @classmethod
    def init(cls, path: str | os.PathLike[str]) -> TrustStore:
        """Create an empty store at ``path`` (idempotent: an existing store is kept)."""
        store = cls(path)
        store.path.mkdir(parents=True, exist_ok=True)
        if store._current_link().is_symlink():
            return store
        if any(store.path.iterdir()):
            entries = {p.name for p in store.path.iterdir()}
            if not entries <= {".lock", "snapshots"}:
                raise StoreError(f"{store.path} is not empty and not a trust store")
        with store._writing() as draft:
            for kind in RootKind:
                (draft.path / "roots" / kind.value).mkdir(parents=True, exist_ok=True)
        return store

    def exists(self) -> bool:
        return self._current_link().is_symlink()

    def _current_link(self) -> Path:
        return self.path / "current"

    def snapshot(self) -> Snapshot:
        """The current state; re-read only when another writer has changed it."""
        for _ in range(_LOAD_RETRIES):
            try:
                target = os.readlink(self._current_link())
            except FileNotFoundError:
                raise StoreError(
                    f"{self.path} is not a trust store (create it with: pnc-bridge pki store init --store {self.path})"
                ) from None
            cached = self._cache
            if cached is not None and self._cache_target == target:
                return cached
            try:
                snapshot = _load_snapshot(self.path / target)
            except (FileNotFoundError, NotADirectoryError):
                continue  # pruned under us by a writer; the link has moved on
            except PkiInputError as exc:
                raise StoreError(f"damaged trust store: {exc}") from None
            with self._lock:
                self._cache, self._cache_target = snapshot, target
            return snapshot
        raise StoreError(f"{self.path}: the store changed {_LOAD_RETRIES} times while being read")

    @property
    def generation(self) -> int:
        return self.snapshot().generation

    def anchors_for(self, purpose: Purpose) -> Anchors:
        return self.snapshot().anchors_for(purpose)

    def roots(self, kind: RootKind | str | None = None) -> list[RootEntry]:
        roots = self.snapshot().roots
        return list(roots) if kind is None else [r for r in roots if r.kind is RootKind(kind)]

    def leaf(self, slot: LeafSlot | str) -> LeafEntry | None:
        return self.snapshot().leaves.get(LeafSlot(slot))

    # ----------------------------------------------------------------- writing

    @contextlib.contextmanager
    def _writing(self) -> Iterator[_Draft]:
        """Build the next snapshot under the writer lock and make it current on success."""
        self.path.mkdir(parents=True, exist_ok=True)
        snapshots = self.path / "snapshots"
        snapshots.mkdir(exist_ok=True)
        lock_fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            # Holding the lock, no other writer is active: whatever a crashed writer left
            # (a draft snapshot, a temporary link) is garbage. Readers never look at it.
            for leftover in snapshots.glob(".draft-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            for leftover in self.path.glob(".current-*"):
                leftover.unlink(missing_ok=True)
            base = self.snapshot() if self.exists() else None
            generation = (base.generation if base else 0) + 1
            draft_path = snapshots / f".draft-{generation:08d}-{os.getpid()}"
            if base is not None:
                shutil.copytree(base.path, draft_path, copy_function=os.link)
            else:
                draft_path.mkdir()
            draft = _Draft(draft_path, base)
            try:
                yield draft
                self._commit(draft_path, generation)
            except BaseException:
                shutil.rmtree(draft_path, ignore_errors=True)
                raise
        finally:
            os.close(lock_fd)  # releases the flock

    def _commit(self, draft_path: Path, generation: int) -> None:
        for directory, _dirs, _files in os.walk(draft_path):
            fsync_dir(directory)
        final = draft_path.parent / f"{generation:08d}"
        os.rename(draft_path, final)
        fsync_dir(final.parent)
        link_tmp = self.path / f".current-{os.getpid()}"
        os.symlink(os.path.join("snapshots", final.name), link_tmp)
        os.replace(link_tmp, self._current_link())
        fsync_dir(self.path)
        self._prune(final.parent)

    def _prune(self, snapshots: Path) -> None:
        names = sorted(p.name for p in snapshots.iterdir() if p.name.isdigit())
        for name in names[:-SNAPSHOTS_KEPT]:
            shutil.rmtree(snapshots / name, ignore_errors=True)

    def add_roots(
        self, kind: RootKind | str, certificates: Iterable[x509.Certificate]
    ) -> tuple[list[RootEntry], list[RootEntry]]:
        """Add root certificates of ``kind``. Returns ``(added, already_present)``.

        Raises :class:`StoreError` if one is not a self-signed CA certificate; nothing is
        added then (a bundle goes in whole or not at all).
        """
        kind = RootKind(kind)
        certs = list(certificates)
        if not certs:
            raise StoreError("no certificate given")
        for cert in certs:
            _check_root(cert)
        added: list[RootEntry] = []
        present: list[RootEntry] = []
        with self._writing() as draft:
            existing = {r.fingerprint for r in (draft.base.roots if draft.base else ()) if r.kind is kind}
            for cert in certs:
                fp = fingerprint(cert)
                relative = f"roots/{kind.value}/{fp}.pem"
                entry = RootEntry(kind, cert, fp, self._current_link() / relative)
                if fp in existing:
                    present.append(entry)
                    continue
                existing.add(fp)
                draft.write(relative, chain_pem([cert]))
                added.append(entry)
        return added, present

    def remove_roots(self, selector: str, kind: RootKind | str | None = None) -> list[RootEntry]:
        """Remove the roots whose SHA-256 fingerprint starts with ``selector`` (at least 8
        hex digits, colons allowed), optionally only of ``kind``. Returns what was removed."""
        wanted = selector.replace(":", "").lower()
        if len(wanted) < 8 or any(c not in "0123456789abcdef" for c in wanted):
            raise StoreError("give at least 8 hex digits of the SHA-256 fingerprint (see: pki store list)")
        kind_v = RootKind(kind) if kind is not None else None
        with self._writing() as draft:
            base_roots = draft.base.roots if draft.base else ()
            matches = [
                r for r in base_roots if r.fingerprint.startswith(wanted) and (kind_v is None or r.kind is kind_v)
            ]
            if not matches:
                raise StoreError(f"no root with fingerprint {selector} in the store")
            if len({r.fingerprint for r in matches}) > 1:
                raise StoreError(f"fingerprint prefix {selector} matches several roots; give more digits")
            for r in matches:
                draft.remove(f"roots/{r.kind.value}/{r.fingerprint}.pem")
        return matches

    def set_pending_key(self, slot: LeafSlot | str, key: PrivateKeyTypes) -> None:
        """Keep the key of an outstanding CSR until its certificate is installed."""
        slot = LeafSlot(slot)
        with self._writing() as draft:
            draft.write(f"{slot.value}/pending.key", key_pem(key), mode=0o600)

    def install_leaf(
        self, slot: LeafSlot | str, chain: Iterable[x509.Certificate], key: PrivateKeyTypes
    ) -> LeafEntry:
        """Make ``chain`` (leaf first) and ``key`` the slot's certificate, in one step.

        The one in place before moves to ``previous/``; a pending key that the new leaf
        uses is consumed. Checking the chain is the caller's job (see ``install_signed``).
        """
        slot = LeafSlot(slot)
        chain = tuple(chain)
        with self._writing() as draft:
            base_dir = draft.path / slot.value
            if (base_dir / "chain.pem").exists():
                draft.remove(f"{slot.value}/previous")
                draft.move(f"{slot.value}/chain.pem", f"{slot.value}/previous/chain.pem")
                draft.move(f"{slot.value}/key.pem", f"{slot.value}/previous/key.pem")
            draft.write(f"{slot.value}/chain.pem", chain_pem(chain))
            draft.write(f"{slot.value}/key.pem", key_pem(key), mode=0o600)
            draft.remove(f"{slot.value}/ocsp")  # about the old chain; the new one is asked for anew
            pending = draft.base.pending_keys.get(slot) if draft.base else None
            if pending is not None and _same_key(pending, key):
                draft.remove(f"{slot.value}/pending.key")
        link = self._current_link() / slot.value
        return LeafEntry(slot, chain, key, link / "chain.pem", link / "key.pem")

    def set_ocsp_responses(self, slot: LeafSlot | str, responses: dict[x509.Certificate, bytes]) -> None:
        """Store OCSP responses (DER) about certificates of ``slot``'s chain, in one step
        (OCPP M06: the V2G chain's status from the CSMS, stapled in the EV's TLS handshake).
        Checking them is the caller's job; a response for a certificate not in the chain is
        refused."""
        slot = LeafSlot(slot)
        if not responses:
            return
        with self._writing() as draft:
            leaf = draft.base.leaves.get(slot) if draft.base else None
            chain = {fingerprint(c) for c in leaf.chain} if leaf is not None else set()
            for cert, der in responses.items():
                name = fingerprint(cert)
                if name not in chain:
                    raise StoreError(f"{cert.subject.rfc4514_string()} is not in the {slot.value} chain")
                draft.write(f"{slot.value}/ocsp/{name}.der", der)

    def mutate(self, change: Callable[[_Draft], None]) -> None:
        """Apply a custom change as one atomic snapshot (for tools built on the store)."""
        with self._writing() as draft:
            change(draft)


def _same_key(a: PrivateKeyTypes, b: PrivateKeyTypes) -> bool:
    return public_key_der(a.public_key()) == public_key_der(b.public_key())


def _check_root(cert: x509.Certificate) -> None:
    who = cert.subject.rfc4514_string()
    if cert.subject != cert.issuer:
        raise StoreError(f"{who}: not a root certificate (issued by {cert.issuer.rfc4514_string()})")
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise StoreError(f"{who}: not a CA certificate (no basicConstraints)") from None
    except ValueError as exc:
        raise StoreError(f"{who}: malformed extensions ({exc})") from None
    if not bc.ca:
        raise StoreError(f"{who}: not a CA certificate (basicConstraints CA:FALSE)")
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        raise StoreError(f"{who}: the self-signature does not verify") from None
