"""Least privilege on a real PostgreSQL: each component logged in as a member of its own
role does its whole job, and is refused (permission denied) what it must not do.

The migrations (as the owner) create the roles; `cartmem db roles --apply` makes a login
user per component. The pipeline is the demo's, on PostgreSQL: staff load the catalog,
ingest writes a session and asks its reconciliation questions, checkout asks and scans,
the answer worker answers, reconciles and sends the webhook, checkout reads the answers,
staff review, recompute, draw evidence, requeue, erase and purge.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.exc import ProgrammingError

from app import catalog as catalog_ops
from app import db as database_ops
from app import db_roles
from app.answer import AnswerWorker
from app.answer.metrics import AnswerMetrics
from app.answer.requeue import requeue_failed
from app.cli import main
from app.db import Database
from app.errors import DatabasePermissionError
from app.evidence import write_evidence
from app.ingest import FileSource, IngestEngine
from app.model_runtime import load_model
from app.privacy import RetentionPolicy, erase_session, purge
from app.publish import publish_video
from app.reconcile import ORIGIN, add_scan, answer_batch_hook, reconcile_now, session_closed_hook
from app.reconcile.reviews import review_flag
from app.reconcile.webhook import PostResult, send_due
from app.sessions import list_sessions
from app.settings import Settings
from storage import QueryStatus
from storage import query_queue as queue
from storage.ingest_state import DeadLetterRecord, commit_ingest_state
from storage.privileges import COMPONENTS
from storage.reconciliations import get_reconciliation, session_queries
from tests.integration.conftest import ingest_until_idle

pytestmark = pytest.mark.postgres
SESSION = "shop-1"
INSUFFICIENT_PRIVILEGE = "42501"

Login = Callable[[str], Settings]


@pytest.fixture
def owner(pg_settings: Settings, tiny_checkpoint: Path) -> Settings:
    """The migrations' owner (the test server's superuser) on a migrated database."""
    settings = dataclasses.replace(
        pg_settings, checkpoint_path=str(tiny_checkpoint), device="cpu", query_poll_s=0.2
    )
    database_ops.upgrade(settings)
    return settings


@pytest.fixture
def login_as(owner: Settings) -> Iterator[Login]:
    """Function: component -> settings logged in as a new login member of its role."""
    users: list[str] = []

    def login(component: str) -> Settings:
        user = f"{component}_{uuid.uuid4().hex[:8]}"
        db_roles.manage_roles(owner, [db_roles.login(component, user)], apply=True)
        users.append(user)
        url = sa.make_url(owner.database_url).set(username=user, password=None)
        return dataclasses.replace(owner, database_url=url.render_as_string(hide_password=False))

    yield login
    engine = sa.create_engine(owner.database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for user in users:
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{user}"'))
    engine.dispose()


def run_sql(settings: Settings, statement: str) -> None:
    engine = sa.create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


REFUSED = [
    ("checkout", "SELECT * FROM session_memories"),
    ("checkout", "SELECT data FROM memory_arrays"),
    ("checkout", "INSERT INTO answers (query_id, payload, model_version) VALUES (1, '{}', 'x')"),
    ("checkout", "UPDATE queries SET status = 'done'"),
    ("checkout", "DELETE FROM reconciliations"),
    ("checkout", "SELECT start_info FROM sessions"),
    ("checkout", "SELECT * FROM evidence_thumbnails"),
    ("ingest", "SELECT * FROM answers"),
    ("ingest", "SELECT * FROM scans"),
    ("ingest", "SELECT * FROM reconciliations"),
    ("ingest", "SELECT image_png FROM products"),
    ("ingest", "DELETE FROM sessions"),
    ("answer", "INSERT INTO scans (session_id, sku, qty) VALUES ('s', 'SKU-1', 1)"),
    ("answer", "UPDATE sessions SET status = 'closed'"),
    ("answer", "UPDATE session_memories SET frames_seen = 0"),
    ("answer", "SELECT * FROM evidence_thumbnails"),
    ("answer", "DELETE FROM answers"),
    ("staff", "UPDATE erasures SET erased_by = 'nobody'"),
    ("staff", "DELETE FROM erasures"),
    ("staff", "UPDATE partition_offsets SET next_offset = 0"),
    ("staff", "UPDATE flag_reviews SET verdict = 'dismissed'"),
    ("staff", "UPDATE answers SET payload = '{}'"),
    ("staff", "UPDATE session_memories SET frames_seen = 0"),
    *((c, "CREATE TABLE mine (x int)") for c in COMPONENTS),
    *((c, "DROP TABLE queries") for c in COMPONENTS),
]

ALLOWED = [
    ("checkout", "SELECT id FROM sessions"),
    ("checkout", "SELECT * FROM answers"),
    ("checkout", "SELECT * FROM reconciliations"),
    ("checkout", "INSERT INTO scans (session_id, sku, qty) VALUES ('s', 'SKU-1', 1)"),
    ("checkout", "INSERT INTO queries (session_id, kind, params) VALUES ('s', 'activity', '{}')"),
    ("ingest", "SELECT * FROM session_memories"),
    ("ingest", "SELECT sku FROM products"),
    ("answer", "SELECT * FROM memory_arrays"),
    ("answer", "SELECT * FROM scans"),
    ("staff", "SELECT * FROM erasures"),
    ("staff", "DELETE FROM scans"),
]


@pytest.mark.parametrize(("component", "statement"), REFUSED)
def test_a_role_is_refused_what_its_component_must_not_do(
    login_as: Login, component: str, statement: str
) -> None:
    with pytest.raises(ProgrammingError) as info:
        run_sql(login_as(component), statement)
    assert getattr(info.value.orig, "pgcode", None) == INSUFFICIENT_PRIVILEGE, info.value


@pytest.mark.parametrize(("component", "statement"), ALLOWED)
def test_a_role_may_do_what_its_component_does(
    login_as: Login, component: str, statement: str
) -> None:
    run_sql(login_as(component), statement)


def test_a_refusal_is_one_sentence_naming_the_user(login_as: Login) -> None:
    checkout = login_as("checkout")
    database = Database(checkout)
    try:
        with pytest.raises(DatabasePermissionError) as info:
            list_sessions(database)
    finally:
        database.dispose()
    message = str(info.value)
    user = sa.make_url(checkout.database_url).username
    assert user in message and "docs/SECURITY.md" in message and "\n" not in message
    result = CliRunner().invoke(main, ["sessions", "list"], env=checkout.to_env())
    assert result.exit_code == 1 and "permission denied" in result.output, result.output


def test_roles_apply_again_changes_nothing_and_takes_back_stray_rights(
    owner: Settings, login_as: Login
) -> None:
    checkout = login_as("checkout")
    run_sql(owner, "GRANT SELECT ON session_memories TO cartmem_checkout")
    run_sql(checkout, "SELECT * FROM session_memories")  # the stray right works...
    first = db_roles.manage_roles(owner, apply=True)
    again = db_roles.manage_roles(owner, apply=True)
    assert first.statements == again.statements and not again.created
    with pytest.raises(ProgrammingError):  # ...until the list is applied again
        run_sql(checkout, "SELECT * FROM session_memories")
    assert sa.make_url(checkout.database_url).username in again.members["cartmem_checkout"]


def test_the_roles_command_prints_then_applies_a_login_from_a_url_file(
    owner: Settings, tmp_path: Path
) -> None:
    user, password = f"till_{uuid.uuid4().hex[:8]}", "till-Pa55word"
    url = sa.make_url(owner.database_url).set(username=user, password=password)
    secret = tmp_path / "checkout_database_url"
    secret.write_text(url.render_as_string(hide_password=False) + "\n")
    runner, env = CliRunner(), owner.to_env()
    args = ["db", "roles", "--login-url", f"checkout={secret}"]
    printed = runner.invoke(main, args, env=env)
    assert printed.exit_code == 0, printed.output
    assert f"GRANT cartmem_checkout TO {user};" in printed.output
    assert f"ALTER ROLE {user} PASSWORD '***';" in printed.output
    assert user not in db_roles.manage_roles(owner).members["cartmem_checkout"]  # only printed
    applied = runner.invoke(main, [*args, "--apply", "--json"], env=env)
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.output)["members"]["cartmem_checkout"] == [user]
    assert password not in printed.output + applied.output
    engine = sa.create_engine(owner.database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        stored = conn.scalar(
            sa.text("SELECT rolpassword FROM pg_authid WHERE rolname = :u"), {"u": user}
        )
        conn.execute(sa.text(f'DROP ROLE "{user}"'))
    engine.dispose()
    assert stored.startswith("SCRAM-SHA-256$") and password not in stored  # a verifier


def test_upgrade_grants_the_rights_again(owner: Settings, login_as: Login) -> None:
    checkout = login_as("checkout")
    run_sql(owner, "REVOKE ALL ON answers FROM cartmem_checkout")
    with pytest.raises(ProgrammingError):
        run_sql(checkout, "SELECT * FROM answers")
    database_ops.upgrade(owner)  # already at the head: only the rights are applied
    run_sql(checkout, "SELECT * FROM answers")


def test_downgrade_takes_the_rights_back_and_keeps_the_roles(
    owner: Settings, login_as: Login
) -> None:
    checkout = login_as("checkout")
    database_ops.downgrade(owner, "0008")
    with pytest.raises(ProgrammingError):
        run_sql(checkout, "SELECT * FROM answers")
    report = db_roles.manage_roles(owner)
    assert set(report.members) == {f"cartmem_{c}" for c in COMPONENTS}
    database_ops.upgrade(owner)
    run_sql(checkout, "SELECT * FROM answers")


@pytest.mark.kafka
@pytest.mark.slow
def test_ingest_reads_kafka_under_its_own_role_exactly(
    make_kafka_pg_settings: Callable[..., Settings],
    login_as: Login,
    synth_videos: list[Path],
    reference_memory: Callable,
    stored_memory: Callable,
) -> None:
    kafka = make_kafka_pg_settings()
    publish_video(kafka, synth_videos[0], "k-1", chunk_seconds=3.0)  # the producer: no database
    ingest = dataclasses.replace(kafka, database_url=login_as("ingest").database_url)
    stats = ingest_until_idle(ingest)  # claims its partition, commits offsets and memories
    assert stats.sessions_closed == 1 and stats.dead_letters == 0
    memory, snapshot = stored_memory(login_as("staff"), "k-1")
    assert snapshot.status == "closed" and memory.equal(reference_memory(synth_videos[0]))


@pytest.mark.slow
def test_the_whole_pipeline_runs_each_component_under_its_own_role(
    login_as: Login, synth_videos: list[Path], tmp_path: Path
) -> None:
    dbs = {component: Database(login_as(component)) for component in COMPONENTS}
    try:
        _pipeline(dbs, synth_videos[0], tmp_path)
    finally:
        for database in dbs.values():
            database.dispose()


def _pipeline(dbs: dict[str, Database], video: Path, tmp_path: Path) -> None:
    catalog = sorted((video.parents[1] / "catalog").glob("*.png"))[:3]
    skus = [png.stem for png in catalog]
    for png in catalog:  # staff: the catalog
        catalog_ops.add_product(dbs["staff"], png.stem, name=png.stem, image_path=png)

    # ingest: the session, its memory, thumbnails and offsets; its first reconcile questions
    model = load_model(dbs["ingest"].settings)
    source = FileSource([(video, SESSION)], chunk_seconds=3.0, start_info={"candidate_skus": skus})
    closed = session_closed_hook(dbs["ingest"])
    IngestEngine(
        dbs["ingest"].settings, dbs["ingest"], model, source, on_session_closed=closed
    ).run(until_idle_s=0.3)
    with dbs["ingest"].session() as db:  # a dead letter goes in with the ingest commit
        letter = DeadLetterRecord("files", 0, 10**6, None, SESSION, "bad", 1, "0" * 64, b"x", {})
        commit_ingest_state(db, group="files", offsets={}, sessions=[], dead_letters=[letter])
    with dbs["staff"].session() as db:
        asked = session_queries(db, SESSION, origin=ORIGIN)
    assert {q.params["sku"] for q, _ in asked} == set(skus)

    # checkout: a question and the till's lines
    with dbs["checkout"].session() as db:
        window = {"sku": skus[0], "from": 0.0, "to": 10.0}
        query_id = queue.enqueue(db, session_id=SESSION, kind="activity", params=window)
        unknown = window | {"sku": "SKU-NOPE"}  # fails at once: not in the catalog
        failing_id = queue.enqueue(db, session_id=SESSION, kind="activity", params=unknown)
    add_scan(dbs["checkout"], SESSION, skus[1], qty=1)

    # answer: every question, the reconciliation, its webhook; the queue's metrics
    settings = dataclasses.replace(
        dbs["answer"].settings, webhook_url="https://till.example/hook", webhook_secret="k" * 16
    )
    hook = answer_batch_hook(dbs["answer"], webhook=True)
    AnswerWorker(settings, dbs["answer"], model, after_batch=hook).run(until_idle_s=1.0)
    sent: list[bytes] = []

    def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> PostResult:
        sent.append(body)
        return PostResult(200, None)

    assert send_due(dbs["answer"], settings, post=post) == 1 and len(sent) == 1
    assert AnswerMetrics().read_queue(dbs["answer"]) == 0
    for database in dbs.values():
        database.ping()  # each worker's readiness probe

    # checkout: the answer and the reconciliation
    with dbs["checkout"].session() as db:
        found = queue.get_query(db, query_id)
        assert found is not None
        row, answer_row = found
        assert row.status == QueryStatus.DONE.value and answer_row is not None
        assert answer_row.payload["sku"] == skus[0]
        failed = queue.get_query(db, failing_id)
        assert failed is not None and failed[0].status == QueryStatus.FAILED.value
        reconciliation = get_reconciliation(db, SESSION)
        assert reconciliation is not None

    # staff: recompute, review, evidence, requeue, purge, erase
    report = reconcile_now(dbs["staff"], SESSION, recompute=True)
    # the fixed random weights flag products the till did not scan: one to review
    assert report.state == "done" and report.discrepancies
    flag = report.discrepancies[0]
    review_flag(dbs["staff"], SESSION, flag.sku, verdict="confirmed", reviewer="ann")
    pictures = write_evidence(dbs["staff"], SESSION, tmp_path / "evidence")
    assert len(pictures) == len(report.discrepancies)
    assert requeue_failed(dbs["staff"], session_id=SESSION, error_contains="SKU-NOPE") == [
        failing_id
    ]
    assert [s.id for s in list_sessions(dbs["staff"])] == [SESSION]
    policy = RetentionPolicy(0.0, 0.0, 0.0, 365.0, 365.0, 30.0)
    assert purge(dbs["staff"], policy).rows_deleted["memories"] > 0
    erased = erase_session(dbs["staff"], SESSION, erased_by="dpo")
    assert erased.rows_deleted["sessions"] == 1
