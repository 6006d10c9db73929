"""The rights list: every table has its entry, every clause names real columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Base
from storage.privileges import COMPONENTS, GRANTS, clause_parts, inserts_into, role_name


def test_every_table_is_decided_for_staff_and_no_component_names_an_unknown_one() -> None:
    tables = set(Base.metadata.tables)
    # staff runs the admin commands: a new table without a decision fails here first
    assert tables <= set(GRANTS["staff"]), tables - set(GRANTS["staff"])
    for component in COMPONENTS:
        unknown = set(GRANTS[component]) - tables - {"alembic_version"}
        assert not unknown, (component, unknown)


def test_every_column_clause_names_columns_of_its_table() -> None:
    for component, tables in GRANTS.items():
        for table, clauses in tables.items():
            for clause in clauses:
                _privilege, columns = clause_parts(clause)
                if columns:
                    known = set(Base.metadata.tables[table].columns.keys())
                    assert set(columns) <= known, (component, table, clause)


def test_clauses_are_parsed_and_odd_ones_refused() -> None:
    assert clause_parts("UPDATE (store_id)") == ("UPDATE", ("store_id",))
    assert clause_parts("SELECT (id, sku)") == ("SELECT", ("id", "sku"))
    assert clause_parts("INSERT") == ("INSERT", ())
    for odd in ("TRUNCATE", "ALL", "SELECT; DROP TABLE x", "select"):
        with pytest.raises(ValueError):
            clause_parts(odd)


def test_the_components_rights_as_the_issue_asks() -> None:
    assert "session_memories" not in GRANTS["checkout"]
    assert "INSERT" not in GRANTS["checkout"].get("answers", ())
    assert "answers" not in GRANTS["ingest"]
    assert "INSERT" not in GRANTS["answer"]["scans"]
    assert inserts_into("checkout") == ["queries", "scans"]
    assert role_name("ingest") == "cartmem_ingest"
    with pytest.raises(ValueError):
        role_name("owner")


def test_the_rights_table_of_docs_security_is_this_list() -> None:
    text = (Path(__file__).parents[2] / "docs" / "SECURITY.md").read_text()
    table = text.split("<!-- rights table")[1].split("<!-- end of rights table")[0]
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| `")]
    documented = {
        (cells[0].strip().strip("`"), component): cell.strip()
        for cells in rows
        for component, cell in zip(COMPONENTS, cells[1:], strict=True)
    }
    tables = {table for grants in GRANTS.values() for table in grants}
    assert {t for t, _c in documented} == tables
    for (table, component), cell in documented.items():
        assert cell == (", ".join(GRANTS[component].get(table, ())) or "—"), (table, component)
