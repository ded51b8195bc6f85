"""A LOCAL TEST STAND-IN for Supabase's Data API (PostgREST). Not PostgREST; never deploy it.

PostgREST cannot be installed on these machines, yet the landlord client (app/client) must be
proven end to end, over real HTTP, through supabase-py, under RLS. This module serves the small
part of PostgREST's HTTP interface that the client uses, with PostgREST's semantics, on
`/rest/v1/...` like a local Supabase stack (scripts/dataapi: http://127.0.0.1:54321):

* `GET /rest/v1/<table or view>`: `select` (plain column names and `*` only), filters `eq`,
  `neq`, `lt`, `gt`, `lte`, `gte`, `in.(...)`, `is.null|not_null|true|false|unknown`, each
  optionally negated with `not.`, logic trees `or=(...)` / `and=(...)` (nested, `not.` too),
  `order=col[.asc|.desc][.nullsfirst|.nullslast],...`, `limit`/`offset` (capped at max_rows),
  `Prefer: count=exact` -> `Content-Range` and 200/206/416 as PostgREST answers them, and
  `Accept: application/vnd.pgrst.object+json` (single object or 406 PGRST116).
* `POST /rest/v1/rpc/<function>` with a JSON object of named arguments: calls
  `public.<function>(arg => value, ...)`; void -> 204, scalar -> the JSON value, composite -> an
  object, SETOF / TABLE -> an array.

Everything else (writes to tables, embedding, casts, aliases, aggregates, other operators, GET on
/rpc, Range headers, OpenAPI) is refused with a PostgREST-shaped 4xx, never half-supported.

Security model, as in PostgREST:

* The caller is who the JWT says. `Authorization: Bearer <jwt>` (or, like Supabase's gateway,
  the `apikey` header when there is no Authorization) is verified with HS256 and the secret in
  ZR_JWT_SECRET (with ZR_ENV=development only, which scripts/dataapi sets, the Supabase CLI's
  local secret by default, so the CLI's well-known local `anon` and `service_role` keys verify;
  the same rule as the service's, app.config.secret_from_env). `alg` other than HS256
  (including `none`), a bad signature, `exp` in the past, `nbf`/`iat` in the future, or an
  `aud` that is not ZR_JWT_AUD -> 401 PGRST301/PGRST303. The `role` claim must be anon,
  authenticated or service_role. No token at all -> anon.
* Each request is one transaction on a pooled connection made as the `authenticator` login
  role (which can become nothing but the three API roles): GETs are READ ONLY; then the role's
  own settings (`alter role ... set statement_timeout`), `set local role <role>`, and
  `set_config('request.jwt.claims' | 'request.method' | 'request.path' | 'request.headers' |
  'request.cookies', ..., true)` exactly as PostgREST does, then the query. Postgres (grants and
  RLS) decides everything; this process filters nothing itself.
* Only schema `public` is reachable. Every identifier in the URL is looked up in the catalog
  (tables, views and functions of `public`; columns of that relation) and then quoted with
  psycopg.sql.Identifier using the catalog's spelling; every value is a bind parameter cast to
  the catalog type; operators and keywords come from fixed tables. Anything unknown is a 4xx.
* Errors are PostgREST's JSON `{"code", "details", "hint", "message"}` with PostgREST's status
  mapping (src/PostgREST/Error.hs, mapSQLtoHTTP): e.g. 42501 -> 403 (401 for anon), 23505 ->
  409, P0001 -> 400, other P0* (P0002) -> 500, 55* -> 500, 57* -> 500 (57P01 -> 503), 08* ->
  503, 42883/42P01 -> 404, anything else -> 400.

Run: `scripts/dataapi` (or `python -m app.local.dataapi --port 0` for a free port).
See docs/dataapi.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import jwt
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import tuple_row
from psycopg.types.json import Json, Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout
from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from ..config import default_database_url
from ..logging_setup import configure_logging, log_event
from .serving import LocalServer
from .tokens import AUTHENTICATED_AUDIENCE, jwt_secret

log = logging.getLogger("app.local.dataapi")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 54321
REST_PREFIX = "/rest/v1/"
#: JWT role claim -> Postgres role. Nothing else is ever passed to `set local role`.
API_ROLES = {"anon": "anon", "authenticated": "authenticated", "service_role": "service_role"}
ANON_ROLE = "anon"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
SINGULAR_MEDIA_TYPE = "application/vnd.pgrst.object+json"
_ACCEPTABLE_MEDIA_TYPES = {"*/*", "application/*", "application/json", SINGULAR_MEDIA_TYPE}
_MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: no longer name can exist in the catalog
_MAX_FILTERS = 64
_MAX_TREE_DEPTH = 8
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ORDER_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\.(asc|desc))?(?:\.(nullsfirst|nullslast))?\Z")
_UINT_RE = re.compile(r"[0-9]{1,18}\Z")
_RESERVED_PARAMS = {"select", "order", "limit", "offset", "or", "and", "not.or", "not.and", "columns", "on_conflict"}
_COMPARISONS = {"eq": "=", "neq": "<>", "lt": "<", "gt": ">", "lte": "<=", "gte": ">="}
_IS_VALUES = {
    "null": "is null",
    "not_null": "is not null",
    "true": "is true",
    "false": "is false",
    "unknown": "is unknown",
}
_RELKINDS = ("r", "v", "m", "f", "p")


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataApiConfig:
    """Where the stand-in connects and how it verifies tokens. See `from_env` for the variables."""

    database_url: str
    jwt_secret: str
    jwt_audience: str = AUTHENTICATED_AUDIENCE
    schema: str = "public"  # the one exposed schema (supabase/config.toml: api.schemas)
    extra_search_path: tuple[str, ...] = ("public", "extensions")
    max_rows: int = 1000  # supabase/config.toml: api.max_rows
    max_body_bytes: int = 1024 * 1024
    pool_min: int = 1
    pool_max: int = 10
    pool_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if len(self.jwt_secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters (as PostgREST requires)")
        if self.max_rows < 1:
            raise ValueError("max_rows must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DataApiConfig:
        """ZR_DATAAPI_DATABASE_URL, or DATABASE_URL with the login role swapped for
        ZR_DATAAPI_DB_USER (default authenticator) / ZR_DATAAPI_DB_PASSWORD (default postgres,
        as supabase/local/platform.sql creates it); ZR_JWT_SECRET; ZR_JWT_AUD; ZR_DATAAPI_MAX_ROWS."""
        env = dict(os.environ if env is None else env)
        url = env.get("ZR_DATAAPI_DATABASE_URL") or authenticator_url(
            default_database_url(env),
            env.get("ZR_DATAAPI_DB_USER", "authenticator"),
            env.get("ZR_DATAAPI_DB_PASSWORD", "postgres"),
        )
        return cls(
            database_url=url,
            jwt_secret=jwt_secret(env),
            jwt_audience=env.get("ZR_JWT_AUD", AUTHENTICATED_AUDIENCE),
            max_rows=int(env.get("ZR_DATAAPI_MAX_ROWS", "1000")),
        )


def authenticator_url(database_url: str, user: str = "authenticator", password: str = "postgres") -> str:
    """The same database as `database_url`, reached as the login role PostgREST uses."""
    params = conninfo_to_dict(database_url)
    params.update(user=user, password=password)
    return make_conninfo("", **params)


# -- errors ------------------------------------------------------------------------------------


class ApiError(Exception):
    """An answer in PostgREST's error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.hint = details, hint
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}


