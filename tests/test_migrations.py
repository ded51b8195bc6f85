"""The migrations read as the source of truth: after the production baseline each function,
trigger and policy is created in exactly one migration (later ones change it only with CREATE OR
REPLACE or ALTER, never inside the squashed set), and every error a function raises carries
an errcode and a documented keyword in `detail` (docs/errors.md), so that callers never parse
message text. Both checks parse the SQL with pglast (Postgres' own parser, plpgsql included);
each is shown to fail on a small bad example first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pglast import ast, parse_sql
from pglast.enums import FunctionParameterMode, ObjectType
from pglast.parser import parse_plpgsql_json

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = sorted((ROOT / "supabase" / "migrations").glob("*.sql"))
BASELINE = "20261125090100"
#: The last migration of the set squashed before the first production push (issue 13).
SQUASHED_UPTO = "20261129130000"
ERRORS_DOC = ROOT / "docs" / "errors.md"

# PLpgSQL_raise_option.opt_type (plpgsql.h): errcode, message, detail, hint, ...
RAISE_ERRCODE, RAISE_DETAIL = 0, 2
ELOG_ERROR = 21


def after_baseline() -> list[Path]:
    return [p for p in MIGRATIONS if p.name.split("_", 1)[0] > BASELINE]


def _qualified(names: list[ast.String] | tuple[ast.String, ...]) -> str:
    return ".".join(n.sval for n in names)


def _type_name(t: ast.TypeName) -> str:
    return _qualified(t.names) + ("[]" if t.arrayBounds else "")


def definitions(sql: str) -> Iterator[tuple[str, str]]:
    """(key, "create" | "replace" | "drop") of each function, trigger and policy a script defines or drops."""
    for raw in parse_sql(sql):
        stmt = raw.stmt
        if isinstance(stmt, ast.CreateFunctionStmt):
            args = [
                _type_name(p.argType) for p in stmt.parameters or () if p.mode != FunctionParameterMode.FUNC_PARAM_TABLE
            ]
            yield (f"function {_qualified(stmt.funcname)}({', '.join(args)})", "replace" if stmt.replace else "create")
        elif isinstance(stmt, ast.CreateTrigStmt):
            yield (
                f"trigger {stmt.trigname} on {stmt.relation.schemaname}.{stmt.relation.relname}",
                "replace" if stmt.replace else "create",
            )
        elif isinstance(stmt, ast.CreatePolicyStmt):
            yield f"policy {stmt.policy_name!r} on {stmt.table.schemaname}.{stmt.table.relname}", "create"
        elif isinstance(stmt, ast.DropStmt) and stmt.removeType == ObjectType.OBJECT_FUNCTION:
            for obj in stmt.objects:
                args = [_type_name(a) for a in obj.objargs or ()]
                yield f"function {_qualified(obj.objname)}({', '.join(args)})", "drop"
        elif isinstance(stmt, ast.DropStmt) and stmt.removeType in {
            ObjectType.OBJECT_TRIGGER,
            ObjectType.OBJECT_POLICY,
        }:
            for names in stmt.objects:
                *table, obj_name = (n.sval for n in names)
                relation = ".".join(table if len(table) == 2 else ["public", *table])
                if stmt.removeType == ObjectType.OBJECT_TRIGGER:
                    yield f"trigger {obj_name} on {relation}", "drop"
                else:
                    yield f"policy {obj_name!r} on {relation}", "drop"


def definition_problems(scripts: dict[str, str], squashed_upto: str = SQUASHED_UPTO) -> list[str]:
    """After the baseline every object is created (plain CREATE) in one migration only. Within the
    squashed set nothing is defined twice; a later migration changes an object with CREATE OR
    REPLACE (or ALTER, or DROP and CREATE when its signature changes), and only an object an
    earlier migration created."""
    created: dict[str, str] = {}
    problems = []
    for name in sorted(scripts):
        version = name.split("_", 1)[0]
        for key, kind in dict.fromkeys(definitions(scripts[name])):
            first = created.get(key)
            if kind == "drop":
                created.pop(key, None)
            elif version <= BASELINE:
                created.setdefault(key, name)  # before the baseline, CREATE OR REPLACE also creates
            elif first is None:
                if kind == "replace":
                    problems.append(f"{name}: replaces {key}, which no earlier migration creates")
                created[key] = name
            elif kind == "create":
                problems.append(f"{key}: created in {first} and again in {name}")
            elif version <= squashed_upto and first.split("_", 1)[0] > BASELINE:
                problems.append(f"{key}: defined in {first} and again in {name}, both in the squashed set")
    return problems


def _function_sources(sql: str) -> Iterator[tuple[str, str]]:
    """(name, full CREATE FUNCTION text) of each plpgsql function in a script."""
    for raw in parse_sql(sql):
        stmt = raw.stmt
        if not isinstance(stmt, ast.CreateFunctionStmt):
            continue
        options = {o.defname: o.arg for o in stmt.options}
        if getattr(options.get("language"), "sval", None) != "plpgsql":
            continue
        source = sql[raw.stmt_location : raw.stmt_location + raw.stmt_len]
        # pglast's plpgsql parser resolves declared types only in pg_catalog and public; which
        # schema a type is in does not matter for what is checked here (storage.objects: 20261129170100).
        yield _qualified(stmt.funcname), re.sub(r"\b(private|archive|storage)\.", "public.", source)


def _raises(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        if "PLpgSQL_stmt_raise" in node:
            yield node["PLpgSQL_stmt_raise"]
        for value in node.values():
            yield from _raises(value)
    elif isinstance(node, list):
        for item in node:
            yield from _raises(item)


def raise_problems(sql: str, keywords: set[str]) -> list[str]:
    """Each RAISE EXCEPTION lacking an errcode, or a literal detail keyword from the table."""
    problems = []
    for name, source in _function_sources(sql):
        for r in _raises(json.loads(parse_plpgsql_json(source))):
            if r.get("elog_level") != ELOG_ERROR or "options" not in r:
                continue  # a bare RAISE re-throws; notices are not refusals
            opts = {
                o["PLpgSQL_raise_option"]["opt_type"]: o["PLpgSQL_raise_option"]["expr"]["PLpgSQL_expr"]["query"]
                for o in r["options"]
            }
            detail = opts.get(RAISE_DETAIL, "")
            keyword = detail[1:-1] if re.fullmatch(r"'[a-z_]+'", detail) else None
            if RAISE_ERRCODE not in opts:
                problems.append(f"{name} line {r['lineno']}: no errcode")
            elif keyword is None:
                problems.append(f"{name} line {r['lineno']}: detail is not a literal keyword ({detail or 'none'})")
            elif keyword not in keywords:
                problems.append(f"{name} line {r['lineno']}: keyword {keyword!r} is not in docs/errors.md")
    return problems


def documented_keywords() -> set[str]:
    return set(re.findall(r"^\| [0-9A-Z]{5} \| `([a-z_]+)` \|", ERRORS_DOC.read_text(), flags=re.M))


# -- the checks catch what they are for --------------------------------------------------------
FUNCTION_SQL = "create function private.f(a uuid, b text default 'x') returns int language sql as $$ select 1 $$;"


def test_definition_checker_flags_an_object_created_twice() -> None:
    found = definition_problems({"20261201000001_a.sql": FUNCTION_SQL, "20261201000002_b.sql": FUNCTION_SQL})
    assert found == [
        "function private.f(uuid, text): created in 20261201000001_a.sql and again in 20261201000002_b.sql"
    ]


def test_definition_checker_allows_a_later_replace_but_not_one_inside_the_squash_or_of_nothing() -> None:
    replace = FUNCTION_SQL.replace("create", "create or replace")
    assert definition_problems({"20261201000001_a.sql": FUNCTION_SQL, "20261201000002_b.sql": replace}) == []
    inside = definition_problems({"20261129110000_a.sql": FUNCTION_SQL, "20261129120000_b.sql": replace})
    assert len(inside) == 1 and "both in the squashed set" in inside[0]
    orphan = definition_problems({"20261201000002_b.sql": replace})
    assert len(orphan) == 1 and "which no earlier migration creates" in orphan[0]
    # an object of the production baseline may be replaced once, even inside the squash
    assert definition_problems({"20261125090000_base.sql": replace, "20261129110000_a.sql": replace}) == []


def test_definition_checker_allows_drop_and_create_of_a_changed_signature() -> None:
    drop = "drop function private.f(uuid, text);"
    assert (
        definition_problems({"20261201000001_a.sql": FUNCTION_SQL, "20261201000002_b.sql": drop + FUNCTION_SQL}) == []
    )


def test_definition_checker_allows_drop_and_create_of_a_trigger_or_policy() -> None:
    trigger = "create trigger t after insert on public.x for each row execute function private.g();"
    policy = 'create policy "p" on public.x for select to authenticated using (true);'
    first = {"20261201000001_a.sql": trigger + policy}
    again = {"20261201000002_b.sql": trigger + policy}
    assert len(definition_problems(first | again)) == 2  # created twice: both flagged
    dropped = {"20261201000002_b.sql": 'drop trigger t on public.x; drop policy "p" on x;' + trigger + policy}
    assert definition_problems(first | dropped) == []


def test_definition_checker_tells_overloads_triggers_and_policies_apart() -> None:
    scripts = {
        "20261201000001_a.sql": FUNCTION_SQL
        + "create trigger t before update on public.x for each row execute function private.g();"
        'create policy "p" on public.x for select to authenticated using (true);',
        "20261201000002_b.sql": FUNCTION_SQL.replace("b text", "b integer")
        + "create trigger t before update on public.y for each row execute function private.g();"
        'create policy "p" on public.y for select to authenticated using (true);',
    }
    assert definition_problems(scripts) == []
    scripts["20261201000003_c.sql"] = 'create policy "p" on public.x for insert to authenticated with check (true);'
    assert definition_problems(scripts) == [
        "policy 'p' on public.x: created in 20261201000001_a.sql and again in 20261201000003_c.sql"
    ]


@pytest.mark.parametrize(
    ("raise_sql", "expected"),
    [
        ("raise exception using errcode = '22023', message = 'm', detail = 'invalid_value'", []),
        ("raise exception using errcode = '22023', message = 'm'", ["detail is not a literal keyword (none)"]),
        ("raise exception using message = 'm', detail = 'invalid_value'", ["no errcode"]),
        ("raise exception using errcode = '22023', message = 'm', detail = 'made_up'", ["'made_up' is not in docs"]),
        ("raise exception using errcode = '22023', message = 'm', detail = format('%s', 1)", ["not a literal keyword"]),
        ("raise notice 'just saying'", []),
    ],
)
def test_raise_checker(raise_sql: str, expected: list[str]) -> None:
    sql = f"create function private.f() returns void language plpgsql as $$ begin {raise_sql}; end $$;"
    problems = raise_problems(sql, {"invalid_value"})
    assert len(problems) == len(expected) and all(e in p for e, p in zip(expected, problems, strict=True)), problems


# -- the migrations ------------------------------------------------------------------------------
def test_each_function_trigger_and_policy_is_created_in_one_migration_after_the_baseline() -> None:
    scripts = {p.name: p.read_text() for p in MIGRATIONS}
    assert len(after_baseline()) > 20
    assert sum(1 for p in after_baseline() for _ in definitions(scripts[p.name])) > 60  # the parser sees them
    assert definition_problems(scripts) == []


def test_every_raise_has_an_errcode_and_a_documented_keyword() -> None:
    keywords = documented_keywords()
    assert {"not_found", "window_closed", "invalid_value"} <= keywords
    problems = [f"{p.name}: {problem}" for p in MIGRATIONS for problem in raise_problems(p.read_text(), keywords)]
    assert problems == []
    checked = sum(
        1
        for p in MIGRATIONS
        for _, src in _function_sources(p.read_text())
        for _ in _raises(json.loads(parse_plpgsql_json(src)))
    )
    assert checked > 50  # the walk really reaches the raises


def test_keywords_used_by_the_migrations_are_all_documented_and_used() -> None:
    used = set()
    for p in after_baseline():
        used |= set(re.findall(r"detail = '([a-z_]+)'", p.read_text()))
    reserved = {"too_many_tenants_with_phone", "invalid_display_name"}
    assert used <= documented_keywords()
    assert documented_keywords() - reserved <= used, "a documented keyword no function raises"
