"""Safe-update lint: no UPDATE or DELETE without WHERE in a function the Data API can reach.

Hosted Supabase preloads pg-safeupdate for `authenticator` (session_preload_libraries =
'supautils, safeupdate'), so in every Data API session an UPDATE or DELETE whose WHERE clause is
missing fails with SQLSTATE 21000 "UPDATE requires a WHERE clause" / "DELETE requires a WHERE
clause". The check runs after parse analysis of every statement, so it also hits the statements
inside functions: RPCs, the helpers they call and the triggers that API writes fire all run in
that session. pg-safeupdate is not packaged for the local cluster, which therefore cannot show
the failure; this lint finds it statically instead.

Scope: every function and procedure in public, private and archive that is not an extension
member (pgtap, plpgsql_check and the like live in `extensions` anyway), read back from pg_proc
of the migrated database, so it sees exactly what `supabase db push` created.

What counts, as pg-safeupdate counts it (a missing WHERE on the UPDATE or DELETE itself):
  * flagged: `update t set x = 1`, `delete from t`, `update t set x = 1 from u`, and the same
    inside a data-modifying CTE (`with d as (delete from t returning 1) select ...`), a
    `for r in delete ... returning` loop or `return query`;
  * not flagged: any WHERE at all (`where true` is the documented way to mean every row,
    `where current of c` too), INSERT ... ON CONFLICT DO UPDATE (an INSERT to pg-safeupdate),
    TRUNCATE (which pg-safeupdate does not block);
  * plpgsql EXECUTE: a constant string is parsed and checked like any statement; a string built
    at run time (format(), ||, a variable) cannot be known statically and is only listed as a
    note, never passed or failed — pg-safeupdate would judge it when it runs.
Only languages sql and plpgsql are read; a function in any other language fails the lint, since
nothing here could check it.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pglast
import psycopg
import pytest
from pglast import ast
from pglast.parser import parse_plpgsql_json
from pglast.stream import RawStream
from pglast.visitors import Visitor

from conftest import DATABASE_URL

SCHEMAS = ["public", "private", "archive"]
RAW_PARSE_DEFAULT = 0  # PLpgSQL_expr.parseMode of a whole SQL statement (RawParseMode in parser.h)
DYNAMIC_STATEMENTS = {"PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors"}


@dataclass(frozen=True)
class Finding:
    line: int  # line in the function body (prosrc), 1-based
    statement: str  # the offending UPDATE / DELETE, deparsed


@dataclass
class Report:
    offenders: list[Finding] = field(default_factory=list)
    dynamic: list[Finding] = field(default_factory=list)  # EXECUTE of SQL built at run time


class _Whereless(Visitor):  # type: ignore[misc]
    """Collects UpdateStmt / DeleteStmt nodes without a WHERE clause, at any depth (CTEs too)."""

    def __init__(self) -> None:
        self.found: list[ast.Node] = []

    def visit_UpdateStmt(self, ancestors: Any, node: ast.UpdateStmt) -> None:
        if node.whereClause is None:
            self.found.append(node)

    def visit_DeleteStmt(self, ancestors: Any, node: ast.DeleteStmt) -> None:
        if node.whereClause is None:
            self.found.append(node)


def check_sql(sql: str, first_line: int = 1) -> list[Finding]:
    """UPDATE/DELETE without WHERE in SQL text (one or more statements); lines counted from first_line."""
    findings = []
    for raw in pglast.parse_sql(sql):
        finder = _Whereless()
        if raw.stmt is not None:
            finder(raw.stmt)
        start = _first_token(sql, raw.stmt_location or 0)
        findings += [
            Finding(first_line + sql[:start].count("\n"), _shorten(RawStream()(node))) for node in finder.found
        ]
    return findings


def _shorten(statement: str, limit: int = 160) -> str:
    """A long statement (an UPDATE of ten columns) cut in the middle: its start and its end stay."""
    return statement if len(statement) <= limit else f"{statement[: limit - 40]} … {statement[-35:]}"


def _first_token(sql: str, at: int) -> int:
    """Where the statement starting at `at` really begins: past blanks and comments."""
    while True:
        rest = sql[at:]
        stripped = rest.lstrip()
        at += len(rest) - len(stripped)
        if stripped.startswith("--"):
            at += stripped.find("\n") if "\n" in stripped else len(stripped)
        elif stripped.startswith("/*") and "*/" in stripped:
            at += stripped.index("*/") + 2
        else:
            return at


def _expressions(node: Any, stmt: str = "", key: str = "", line: int = 0) -> Iterator[tuple[str, str, int, dict]]:
    """Every PLpgSQL_expr in a parse_plpgsql_json tree as (statement type, key, line, expr)."""
    if isinstance(node, list):
        for item in node:
            yield from _expressions(item, stmt, key, line)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k == "PLpgSQL_expr":
                yield stmt, key, line, v
            elif k.startswith("PLpgSQL_stmt_"):
                yield from _expressions(v, k, "", v.get("lineno", line))
            elif isinstance(v, (dict, list)):
                yield from _expressions(v, stmt, key if k.startswith("PLpgSQL_") else k, line)


def _constant_string(expr: str) -> str | None:
    """The text of a plpgsql expression that is one string literal ('…', E'…', $q$…$q$), else None."""
    try:
        (raw,) = pglast.parse_sql("select " + expr)
    except pglast.parser.ParseError:
        return None
    targets: list[Any] = list(getattr(raw.stmt, "targetList", None) or ())
    if len(targets) == 1 and isinstance(targets[0].val, ast.A_Const) and isinstance(targets[0].val.val, ast.String):
        return str(targets[0].val.val.sval)
    return None


# libpg_query compiles plpgsql without a catalog: a type named with a schema other than public
# or pg_catalog (`s private.whatsapp_settings;`, `returns setof private.t`) cannot be looked up
# and fails the parse. Types play no part in this lint, so such qualifiers are rewritten to
# public — only in the header and in DECLARE sections, never in statements (which are reported
# as written), and without changing line numbers.
_QUALIFIER = re.compile(r'\b(?!public\b|pg_catalog\b)[A-Za-z_][A-Za-z0-9_$]*\.(?=[A-Za-z_"])')
_DECLARE_SECTION = re.compile(r"\bdeclare\b.*?\bbegin\b", re.IGNORECASE | re.DOTALL)


def _parsable(definition: str, body: str) -> str:
    at = definition.find(body) if body else -1
    if at < 0:
        return definition
    header, tail = definition[:at], definition[at + len(body) :]
    body = _DECLARE_SECTION.sub(lambda m: _QUALIFIER.sub("public.", m.group(0)), body)
    return _QUALIFIER.sub("public.", header) + body + tail


def check_plpgsql(definition: str, body: str = "") -> Report:
    """UPDATE/DELETE without WHERE in a plpgsql function, given its full CREATE FUNCTION text and
    its body (pg_proc.prosrc, to tell the body from the header)."""
    report = Report()
    for stmt, key, line, expr in _expressions(json.loads(parse_plpgsql_json(_parsable(definition, body)))):
        query = expr.get("query", "")
        if (stmt in DYNAMIC_STATEMENTS and key == "query") or key == "dynquery":
            text = _constant_string(query)
            if text is None:
                report.dynamic.append(Finding(line, f"EXECUTE {query}"))
            else:
                report.offenders += [Finding(line, f.statement) for f in check_sql(text)]
        elif expr.get("parseMode", RAW_PARSE_DEFAULT) == RAW_PARSE_DEFAULT:
            # A whole statement (SQL statement, PERFORM, FOR/RETURN QUERY/OPEN query). Other parse
            # modes are expressions and assignments, which cannot hold an UPDATE or DELETE: a
            # data-modifying CTE is only allowed at the top level of a statement.
            report.offenders += [Finding(line, f.statement) for f in check_sql(query)]
    return report


def check_function(language: str, source: str, definition: str) -> Report:
    """source: pg_proc.prosrc; definition: pg_get_functiondef() (for plpgsql and BEGIN ATOMIC bodies)."""
    if language == "plpgsql":
        return check_plpgsql(definition, source)
    if language == "sql":
        # prosrc is empty for a SQL-standard body (BEGIN ATOMIC … END): parse the whole definition.
        return Report(offenders=check_sql(source) if source.strip() else check_sql(definition))
    raise ValueError(f"cannot check language {language!r}")


# --- the lint over the migrated database ------------------------------------------------------

FUNCTIONS = """
select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as name,
       l.lanname, p.prosrc,
       case when l.lanname = 'plpgsql' or p.prosrc = '' then pg_get_functiondef(p.oid) else '' end
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_language l on l.oid = p.prolang
where n.nspname = any(%s)
  and p.prokind in ('f', 'p')
  and not exists (select from pg_depend d
                  where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
order by 1
"""


def lint_database(url: str) -> tuple[int, list[str], list[str]]:
    """(functions checked, offender lines, dynamic-SQL notes) for the database at url."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(FUNCTIONS, [SCHEMAS]).fetchall()
    offenders, notes = [], []
    for name, language, source, definition in rows:
        try:
            report = check_function(language, source, definition)
        except (ValueError, pglast.parser.ParseError) as exc:
            offenders.append(f"{name}: not checked: {exc}")
            continue
        offenders += [f"{name} body line {f.line}: {f.statement}" for f in report.offenders]
        notes += [f"{name} body line {f.line}: {f.statement}" for f in report.dynamic]
    return len(rows), offenders, notes


def test_no_update_or_delete_without_where_in_api_reachable_functions() -> None:
    checked, offenders, notes = lint_database(DATABASE_URL)
    assert checked >= 10, f"only {checked} functions found in {SCHEMAS}: is this the migrated database?"
    if notes:
        warnings.warn(
            "dynamic SQL not checked (pg-safeupdate judges it at run time):\n  " + "\n  ".join(notes), stacklevel=1
        )
    assert not offenders, (
        f"{len(offenders)} UPDATE/DELETE without WHERE in functions the Data API can reach; on hosted "
        "Supabase pg-safeupdate rejects them (21000 '... requires a WHERE clause') when called through "
        "/rpc or fired by an API write. Add a WHERE clause (`where true` when every row is meant):\n  "
        + "\n  ".join(offenders)
    )


# --- the checker itself: it can fail ----------------------------------------------------------


def plpgsql(body: str, returns: str = "void") -> str:
    return f"create function f() returns {returns} language plpgsql as $body${body}$body$"


@pytest.mark.parametrize(
    ("sql", "flagged"),
    [
        ("update t set x = 1", ["UPDATE t SET x = 1"]),
        ("update t set x = 1 where id = 1", []),
        ("delete from t", ["DELETE FROM t"]),
        ("delete from t where true", []),
        ("update t set x = 1 from u", ["UPDATE t SET x = 1 FROM u"]),
        ("delete from t using u where t.id = u.id", []),
        ("with d as (delete from t returning 1) select count(*) from d", ["DELETE FROM t RETURNING 1"]),
        ("with d as (delete from t where id = 1 returning 1) select count(*) from d", []),
        (
            "with u as (update t set x = 1 returning *) insert into log select * from u",
            ["UPDATE t SET x = 1 RETURNING *"],
        ),
        # An INSERT to pg-safeupdate, and TRUNCATE it does not block: neither is flagged.
        ("insert into t (id) values (1) on conflict (id) do update set x = 1", []),
        ("truncate t", []),
        ("select 1; delete from t where id = $1; update t set x = $2", ["UPDATE t SET x = $2"]),
    ],
)
def test_checker_on_sql_bodies(sql: str, flagged: list[str]) -> None:
    assert [f.statement for f in check_function("sql", sql, "").offenders] == flagged


def test_checker_on_a_sql_standard_body() -> None:
    definition = "create function f() returns void language sql begin atomic delete from t; end"
    assert [f.statement for f in check_function("sql", "", definition).offenders] == ["DELETE FROM t"]


@pytest.mark.parametrize(
    ("body", "returns", "flagged"),
    [
        ("begin\n  update t set x = 1;\nend", "void", [(2, "UPDATE t SET x = 1")]),
        ("begin\n  update t set x = 1 where id = 1;\n  delete from t where true;\nend", "void", []),
        (
            (
                "declare n int;\nbegin\n  if n > 0 then\n    loop\n      delete from t;\n      exit;\n    end loop;\n"
                "  end if;\nend"
            ),
            "void",
            [(5, "DELETE FROM t")],
        ),
        (
            "declare n int;\nbegin\n  with d as (delete from t returning 1) select count(*) into n from d;\nend",
            "void",
            [(3, "DELETE FROM t RETURNING 1")],
        ),
        (
            "declare r record;\nbegin\n  for r in update t set x = 2 returning * loop null; end loop;\nend",
            "void",
            [(3, "UPDATE t SET x = 2 RETURNING *")],
        ),
        (
            "begin\n  return query with d as (delete from t returning id) select id from d;\nend",
            "setof int",
            [(2, "DELETE FROM t RETURNING id")],
        ),
        (
            "declare c cursor for select * from t;\nbegin\n  open c; update t set x = 1 where current of c;\nend",
            "void",
            [],
        ),
        ("begin\n  delete from t;\n  return null;\nend", "trigger", [(2, "DELETE FROM t")]),
        # EXECUTE of a constant is checked like any statement...
        (
            "begin\n  execute 'delete from t';\n  execute $q$update t set x = 1 where id = 2$q$;\nend",
            "void",
            [(2, "DELETE FROM t")],
        ),
    ],
)
def test_checker_on_plpgsql_bodies(body: str, returns: str, flagged: list[tuple[int, str]]) -> None:
    report = check_function("plpgsql", body, plpgsql(body, returns))
    assert [(f.line, f.statement) for f in report.offenders] == flagged
    assert report.dynamic == []


def test_checker_reads_types_from_other_schemas_and_reports_statements_as_written() -> None:
    body = (
        "\ndeclare\n  s private.settings;\n  r auth.users;\nbegin\n"
        "  update private.settings set x = 1 returning * into s;\nend\n"
    )
    definition = (
        "CREATE OR REPLACE FUNCTION private.f(a private.settings)\n RETURNS SETOF private.settings\n"
        f" LANGUAGE plpgsql\nAS $function${body}$function$\n"
    )
    report = check_function("plpgsql", body, definition)
    assert [(f.line, f.statement) for f in report.offenders] == [(6, "UPDATE private.settings SET x = 1 RETURNING *")]


def test_checker_notes_dynamic_sql_without_judging_it() -> None:
    # ...SQL built at run time cannot be read statically: listed as a note, neither passed nor failed.
    body = (
        "declare r record;\nbegin\n  execute format('delete from %I', 't');\n"
        "  for r in execute 'select * from ' || 't' loop null; end loop;\nend"
    )
    report = check_function("plpgsql", body, plpgsql(body))
    assert report.offenders == []
    assert [(f.line, f.statement) for f in report.dynamic] == [
        (3, "EXECUTE format('delete from %I', 't')"),
        (4, "EXECUTE 'select * from ' || 't'"),
    ]


def test_checker_refuses_languages_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="plv8"):
        check_function("plv8", "plv8.execute('delete from t')", "")