def parse_error(what: str, value: str, details: str) -> ApiError:
    return ApiError(400, "PGRST100", f"failed to parse {what} ({value})", details)


def status_for_sqlstate(code: str, authed: bool, message: str = "") -> int:
    """PostgREST's mapSQLtoHTTP (src/PostgREST/Error.hs), in the same order."""
    if code.startswith("08"):
        return 503
    if code.startswith("09"):
        return 500
    if code.startswith(("0L", "0P")):
        return 403
    if code in ("23503", "23505"):
        return 409
    if code == "25006":
        return 405
    if code == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if code == "22023":
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    if code.startswith(("25", "2D", "38", "39", "3B", "40")):
        return 500
    if code.startswith("28"):
        return 403
    if code == "53400":
        return 500
    if code.startswith("53"):
        return 503
    if code.startswith(("54", "55")):
        return 500
    if code == "57P01":
        return 503
    if code.startswith(("57", "58", "F0", "HV")):
        return 500
    if code == "P0001":
        return 400
    if code.startswith(("P0", "XX")):
        return 500
    if code in ("42883", "42P01"):
        return 404
    if code == "42P17":
        return 500
    if code == "42501":
        return 403 if authed else 401
    if code.startswith("PT") and code[2:].isdigit() and 100 <= int(code[2:]) <= 599:
        return int(code[2:])
    return 400


def _jwt_error(code: str, message: str) -> ApiError:
    return ApiError(
        401, code, message, headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'}
    )


# -- authentication ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Auth:
    role: str  # one of API_ROLES
    claims: dict[str, Any]

    @property
    def authed(self) -> bool:
        """PostgREST's `authRole /= db-anon-role`: decides 401 vs 403 for 42501."""
        return self.role != ANON_ROLE


def authenticate(headers: Headers | Mapping[str, str], config: DataApiConfig) -> Auth:
    """Who the request is, from its JWT, as PostgREST decides it."""
    authorization = headers.get("Authorization")
    if authorization is None:
        token = headers.get("apikey")  # Supabase's gateway uses the apikey when Authorization is absent
        if token is None:
            return Auth(ANON_ROLE, {"role": ANON_ROLE})
    else:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise _jwt_error("PGRST301", "Authorization must be 'Bearer <JWT>'")
        token = token.strip()
    if not token:
        raise _jwt_error("PGRST301", "Empty JWT is sent in Authorization header")
    parts = token.split(".")
    if len(parts) != 3:
        raise _jwt_error("PGRST301", f"Expected 3 parts in JWT; got {len(parts)}")
    try:
        claims = jwt.decode(
            token,
            config.jwt_secret,
            algorithms=["HS256"],
            options={"verify_aud": False, "require": []},
        )
    except jwt.ExpiredSignatureError:
        raise _jwt_error("PGRST303", "JWT expired") from None
    except jwt.ImmatureSignatureError:
        raise _jwt_error("PGRST303", "JWT not yet valid") from None
    except jwt.InvalidAlgorithmError:
        raise _jwt_error("PGRST301", "Wrong or unsupported encoding algorithm") from None
    except jwt.InvalidSignatureError:
        raise _jwt_error("PGRST301", "JWT cryptographic operation failed") from None
    except jwt.InvalidTokenError:
        raise _jwt_error("PGRST301", "JWT couldn't be decoded") from None
    if not isinstance(claims, dict):
        raise _jwt_error("PGRST303", "Parsing claims failed")
    if "aud" in claims:
        aud = claims["aud"]
        auds = [aud] if isinstance(aud, str) else aud
        if not isinstance(auds, list) or not all(isinstance(a, str) for a in auds):
            raise _jwt_error("PGRST303", "The JWT 'aud' claim must be a string or an array of strings")
        if config.jwt_audience not in auds:
            raise _jwt_error("PGRST303", "JWT not in audience")
    role = claims.get("role")
    if not isinstance(role, str) or role not in API_ROLES:
        raise _jwt_error("PGRST303", "JWT 'role' claim must be one of anon, authenticated, service_role")
    return Auth(API_ROLES[role], claims)


