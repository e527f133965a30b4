"""Class lists as CSV: read and check a roster, work out what an import would change, write the user list.

Pure functions, no database: the panel (handlers/admin_roster.py) and ``hub user import`` (cli.py) read the
current users, call ``plan_import``, show the plan, and roster_import.py applies it in one transaction.

The format, the same for import and export::

    name,groups,admin
    alice,physics;maths,no
    bob,,yes

``name`` is required; ``groups`` (separated by ``;``, or by spaces when the cell has no ``;``) and ``admin``
(yes/no/true/false/1/0) are optional columns. A column that is there says it for every row: an empty groups
cell means no groups, an empty admin cell means not an admin. A column left out changes nothing. Other
columns (an e-mail address from a course system) are ignored and listed in the preview.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hub.errors import BadRequest
from hub.groups import MAX_GROUP_NAME
from hub.i18n import L_, LN_, N_, Text, joined
from hub.names import USERNAME_PATTERN, USERNAME_RULES, normalize_username

MAX_ROWS = 5000
MAX_BYTES = 512 * 1024
COLUMNS = ("name", "groups", "admin")
COLUMN_ALIASES = {"name": "name", "username": "name", "groups": "groups", "group": "groups", "admin": "admin"}
FORMULA_STARTS = ("=", "+", "-", "@")
TRUE_WORDS = frozenset({"yes", "true", "1", "y"})
FALSE_WORDS = frozenset({"no", "false", "0", "n", ""})
NAME_START = "abcdefghijklmnopqrstuvwxyz0123456789_"
NAME_CHARS = frozenset(NAME_START + ".@+-")
MAX_SHOWN_PROBLEMS = 50
MAX_NEW_USERS = 500
"""New accounts one import may add: each built-in one gets a first password hashed with argon2 while the admin
waits for the page that shows them."""


class RosterProblems(BadRequest):
    """The roster has bad rows (or no header): nothing may be imported. ``problems`` names each with its line."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:MAX_SHOWN_PROBLEMS]
        if len(problems) > len(shown):
            shown.append(L_("... and %(count)d more problems.", count=len(problems) - len(shown)))
        message = L_("Nothing was imported: %(problems)s", problems=joined(shown, "; "))
        super().__init__(message, f"roster refused: {len(problems)} problem(s)")
        self.problems = shown


@dataclass(frozen=True, slots=True)
class RosterRow:
    line: int
    name: str
    groups: tuple[str, ...] | None
    """None when the roster has no groups column (memberships stay as they are)."""
    admin: bool | None
    """None when the roster has no admin column (the flag stays as it is; new users are not admins)."""


@dataclass(frozen=True, slots=True)
class Roster:
    rows: tuple[RosterRow, ...]
    ignored_columns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Member:
    """A user as the hub has them now."""

    admin: bool
    groups: frozenset[str]


@dataclass(frozen=True, slots=True)
class Change:
    """What an import does to one existing user."""

    name: str
    admin: bool | None = None
    """The new admin flag, None when it stays."""
    joins: tuple[str, ...] = ()
    leaves: tuple[str, ...] = ()

    def describe(self) -> Text:
        parts: list[str] = []
        if self.admin is not None:
            parts.append(N_("becomes an admin") if self.admin else N_("is no longer an admin"))
        if self.joins:
            parts.append(L_("joins %(groups)s", groups=", ".join(self.joins)))
        if self.leaves:
            parts.append(L_("leaves %(groups)s", groups=", ".join(self.leaves)))
        return joined(parts, "; ")


@dataclass(frozen=True, slots=True)
class Plan:
    new: tuple[RosterRow, ...] = ()
    changed: tuple[Change, ...] = ()
    unchanged: tuple[str, ...] = ()
    new_groups: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()

    @property
    def changes_anything(self) -> bool:
        return bool(self.new or self.changed)

    def summary(self) -> Text:
        return joined(
            [
                LN_("%(num)d new user", "%(num)d new users", len(self.new)),
                LN_("%(num)d changed", "%(num)d changed", len(self.changed)),
                LN_("%(num)d unchanged", "%(num)d unchanged", len(self.unchanged)),
                LN_("%(num)d new group", "%(num)d new groups", len(self.new_groups)),
            ],
            ", ",
        )


# -- reading ---------------------------------------------------------------------------------------------
def name_problem(raw: str) -> str | None:
    """Why a name from a roster cannot be a user name (after lower-casing), in words; None when it can."""
    name = normalize_username(raw)
    shown = raw.strip()
    if not name:
        return N_("the name is empty")
    if any(char.isspace() for char in name):
        return L_("name %(name)r has a space", name=shown)
    if len(name) > 64:
        return L_("name %(name)r... is longer than 64 characters", name=shown[:20])
    bad = sorted({char for char in name if char not in NAME_CHARS})
    if bad:
        listed = " ".join(repr(char) for char in bad[:5])
        return LN_(
            "name %(name)r has a character a user name cannot have: %(chars)s",
            "name %(name)r has characters a user name cannot have: %(chars)s",
            len(bad),
            name=shown,
            chars=listed,
        )
    if name[0] not in NAME_START:
        return L_("name %(name)r starts with %(char)r", name=shown, char=name[0])
    if not USERNAME_PATTERN.fullmatch(name):
        return L_("name %(name)r cannot be used", name=shown)
    return None


