"""Trust store: kinds, atomic changes, changes seen without restart, concurrency with the CLI."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pnc_bridge.pki import Failure, StoreError, TrustStore, fingerprint, generate_test_pki, validate_chain
from pnc_bridge.pki._certio import chain_pem, key_pem

from .conftest import validation_time


def test_init_is_idempotent_and_refuses_foreign_directories(tmp_path):
    store = TrustStore.init(tmp_path / "s")
    generation = store.generation
    assert TrustStore.init(tmp_path / "s").generation == generation
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(StoreError):
        TrustStore.init(tmp_path / "other")
    with pytest.raises(StoreError, match="store init"):
        TrustStore(tmp_path / "missing").snapshot()


def test_roots_by_kind_and_purpose(pki2, tmp_path):
    store = TrustStore.init(tmp_path / "s")
    added, present = store.add_roots("mo", [pki2.mo_root])
    assert [r.fingerprint for r in added] == [fingerprint(pki2.mo_root)] and present == []
    added, present = store.add_roots("mo", [pki2.mo_root])
    assert added == [] and len(present) == 1
    store.add_roots("v2g", [pki2.v2g_root])
    assert [r.kind.value for r in store.roots()] == ["v2g", "mo"]
    assert set(store.anchors_for("contract").roots) == {pki2.mo_root, pki2.v2g_root}
    assert store.anchors_for("secc").roots == (pki2.v2g_root,)
    assert store.anchors_for("oem").roots == ()


def test_add_refuses_non_roots_atomically(pki2, tmp_path):
    store = TrustStore.init(tmp_path / "s")
    generation = store.generation
    with pytest.raises(StoreError, match="not a root"):
        store.add_roots("mo", [pki2.mo_root, pki2.cert("mo_sub_ca1")])
    assert store.roots() == [] and store.generation == generation
    with pytest.raises(StoreError, match="not a root"):
        store.add_roots("mo", [pki2.contract_leaf])


def test_remove_by_fingerprint_prefix(pki2, tmp_path):
    store = TrustStore.init(tmp_path / "s")
    store.add_roots("mo", [pki2.mo_root])
    store.add_roots("v2g", [pki2.v2g_root])
    fp = fingerprint(pki2.mo_root)
    colons = ":".join(fp[i : i + 2] for i in range(0, 16, 2)).upper()
    removed = store.remove_roots(colons)
    assert [r.fingerprint for r in removed] == [fp]
    assert [r.kind.value for r in store.roots()] == ["v2g"]
    with pytest.raises(StoreError, match="no root"):
        store.remove_roots(fp)
    with pytest.raises(StoreError, match="8 hex"):
        store.remove_roots("abc")


def test_changes_seen_without_restart(pki2, tmp_path):
    reader = TrustStore.init(tmp_path / "s")
    writer = TrustStore(tmp_path / "s")  # another instance, as the CLI would be
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    assert validate_chain(leaf, subs, purpose="contract", store=reader, at=at).failure is Failure.UNKNOWN_ROOT
    writer.add_roots("mo", [pki2.mo_root])
    assert validate_chain(leaf, subs, purpose="contract", store=reader, at=at).valid
    writer.remove_roots(fingerprint(pki2.mo_root))
    assert validate_chain(leaf, subs, purpose="contract", store=reader, at=at).failure is Failure.UNKNOWN_ROOT


def test_reads_are_cached_between_changes(pki2, tmp_path):
    store = TrustStore.init(tmp_path / "s")
    store.add_roots("mo", [pki2.mo_root])
    first = store.snapshot()
    assert store.snapshot() is first
    assert first.anchors_for("contract") is first.anchors_for("contract")
    TrustStore(tmp_path / "s").add_roots("v2g", [pki2.v2g_root])
    assert store.snapshot() is not first and store.snapshot().generation == first.generation + 1


def test_failed_change_leaves_store_untouched(pki2, tmp_path):
    store = TrustStore.init(tmp_path / "s")
    store.add_roots("mo", [pki2.mo_root])
    before = store.snapshot()

    def half_a_change(draft):
        draft.write("roots/v2g/x.pem", chain_pem([pki2.v2g_root]))
        raise RuntimeError("crash in the middle")

    with pytest.raises(RuntimeError):
        store.mutate(half_a_change)
    fresh = TrustStore(tmp_path / "s").snapshot()
    assert fresh.generation == before.generation and [r.kind.value for r in fresh.roots] == ["mo"]
    assert not list((tmp_path / "s" / "snapshots").glob(".draft-*"))


def test_leftovers_of_a_killed_writer_are_cleaned(pki2, tmp_path):
    store = TrustStore.init(tmp_path / "s")
    leftover = tmp_path / "s" / "snapshots" / ".draft-00000099-1"
    (leftover / "roots" / "mo").mkdir(parents=True)
    (leftover / "roots" / "mo" / "half.pem").write_bytes(b"-----BEGIN CERT")
    assert store.roots() == []  # readers never look at drafts
    store.add_roots("mo", [pki2.mo_root])
    assert not leftover.exists()


def test_old_snapshots_are_pruned(pki2, tmp_path):
    store = TrustStore.init(tmp_path / "s")
    for _ in range(4):
        store.add_roots("mo", [pki2.mo_root])
        store.remove_roots(fingerprint(pki2.mo_root))
    kept = [p for p in (tmp_path / "s" / "snapshots").iterdir() if p.name.isdigit()]
    assert len(kept) == 4


def test_install_leaf_keeps_previous_and_protects_keys(pki2, tmp_path):
    store = TrustStore.init(tmp_path / "s")
    chain = [pki2.secc_leaf, pki2.cert("cpo_sub_ca2"), pki2.cert("cpo_sub_ca1")]
    store.install_leaf("secc", chain, pki2.key("secc_leaf"))
    entry = store.leaf("secc")
    assert entry.chain == tuple(chain)
    assert stat.S_IMODE(os.stat(entry.key_path).st_mode) == 0o600
    other = generate_test_pki(tmp_path / "other")
    store.install_leaf("secc", [other.secc_leaf], other.key("secc_leaf"))
    snapshot = store.snapshot()
    assert snapshot.leaves["secc"].certificate == other.secc_leaf
    assert snapshot.previous["secc"].certificate == pki2.secc_leaf
    # The files the TLS server loads sit side by side in the one snapshot it read.
    assert snapshot.leaves["secc"].chain_path == snapshot.path / "secc" / "chain.pem"
    assert snapshot.leaves["secc"].key_path == snapshot.path / "secc" / "key.pem"
    assert key_pem(snapshot.previous["secc"].key) == key_pem(pki2.key("secc_leaf"))


# --------------------------------------------------------------------------- #
# Concurrency: the service validates while the CLI adds and removes roots      #
# --------------------------------------------------------------------------- #


def _cli(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pnc_bridge", "pki", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_reader_never_sees_a_half_written_store(pki2, tmp_path):
    """A bundle of two roots goes in with one CLI call; the reader must see both or neither
    of them, every snapshot must load, and every verdict must match the snapshot it used."""
    other = generate_test_pki(tmp_path / "other")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(chain_pem([pki2.mo_root, other.mo_root]))
    mo_fp, other_fp = fingerprint(pki2.mo_root), fingerprint(other.mo_root)
    store_dir = tmp_path / "store"
    _cli("store", "init", "--store", str(store_dir))

    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    reader = TrustStore(store_dir)
    stop = threading.Event()
    seen_states: set[frozenset[str]] = set()
    problems: list[str] = []
    loops = [0]

    def read_loop() -> None:
        while not stop.is_set():
            try:
                snapshot = reader.snapshot()
                present = frozenset(r.fingerprint for r in snapshot.roots)
                seen_states.add(present)
                verdict = validate_chain(leaf, subs, purpose="contract", store=snapshot, at=at)
                if verdict.valid != (mo_fp in present):
                    problems.append(f"verdict {verdict} with roots {sorted(present)}")
                if not verdict.valid and verdict.failure not in (Failure.UNKNOWN_ROOT, Failure.BROKEN_CHAIN):
                    problems.append(f"unexpected failure {verdict}")
                loops[0] += 1
            except Exception as exc:  # any exception is a half-written store seen
                problems.append(repr(exc))

    thread = threading.Thread(target=read_loop, daemon=True)
    thread.start()
    try:
        for _ in range(3):
            _cli("store", "add", "--store", str(store_dir), "--kind", "mo", str(bundle))
            _cli("store", "remove", "--store", str(store_dir), other_fp[:16])
            _cli("store", "remove", "--store", str(store_dir), mo_fp[:16])
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not problems, problems[:5]
    allowed = {frozenset(), frozenset({mo_fp, other_fp}), frozenset({mo_fp})}
    assert seen_states <= allowed, seen_states - allowed
    assert loops[0] > 0
    assert len(seen_states) >= 2  # the reader did observe changes while they happened


def test_concurrent_writers_serialise(pki2, tmp_path):
    store_dir = tmp_path / "store"
    TrustStore.init(store_dir)
    roots = [generate_test_pki(tmp_path / f"p{i}").mo_root for i in range(4)]
    files = []
    for i, root in enumerate(roots):
        path = tmp_path / f"root{i}.pem"
        path.write_bytes(chain_pem([root]))
        files.append(path)
    procs = [
        subprocess.Popen([sys.executable, "-m", "pnc_bridge", "pki", "store", "add", "--store", str(store_dir),
                          "--kind", "mo", str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for f in files
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    assert {r.fingerprint for r in TrustStore(store_dir).roots()} == {fingerprint(r) for r in roots}


def test_damaged_store_is_reported(pki2, tmp_path):
    store = TrustStore.init(tmp_path / "s")
    store.add_roots("mo", [pki2.mo_root])
    victim = next(Path(store.snapshot().path, "roots", "mo").glob("*.pem"))
    victim.unlink()
    victim.write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    with pytest.raises(StoreError, match="damaged"):
        TrustStore(tmp_path / "s").snapshot()