# -- the catalog -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgType:
    schema: str
    name: str
    oid: int

    @property
    def ident(self) -> sql.Composable:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))

    @property
    def is_json(self) -> bool:
        return self.schema == "pg_catalog" and self.name in ("json", "jsonb")


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    columns: dict[str, PgType]

    @property
    def ident(self) -> sql.Composable:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    args: tuple[tuple[str, PgType], ...]  # input arguments, in order
    required: int  # how many leading arguments have no default
    returns_set: bool
    return_kind: str  # void | scalar | composite

    @property
    def ident(self) -> sql.Composable:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))


_REL_SQL = """
select c.oid, c.relname from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where n.nspname = %s and c.relname = %s and c.relkind = any(%s::"char"[])
"""
_COLUMNS_SQL = """
select a.attname, tn.nspname, t.typname, t.oid from pg_catalog.pg_attribute a
  join pg_catalog.pg_type t on t.oid = a.atttypid
  join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace
 where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
 order by a.attnum
"""
_FUNCTIONS_SQL = """
select p.proname, p.proargnames, p.proargmodes, p.proargtypes::oid[] as in_types, p.pronargdefaults,
       p.proretset, rt.typname as ret_name, rtn.nspname as ret_schema, rt.typtype as ret_typtype
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  join pg_catalog.pg_type rt on rt.oid = p.prorettype
  join pg_catalog.pg_namespace rtn on rtn.oid = rt.typnamespace
 where n.nspname = %s and p.proname = %s and p.prokind = 'f'
"""
_TYPES_SQL = """
select t.oid, tn.nspname, t.typname from pg_catalog.pg_type t
  join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace
 where t.oid = any(%s::oid[])
"""