def group_problem(name: str) -> str | None:
    if len(name) > MAX_GROUP_NAME:
        return L_("group %(name)r... is longer than %(most)d characters", name=name[:20], most=MAX_GROUP_NAME)
    if "/" in name:
        return L_("group %(name)r has a '/'", name=name)
    if not name.isprintable():
        return L_("group %(name)r has characters that cannot be shown", name=name)
    return None


def split_groups(cell: str) -> tuple[str, ...]:
    """Group names from a cell: separated by ';', or by spaces when there is no ';' (duplicates dropped).
    A leading ``'`` before ``=+-@`` is dropped: ``export_csv`` adds it so spreadsheets do not run formulas."""
    if cell[:1] == "'" and cell[1:2] in FORMULA_STARTS:
        cell = cell[1:]
    parts = cell.split(";") if ";" in cell else cell.split()
    return tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))


def delimiter_of(header: str) -> str:
    """',' as usual; a tab or ';' when the header uses those instead (spreadsheets in some languages do)."""
    for candidate in (",", "\t", ";"):
        if candidate in header:
            return candidate
    return ","


def decode(data: bytes) -> str:
    """The text of an uploaded file: UTF-8, with or without the byte-order mark spreadsheets write."""
    if len(data) > MAX_BYTES:
        raise RosterProblems(
            [L_("the file is larger than %(size)d KB; split the roster into parts", size=MAX_BYTES // 1024)]
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RosterProblems(
            [L_("line %(line)d: the file is not UTF-8 text; save it from the spreadsheet as CSV UTF-8", line=line)]
        )


def parse_roster(text: str) -> Roster:
    """The rows of a roster, checked; RosterProblems naming every bad row by its line when any is bad."""
    text = text.removeprefix("\ufeff")
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise RosterProblems([L_("the roster is larger than %(size)d KB; split it into parts", size=MAX_BYTES // 1024)])
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter_of(first))
    problems: list[str] = []
    columns: dict[str, int] = {}
    ignored: list[str] = []
    rows: list[RosterRow] = []
    seen: dict[str, int] = {}
    header_line = 0
    end = 0
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if not header_line:
                header_line = start
                columns, ignored, header_problems = read_header(cells, start)
                if header_problems:
                    raise RosterProblems(header_problems)
                continue
            if len(rows) >= MAX_ROWS:
                raise RosterProblems(
                    [
                        L_(
                            "line %(line)d: the roster has more than %(most)d users; split it into parts",
                            line=start,
                            most=MAX_ROWS,
                        )
                    ]
                )
            row, row_problems = read_row(cells, columns, start, seen)
            problems += row_problems
            if row is not None:
                rows.append(row)
                seen[row.name] = start
    except csv.Error as exc:
        raise RosterProblems(
            [*problems, L_("line %(line)d: the CSV cannot be read (%(reason)s)", line=end + 1, reason=str(exc))]
        ) from None
    if not header_line:
        raise RosterProblems([N_("the roster is empty; the first line names the columns, as in: name,groups,admin")])
    if problems:
        raise RosterProblems(problems)
    return Roster(tuple(rows), tuple(ignored))


def read_header(cells: list[str], line: int) -> tuple[dict[str, int], list[str], list[str]]:
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, cell in enumerate(cells):
        key = COLUMN_ALIASES.get(cell.strip().lower())
        if key is None:
            if cell.strip():
                ignored.append(cell.strip())
        elif key in columns:
            return {}, [], [L_("line %(line)d: the column %(column)r is there twice", line=line, column=key)]
        else:
            columns[key] = index
    if "name" not in columns:
        return (
            {},
            [],
            [
                L_(
                    "line %(line)d: the first line must name the columns, as in: name,groups,admin "
                    "(it has no column called name)",
                    line=line,
                )
            ],
        )
    return columns, ignored, []


def read_row(
    cells: list[str], columns: Mapping[str, int], line: int, seen: Mapping[str, int]
) -> tuple[RosterRow | None, list[str]]:
    def cell(key: str) -> str | None:
        if key not in columns:
            return None
        index = columns[key]
        return cells[index].strip() if index < len(cells) else ""

    problems: list[str] = []
    raw_name = cell("name") or ""
    problem = name_problem(raw_name)
    name = normalize_username(raw_name)
    if problem is not None:
        problems.append(L_("line %(line)d: %(problem)s", line=line, problem=problem))
    elif name in seen:
        problems.append(
            L_("line %(line)d: %(name)s is listed already on line %(first)d", line=line, name=name, first=seen[name])
        )
    groups_cell = cell("groups")
    groups = split_groups(groups_cell) if groups_cell is not None else None
    for group in groups or ():
        if (why := group_problem(group)) is not None:
            problems.append(L_("line %(line)d: %(problem)s", line=line, problem=why))
    admin_cell = cell("admin")
    admin: bool | None = None
    if admin_cell is not None:
        word = admin_cell.lower()
        if word in TRUE_WORDS:
            admin = True
        elif word in FALSE_WORDS:
            admin = False
        else:
            problems.append(
                L_(
                    "line %(line)d: admin is %(value)r; write yes or no (or true/false, 1/0)",
                    line=line,
                    value=admin_cell[:20],
                )
            )
    if problems:
        return None, problems
    return RosterRow(line, name, groups, admin), []


def explain(problems: Iterable[str]) -> list[str]:
    """The problems, and the naming rules once when a name was the trouble."""
    listed = list(problems)
    if any(" name " in problem or "the name is empty" in problem for problem in listed):
        listed.append(USERNAME_RULES)
    return listed


# -- planning ---------------------------------------------------------------------------------------------
def plan_import(roster: Roster, users: Mapping[str, Member], groups: Iterable[str], me: str | None = None) -> Plan:
    """What importing ``roster`` changes, given the users it names as they are now and the existing groups.

    ``me``: the admin importing in the panel, who cannot take away their own admin rights."""
    known_groups = set(groups)
    new: list[RosterRow] = []
    changed: list[Change] = []
    unchanged: list[str] = []
    new_groups: list[str] = []
    problems: list[str] = []
    for row in roster.rows:
        for group in row.groups or ():
            if group not in known_groups and group not in new_groups:
                new_groups.append(group)
        current = users.get(row.name)
        if current is None:
            new.append(row)
            continue
        admin = row.admin if row.admin is not None and row.admin != current.admin else None
        if admin is False and row.name == me:
            problems.append(
                L_(
                    "line %(line)d: you cannot take away your own admin rights (you are %(name)s)",
                    line=row.line,
                    name=me,
                )
            )
            continue
        wanted = current.groups if row.groups is None else frozenset(row.groups)
        joins = tuple(group for group in row.groups or () if group not in current.groups)
        leaves = tuple(sorted(current.groups - wanted))
        if admin is None and not joins and not leaves:
            unchanged.append(row.name)
        else:
            changed.append(Change(row.name, admin, joins, leaves))
    if len(new) > MAX_NEW_USERS:
        problems.append(
            L_(
                "line %(line)d: the file adds %(count)d new users, more than %(most)d at once; split it into files "
                "of at most %(most)d new users (each import makes and shows their first passwords while you wait)",
                line=new[MAX_NEW_USERS].line,
                count=len(new),
                most=MAX_NEW_USERS,
            )
        )
    if problems:
        raise RosterProblems(problems)
    return Plan(tuple(new), tuple(changed), tuple(unchanged), tuple(new_groups), roster.ignored_columns)


# -- writing ----------------------------------------------------------------------------------------------
def groups_cell(groups: Iterable[str]) -> str:
    """Groups joined so that ``split_groups`` reads them back: with ';' (and a trailing one for a single name
    with a space, which would otherwise be read as two groups)."""
    names = sorted(groups)
    text = ";".join(names)
    if len(names) == 1 and any(char.isspace() for char in names[0]):
        text += ";"
    return text


def safe_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (user names cannot start so; group names can)."""
    return "'" + text if text[:1] in FORMULA_STARTS else text


def export_csv(users: Iterable[tuple[str, bool, Iterable[str]]]) -> str:
    """The roster of these users (name, admin, groups), in the import format."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for name, admin, groups in users:
        writer.writerow([name, safe_cell(groups_cell(groups)), "yes" if admin else "no"])
    return out.getvalue()


def passwords_csv(passwords: Iterable[tuple[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("name", "password"))
    writer.writerows(passwords)
    return out.getvalue()


def describe_plan(plan: Plan) -> list[str]:
    """The plan as lines of text (``hub user import --dry-run``)."""
    lines = [f"{plan.summary()}; users not in the file are left alone"]
    if plan.ignored_columns:
        lines.append("ignored columns: " + ", ".join(plan.ignored_columns))
    for row in plan.new:
        extra = (["admin"] if row.admin else []) + (["groups " + ", ".join(row.groups)] if row.groups else [])
        lines.append(f"new: {row.name}" + (f" ({'; '.join(extra)})" if extra else ""))
    lines += [f"change: {change.name} {change.describe()}" for change in plan.changed]
    lines += [f"new group: {name}" for name in plan.new_groups]
    if plan.unchanged:
        lines.append("unchanged: " + ", ".join(plan.unchanged))
    return lines