def _fetch(conn: psycopg.Connection, query: Any, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows as tuples whatever the connection's row factory."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else []


def _name_can_exist(name: str) -> bool:
    return bool(name) and "\x00" not in name and len(name.encode("utf-8")) <= _MAX_IDENTIFIER_BYTES


def find_relation(conn: psycopg.Connection, schema: str, name: str) -> Relation:
    rows = _fetch(conn, _REL_SQL, [schema, name, list(_RELKINDS)]) if _name_can_exist(name) else []
    row = rows[0] if rows else None
    if row is None:
        raise ApiError(
            404,
            "PGRST205",
            f"Could not find the table '{schema}.{name}' in the schema cache",
            hint="the local Data API exposes tables and views of the public schema only",
        )
    oid, relname = row
    columns = {attname: PgType(nsp, typ, toid) for attname, nsp, typ, toid in _fetch(conn, _COLUMNS_SQL, [oid])}
    return Relation(schema, relname, columns)


def find_function(conn: psycopg.Connection, schema: str, name: str, keys: Sequence[str]) -> Function:
    """The overload of schema.name whose named input arguments fit `keys`, as PostgREST picks it."""
    rows = _fetch(conn, _FUNCTIONS_SQL, [schema, name]) if _name_can_exist(name) else []
    candidates: list[Function] = []
    type_oids = {oid for row in rows for oid in (row[3] or [])}
    types = (
        {oid: PgType(nsp, typ, oid) for oid, nsp, typ in _fetch(conn, _TYPES_SQL, [list(type_oids)])}
        if type_oids
        else {}
    )
    wanted = set(keys)
    for proname, argnames, argmodes, in_types, n_defaults, retset, ret_name, ret_schema, ret_typtype in rows:
        in_types = list(in_types or [])
        modes = list(argmodes or ["i"] * len(in_types))
        names = list(argnames or [""] * len(modes))
        in_names = [n for n, m in zip(names, modes, strict=True) if m in ("i", "b", "v")]
        if len(in_names) != len(in_types) or any(not n for n in in_names):
            continue  # unnamed arguments cannot be passed by name
        if ret_schema == "pg_catalog" and ret_name in ("trigger", "event_trigger", "internal"):
            continue
        if any(types.get(oid) is None or types[oid].name == "internal" for oid in in_types):
            continue
        required = len(in_names) - (n_defaults or 0)
        if not wanted <= set(in_names) or not set(in_names[:required]) <= wanted:
            continue
        if ret_schema == "pg_catalog" and ret_name == "void":
            kind = "void"
        elif ret_typtype == "c" or (ret_typtype == "p" and ret_name == "record"):
            kind = "composite"
        else:
            kind = "scalar"
        candidates.append(
            Function(
                schema,
                proname,
                tuple(zip(in_names, (types[o] for o in in_types), strict=True)),
                required,
                bool(retset),
                kind,
            )
        )
    if not candidates:
        shown = ", ".join(sorted(keys))
        raise ApiError(
            404,
            "PGRST202",
            f"Could not find the function {schema}.{name}({shown}) in the schema cache",
            f"Searched for the function {schema}.{name} with parameters {shown or '(none)'}, "
            "but no matches were found in the schema cache.",
            "the local Data API exposes functions of the public schema only, called with named arguments",
        )
    if len(candidates) > 1:
        exact = [f for f in candidates if {a for a, _ in f.args} == wanted]
        if len(exact) != 1:
            raise ApiError(
                300,
                "PGRST203",
                f"Could not choose the best candidate function for {schema}.{name}",
                hint="Try renaming the parameters or the function itself in the database so "
                "function overloading can be resolved",
            )
        candidates = exact
    return candidates[0]


# -- URL grammar -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    column: str
    op: str  # eq neq lt gt lte gte in is
    value: Any  # str, or list[str] for `in`
    negated: bool = False


@dataclass(frozen=True)
class Group:
    kind: str  # and | or
    items: tuple[Any, ...]
    negated: bool = False


def parse_select(value: str) -> list[str] | None:
    """Plain column names and `*`; None means `*`. Everything richer is refused (PGRST100)."""
    items = [part.strip() for part in value.split(",")]
    if not value.strip() or any(not item for item in items):
        raise parse_error("select parameter", value, "empty column name")
    if items == ["*"]:
        return None
    for item in items:
        if item == "*" or not _IDENT_RE.match(item):
            raise parse_error(
                "select parameter",
                value,
                f'unsupported select item "{item}": the local Data API stand-in accepts only '
                "plain column names or a lone * (no embedding, aliases, casts, JSON paths or aggregates)",
            )
    return items


def parse_order(value: str) -> list[tuple[str, str | None, str | None]]:
    terms = []
    for term in value.split(","):
        match = _ORDER_RE.match(term.strip())
        if not match:
            raise parse_error(
                "order", value, f'unsupported order term "{term}": expected column[.asc|.desc][.nullsfirst|.nullslast]'
            )
        terms.append((match.group(1), match.group(2), match.group(3)))
    return terms


def parse_count(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    if what == "limit" and re.fullmatch(r"-[0-9]{1,18}", value):
        raise ApiError(
            416, "PGRST103", "Requested range not satisfiable", "Limit should be greater than or equal to zero."
        )
    if not _UINT_RE.match(value):
        raise parse_error(f"{what} parameter", value, "expected a non-negative integer")
    return int(value)


def _parse_quoted(text: str, i: int) -> tuple[str, int]:
    """A double-quoted value starting at text[i] == '"'; backslash escapes the next character."""
    out, i = [], i + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise ValueError("unterminated double quote")


def _parse_list(text: str, i: int) -> tuple[list[str], int]:
    """`(a,"b,c",d)` starting at text[i] == '('; returns the elements and the index after ')'."""
    if i >= len(text) or text[i] != "(":
        raise ValueError("expected ( to start an in list")
    items: list[str] = []
    i += 1
    if i < len(text) and text[i] == ")":
        return items, i + 1
    while True:
        if i < len(text) and text[i] == '"':
            item, i = _parse_quoted(text, i)
        else:
            start = i
            while i < len(text) and text[i] not in ",)":
                i += 1
            item = text[start:i]
        items.append(item)
        if i >= len(text):
            raise ValueError("unterminated in list")
        if text[i] == ")":
            return items, i + 1
        i += 1  # the comma


def parse_operation(column: str, text: str) -> Leaf:
    """`[not.]op.value` of a top-level filter (values are taken verbatim, lists may be quoted)."""
    negated = text.startswith("not.")
    if negated:
        text = text[4:]
    op, sep, rest = text.partition(".")
    if not sep:
        raise parse_error("filter", text, 'expected "operator.value", e.g. eq.5')
    if op == "in":
        try:
            items, end = _parse_list(rest, 0)
        except ValueError as exc:
            raise parse_error("filter", text, str(exc)) from None
        if end != len(rest):
            raise parse_error("filter", text, "unexpected text after the in list")
        return Leaf(column, op, items, negated)
    if op == "is":
        if rest.lower() not in _IS_VALUES:
            raise parse_error("filter", text, "is takes null, not_null, true, false or unknown")
        return Leaf(column, op, rest.lower(), negated)
    if op not in _COMPARISONS:
        raise parse_error(
            "filter",
            text,
            f'unsupported operator "{op}": the local Data API stand-in supports eq, neq, lt, gt, lte, gte, in and is',
        )
    return Leaf(column, op, rest, negated)


class _TreeParser:
    """PostgREST's logic trees: `(a.eq.1,and(b.gt.2,c.not.is.null),not.or(...))`."""

    def __init__(self, text: str):
        self.text, self.i = text, 0

    def parse(self) -> tuple[Any, ...]:
        items = self._group_body(depth=1)
        if self.i != len(self.text):
            raise ValueError(f"unexpected text at position {self.i + 1}")
        return items

    def _starts(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.i)

    def _group_body(self, depth: int) -> tuple[Any, ...]:
        if depth > _MAX_TREE_DEPTH:
            raise ValueError("logic tree nested too deeply")
        if not self._starts("("):
            raise ValueError(f"expected ( at position {self.i + 1}")
        self.i += 1
        items = []
        while True:
            items.append(self._item(depth))
            if self._starts(","):
                self.i += 1
                continue
            if self._starts(")"):
                self.i += 1
                return tuple(items)
            raise ValueError(f"expected , or ) at position {self.i + 1}")

    def _item(self, depth: int) -> Any:
        negated = False
        for kind in ("and", "or"):
            for prefix in (f"not.{kind}(", f"{kind}("):
                if self._starts(prefix):
                    negated = prefix.startswith("not.")
                    self.i += len(prefix) - 1
                    return Group(kind, self._group_body(depth + 1), negated)
        # field
        if self._starts('"'):
            column, self.i = _parse_quoted(self.text, self.i)
        else:
            match = re.compile(r"[A-Za-z0-9_]+").match(self.text, self.i)
            if not match:
                raise ValueError(f"expected a column name at position {self.i + 1}")
            column, self.i = match.group(0), match.end()
        if not self._starts("."):
            raise ValueError(f"expected . after {column!r}")
        self.i += 1
        if self._starts("not."):
            negated, self.i = True, self.i + 4
        match = re.compile(r"[a-z_]+").match(self.text, self.i)
        if not match or not self.text.startswith(".", match.end()):
            raise ValueError(f"expected operator. at position {self.i + 1}")
        op, self.i = match.group(0), match.end() + 1
        if op == "in":
            items, self.i = _parse_list(self.text, self.i)
            return Leaf(column, op, items, negated)
        if self._starts('"'):
            value, self.i = _parse_quoted(self.text, self.i)
        else:
            start = self.i
            while self.i < len(self.text) and self.text[self.i] not in ",)":
                self.i += 1
            value = self.text[start : self.i]
        if op == "is":
            if value.lower() not in _IS_VALUES:
                raise ValueError("is takes null, not_null, true, false or unknown")
            value = value.lower()
        elif op not in _COMPARISONS:
            raise ValueError(f'unsupported operator "{op}"')
        return Leaf(column, op, value, negated)


def parse_logic_tree(key: str, value: str) -> Group:
    negated = key.startswith("not.")
    kind = key[4:] if negated else key
    try:
        items = _TreeParser(value).parse()
    except ValueError as exc:
        raise parse_error("logic tree", value, str(exc)) from None
    return Group(kind, items, negated)


def _undefined_column(relation: Relation, column: str) -> ApiError:
    return ApiError(
        400,
        "42703",
        f"column {relation.name}.{column} does not exist",
        hint="the local Data API looks columns up in the catalog; names are case-sensitive",
    )


def compile_condition(node: Any, relation: Relation, params: list[Any]) -> sql.Composable:
    """SQL for one parsed filter: catalog-checked identifiers, fixed operators, bound values."""
    if isinstance(node, Group):
        joiner = sql.SQL(" and " if node.kind == "and" else " or ")
        inner = sql.SQL("({})").format(joiner.join(compile_condition(n, relation, params) for n in node.items))
        return sql.SQL("not {}").format(inner) if node.negated else inner
    column_type = relation.columns.get(node.column)
    if column_type is None:
        raise _undefined_column(relation, node.column)
    col = sql.Identifier(node.column)
    cond: sql.Composable
    if node.op == "is":
        cond = sql.SQL("{} {}").format(col, sql.SQL(_IS_VALUES[node.value]))
    elif node.op == "in":
        if not node.value:
            cond = sql.SQL("false")
        else:
            params.extend(node.value)
            cond = sql.SQL("{} = any(array[{}])").format(
                col,
                sql.SQL(", ").join(sql.SQL("{}::{}").format(sql.Placeholder(), column_type.ident) for _ in node.value),
            )
    else:
        params.append(node.value)
        cond = sql.SQL("{} {} {}::{}").format(col, sql.SQL(_COMPARISONS[node.op]), sql.Placeholder(), column_type.ident)
    return sql.SQL("not ({})").format(cond) if node.negated else cond


@dataclass(frozen=True)
class ReadPlan:
    relation_name: str
    columns: list[str] | None  # None: *
    filters: list[Any]
    order: list[tuple[str, str | None, str | None]]
    limit: int | None
    offset: int


def plan_read(name: str, args: Iterable[tuple[str, str]]) -> ReadPlan:
    """Parse a GET's query string (before anything touches the database)."""
    seen: dict[str, str] = {}
    filters: list[Any] = []
    for key, value in args:
        if "\x00" in key or "\x00" in value:
            raise parse_error("query string", key, "NUL characters are not allowed")
        if key in _RESERVED_PARAMS:
            if key in seen:
                raise parse_error(f"{key} parameter", value, f"{key} given more than once")
            seen[key] = value
            if key in ("or", "and", "not.or", "not.and"):
                filters.append(parse_logic_tree(key, value))
            elif key in ("columns", "on_conflict"):
                raise parse_error(f"{key} parameter", value, f"{key} applies to writes, which this stand-in refuses")
            continue
        if "." in key or not _IDENT_RE.match(key):
            raise ApiError(
                400,
                "PGRST100",
                f"failed to parse filter ({key})",
                "filters are column=operator.value on a column of the table itself "
                "(embedded resources are not supported by the local Data API stand-in)",
            )
        filters.append(parse_operation(key, value))
    if len(filters) > _MAX_FILTERS:
        raise parse_error("query string", name, f"more than {_MAX_FILTERS} filters")
    return ReadPlan(
        relation_name=name,
        columns=parse_select(seen["select"]) if "select" in seen else None,
        filters=filters,
        order=parse_order(seen["order"]) if "order" in seen else [],
        limit=parse_count(seen.get("limit"), "limit"),
        offset=parse_count(seen.get("offset"), "offset") or 0,
    )


def compile_read(
    plan: ReadPlan, relation: Relation, max_rows: int
) -> tuple[sql.Composable, list[Any], sql.Composable, list[Any], int]:
    """(page query, its params, count query, its params, effective limit)."""
    if plan.columns is None:
        columns: sql.Composable = sql.SQL("*")
    else:
        for c in plan.columns:
            if c not in relation.columns:
                raise _undefined_column(relation, c)
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in plan.columns)
    params: list[Any] = []
    conditions = [compile_condition(f, relation, params) for f in plan.filters]
    where = sql.SQL(" where {}").format(sql.SQL(" and ").join(conditions)) if conditions else sql.SQL("")
    order_terms = []
    for column, direction, nulls in plan.order:
        if column not in relation.columns:
            raise _undefined_column(relation, column)
        term: sql.Composable = sql.Identifier(column)
        if direction:
            term = sql.SQL("{} {}").format(term, sql.SQL(direction))
        if nulls:
            term = sql.SQL("{} {}").format(term, sql.SQL("nulls first" if nulls == "nullsfirst" else "nulls last"))
        order_terms.append(term)
    order = sql.SQL(" order by {}").format(sql.SQL(", ").join(order_terms)) if order_terms else sql.SQL("")
    limit = min(plan.limit, max_rows) if plan.limit is not None else max_rows
    page = sql.SQL(
        "select coalesce(json_agg(_zr_row), '[]')::text, count(*) from "
        "(select {columns} from {relation}{where}{order} limit {limit} offset {offset}) _zr_row"
    ).format(
        columns=columns,
        relation=relation.ident,
        where=where,
        order=order,
        limit=sql.Placeholder(),
        offset=sql.Placeholder(),
    )
    count = sql.SQL("select count(*) from {relation}{where}").format(relation=relation.ident, where=where)
    return page, [*params, limit, plan.offset], count, list(params), limit


def content_range(lower: int, n: int, total: int | None) -> str:
    """PostgREST's Content-Range: `0-24/3573`, `*/0`, `0-24/*`."""
    upper = lower + n - 1
    total_s = "*" if total is None else str(total)
    if total != 0 and lower <= upper:
        return f"{lower}-{upper}/{total_s}"
    return f"*/{total_s}"


def range_status(lower: int, n: int, total: int | None) -> int:
    if total is None:
        return 200
    if lower > total:
        return 416
    if n < total:
        return 206
    return 200


# -- RPC arguments -----------------------------------------------------------------------------


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    return False


def _arg_value(value: Any, pg_type: PgType) -> Any:
    """A JSON argument as a bind parameter for `%s::<type>` (json/jsonb keep their structure)."""
    if value is None:
        return None
    if pg_type.is_json:
        return Jsonb(value) if pg_type.name == "jsonb" else Json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list) and pg_type.name.startswith("_"):
        return value
    return json.dumps(value, separators=(",", ":"))


def compile_call(function: Function, args: Mapping[str, Any]) -> tuple[sql.Composable, list[Any]]:
    params: list[Any] = []
    parts = []
    for name, pg_type in function.args:
        if name in args:
            parts.append(sql.SQL("{} => {}::{}").format(sql.Identifier(name), sql.Placeholder(), pg_type.ident))
            params.append(_arg_value(args[name], pg_type))
    call = sql.SQL("{}({})").format(function.ident, sql.SQL(", ").join(parts))
    if function.return_kind == "void":
        query = sql.SQL("select {}").format(call)
    elif function.returns_set and function.return_kind == "composite":
        query = sql.SQL("select coalesce(json_agg(_zr_row), '[]')::text from {} _zr_row").format(call)
    elif function.returns_set:
        query = sql.SQL("select coalesce(json_agg(_zr_v), '[]')::text from {} _zr_t(_zr_v)").format(call)
    elif function.return_kind == "composite":
        query = sql.SQL("select row_to_json(_zr_row)::text from {} _zr_row").format(call)
    else:
        query = sql.SQL("select to_json({})::text").format(call)
    return query, params


# -- the WSGI application ----------------------------------------------------------------------


def _json_response(status: int, body: Any | str | None, headers: Mapping[str, str] | None = None) -> Response:
    text = body if isinstance(body, str) or body is None else json.dumps(body, separators=(",", ":"))
    resp = Response(text, status=status, headers=dict(headers or {}))
    if text is not None:
        resp.headers["Content-Type"] = JSON_CONTENT_TYPE
    return resp


def _media_types(header: str | None) -> list[str]:
    if not header:
        return ["*/*"]
    return [part.split(";", 1)[0].strip().lower() for part in header.split(",") if part.strip()]


def _prefer(headers: Headers | Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    values = headers.getlist("Prefer") if isinstance(headers, Headers) else [headers.get("Prefer", "")]
    for value in values:
        for part in (value or "").split(","):
            k, _, v = part.strip().partition("=")
            if k:
                out[k.lower()] = v.strip().lower()
    return out


@dataclass
class _Timer:
    start: float = field(default_factory=time.monotonic)

    def ms(self) -> int:
        return int((time.monotonic() - self.start) * 1000)


class DataApi:
    """The WSGI application. Thread-safe: the only shared state is the connection pool."""

    def __init__(self, config: DataApiConfig, pool: ConnectionPool | None = None):
        self.config = config
        self.pool = pool or ConnectionPool(
            conninfo=config.database_url,
            min_size=config.pool_min,
            max_size=config.pool_max,
            timeout=config.pool_timeout_s,
            kwargs={"autocommit": True, "connect_timeout": 5, "application_name": "zenrent-local-dataapi"},
            check=ConnectionPool.check_connection,
            open=False,
            name="zenrent-local-dataapi",
        )
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = self.config.max_body_bytes
        timer = _Timer()
        auth_role = None
        try:
            auth = authenticate(request.headers, self.config)
            auth_role = auth.role
            response = self.dispatch(request, auth)
        except ApiError as err:
            response = self._error(err)
        except RequestEntityTooLarge:
            response = self._error(
                ApiError(413, "PGRST102", "request body is too large", f"at most {self.config.max_body_bytes} bytes")
            )
        except Exception:
            log.exception("%s", "event=dataapi.bug")
            response = self._error(ApiError(500, "PGRSTX00", "internal error in the local Data API stand-in"))
        log_event(
            log,
            "dataapi.request",
            method=request.method,
            path=request.path,
            role=auth_role,
            status=response.status_code,
            code=response.headers.get("Proxy-Status"),
            ms=timer.ms(),
        )
        return response(environ, start_response)

    @staticmethod
    def _error(err: ApiError) -> Response:
        headers = {"Proxy-Status": f"PostgREST; error={err.code}", **err.headers}
        return _json_response(err.status, err.body(), headers)

    # -- routing ---------------------------------------------------------------------------
    def dispatch(self, request: Request, auth: Auth) -> Response:
        path = request.path
        if not path.startswith(REST_PREFIX):
            raise ApiError(404, "PGRST125", "Invalid path specified in request URL")
        rest = path[len(REST_PREFIX) :]
        is_rpc = rest.startswith("rpc/")
        name = rest[4:] if is_rpc else rest
        if not name or "/" in name:
            raise ApiError(404, "PGRST125", "Invalid path specified in request URL")
        profile_header = "Content-Profile" if request.method == "POST" else "Accept-Profile"
        profile = request.headers.get(profile_header)
        if profile is not None and profile != self.config.schema:
            raise ApiError(
                406,
                "PGRST106",
                f"Invalid schema: {profile}",
                hint=f"Only the following schemas are exposed: {self.config.schema}",
            )
        if is_rpc:
            if request.method != "POST":
                raise ApiError(
                    405,
                    "PGRST117",
                    f"Unsupported HTTP method: {request.method}",
                    "the local Data API stand-in calls functions with POST only",
                )
            return self.call(request, auth, name)
        if request.method != "GET":
            raise ApiError(
                405,
                "PGRST117",
                f"Unsupported HTTP method: {request.method}",
                "the local Data API stand-in reads tables (GET) and calls functions (POST /rpc); "
                "landlords write through RPCs",
            )
        return self.read(request, auth, name)

    # -- one transaction per request -------------------------------------------------------
    @staticmethod
    def _begin(conn: psycopg.Connection, read_only: bool) -> None:
        """First statement of the transaction: GETs cannot write, whatever the URL says (as in PostgREST)."""
        if read_only:
            conn.execute("set transaction read only")

    def _impersonate(self, conn: psycopg.Connection, auth: Auth, request: Request) -> None:
        """search_path, the role's own settings, the role, then the request GUCs, as PostgREST does."""
        apply_request_settings(
            conn,
            auth,
            request.method,
            request.path[len(REST_PREFIX) - 1 :],
            request.headers,
            self.config.extra_search_path,
        )

    def _run(self, auth: Auth, work: Any) -> Any:
        try:
            with self.pool.connection() as conn, conn.transaction():
                return work(conn)
        except ApiError:
            raise
        except PoolTimeout:
            raise ApiError(504, "PGRST003", "Timed out acquiring connection from connection pool.") from None
        except psycopg.Error as exc:
            raise self._pg_error(exc, auth) from None

    @staticmethod
    def _pg_error(exc: psycopg.Error, auth: Auth) -> ApiError:
        code = exc.sqlstate
        if not code:
            if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
                return ApiError(503, "PGRST000", "Database connection error. Retrying the connection.")
            return ApiError(400, "PGRST100", f"the request cannot be sent to the database: {exc}")
        diag = exc.diag
        message = diag.message_primary or str(exc)
        status = status_for_sqlstate(code, auth.authed, message)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        return ApiError(status, code, message, diag.message_detail, diag.message_hint, headers)

    # -- GET /rest/v1/<table> --------------------------------------------------------------
    def read(self, request: Request, auth: Auth, name: str) -> Response:
        plan = plan_read(name, request.args.items(multi=True))
        accept = _media_types(request.headers.get("Accept"))
        if not any(m in _ACCEPTABLE_MEDIA_TYPES for m in accept):
            raise ApiError(406, "PGRST107", "None of these media types are available: " + ", ".join(accept))
        singular = SINGULAR_MEDIA_TYPE in accept
        exact_count = _prefer(request.headers).get("count") == "exact"

        def work(conn: psycopg.Connection) -> tuple[str, int, int | None]:
            self._begin(conn, read_only=True)
            relation = find_relation(conn, self.config.schema, name)
            page_sql, page_params, count_sql, count_params, _ = compile_read(plan, relation, self.config.max_rows)
            self._impersonate(conn, auth, request)
            body, n = _fetch(conn, page_sql, page_params)[0]
            total = _fetch(conn, count_sql, count_params)[0][0] if exact_count else None
            return body, n, total

        body, n, total = self._run(auth, work)
        status = range_status(plan.offset, n, total)
        if status == 416:
            raise ApiError(
                416,
                "PGRST103",
                "Requested range not satisfiable",
                f"An offset of {plan.offset} was requested, but there are only {total} rows.",
            )
        headers = {"Content-Range": content_range(plan.offset, n, total)}
        if singular:
            if n != 1:
                raise ApiError(
                    406, "PGRST116", "Cannot coerce the result to a single JSON object", f"The result contains {n} rows"
                )
            body = json.dumps(json.loads(body)[0], separators=(",", ":"))
        return _json_response(status, body, headers)

    # -- POST /rest/v1/rpc/<function> ------------------------------------------------------
    def call(self, request: Request, auth: Auth, name: str) -> Response:
        if list(request.args.keys()):
            raise parse_error(
                "query string",
                request.query_string.decode("latin-1"),
                "the local Data API stand-in does not filter or shape RPC results",
            )
        content_type = (request.mimetype or "application/json").lower()
        raw = request.get_data(cache=False)
        if raw.strip() and content_type != "application/json":
            raise ApiError(415, "PGRST107", f"The Content-Type sent in the request is invalid: {content_type}")
        try:
            args = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "PGRST102", "Empty or invalid json") from None
        if not isinstance(args, dict):
            raise ApiError(400, "PGRST102", "the body must be a JSON object of named arguments")
        if _contains_nul(args):
            raise ApiError(400, "PGRST102", "NUL characters are not allowed in arguments")

        def work(conn: psycopg.Connection) -> tuple[Function, str | None]:
            self._begin(conn, read_only=False)
            function = find_function(conn, self.config.schema, name, list(args))
            query, params = compile_call(function, args)
            self._impersonate(conn, auth, request)
            rows = _fetch(conn, query, params)
            return function, (rows[0][0] if rows else None)

        function, body = self._run(auth, work)
        if function.return_kind == "void":
            return Response(status=204)
        headers = {}
        if function.returns_set:
            n = len(json.loads(body))
            headers["Content-Range"] = f"0-{n - 1}/*" if n else "*/*"
        return _json_response(200, body if body is not None else "null", headers)


def apply_request_settings(
    conn: psycopg.Connection,
    auth: Auth,
    method: str,
    path: str,
    headers: Headers | Mapping[str, str],
    search_path: Sequence[str],
) -> None:
    """What PostgREST's setPgLocals does, inside the caller's transaction.

    1. search_path (the exposed schema + extra_search_path);
    2. the impersonated role's own settings (`alter role anon set statement_timeout = '3s'`):
       SET ROLE does not apply them, so PostgREST applies them transaction-locally;
    3. `set local role <role>` (only anon, authenticated, service_role ever get here);
    4. request.jwt.claims, request.method, request.path, request.headers (lower-case names),
       request.cookies, all transaction-local.
    """
    role = API_ROLES[auth.role]
    search_path_value = ", ".join('"' + s.replace('"', '""') + '"' for s in search_path)
    conn.execute("select set_config('search_path', %s, true)", [search_path_value])
    rows = _fetch(conn, "select rolconfig from pg_catalog.pg_roles where rolname = %s", [role])
    for setting in (rows[0][0] or []) if rows else []:
        name, _, value = setting.partition("=")
        conn.execute("select set_config(%s, %s, true)", [name, value])
    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
    header_map: dict[str, str] = {}
    for key, value in headers.items():
        key = key.lower()
        if key == "cookie":
            continue
        header_map[key] = f"{header_map[key]}, {value}" if key in header_map else value
    cookies: dict[str, str] = {}
    cookie_header = headers.get("Cookie")
    if cookie_header:
        parsed = SimpleCookie()
        try:
            parsed.load(cookie_header)
        except Exception:  # noqa: BLE001 - a malformed cookie header is simply not parsed
            parsed = SimpleCookie()
        cookies = {k: morsel.value for k, morsel in parsed.items()}
    conn.execute(
        "select set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true),"
        " set_config('request.path', %s, true), set_config('request.headers', %s, true),"
        " set_config('request.cookies', %s, true)",
        [
            json.dumps(auth.claims, separators=(",", ":")),
            method,
            path,
            json.dumps(header_map, separators=(",", ":")),
            json.dumps(cookies, separators=(",", ":")),
        ],
    )


# -- serving -----------------------------------------------------------------------------------


class DataApiServer(LocalServer):
    """The stand-in on a threaded werkzeug server on a loopback address; port 0 picks a free port (tests)."""

    thread_name = "local-dataapi"

    def __init__(self, config: DataApiConfig | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        self.app = DataApi(config or DataApiConfig.from_env())
        super().__init__(self.app, self.app, host, port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/dataapi",
        description="Local TEST STAND-IN for Supabase's Data API (PostgREST is not installable here).",
    )
    parser.add_argument("--host", default=os.environ.get("ZR_DATAAPI_HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ZR_DATAAPI_PORT", DEFAULT_PORT)))
    args = parser.parse_args(argv)
    configure_logging()
    server = DataApiServer(DataApiConfig.from_env(), args.host, args.port)
    log_event(log, "dataapi.started", url=server.url + "/rest/v1/", note="local test stand-in, not PostgREST")
    try:
        server.serve_until_terminated()
    finally:
        log_event(log, "dataapi.stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
