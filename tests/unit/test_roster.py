"""Reading class lists, planning an import, writing the user list: hub/roster.py without a database."""

from __future__ import annotations

import pytest

from hub.roster import (
    Change,
    Member,
    RosterProblems,
    decode,
    describe_plan,
    explain,
    export_csv,
    parse_roster,
    passwords_csv,
    plan_import,
    split_groups,
)


def problems_of(text: str) -> list[str]:
    with pytest.raises(RosterProblems) as caught:
        parse_roster(text)
    return caught.value.problems


def test_a_roster_with_name_groups_and_admin_is_read_row_by_row() -> None:
    roster = parse_roster("name,groups,admin\nAlice,physics;maths,no\nbob,,YES\n\ncarol,art club;,1\n")
    assert [(row.line, row.name, row.groups, row.admin) for row in roster.rows] == [
        (2, "alice", ("physics", "maths"), False),
        (3, "bob", (), True),
        (5, "carol", ("art club",), True),
    ]


def test_groups_are_split_by_semicolons_or_else_by_spaces() -> None:
    assert split_groups("physics maths") == ("physics", "maths")
    assert split_groups("art club; physics") == ("art club", "physics")
    assert split_groups(" a  a ") == ("a",)
    assert split_groups("") == ()


def test_missing_columns_change_nothing_and_other_columns_are_ignored() -> None:
    roster = parse_roster("Email,Name\nalice@example.org,alice\n")
    assert roster.rows[0].groups is None and roster.rows[0].admin is None
    assert roster.ignored_columns == ("Email",)


def test_every_bad_row_is_named_with_its_line_number() -> None:
    problems = problems_of(
        "name,groups,admin\nalice,,no\n.dot,,\nBob Smith,,\nalice,,\nerin,,maybe\nfrank,a/b,\n,physics,\n"
    )
    assert problems == [
        "line 3: name '.dot' starts with '.'",
        "line 4: name 'Bob Smith' has a space",
        "line 5: alice is listed already on line 2",
        "line 6: admin is 'maybe'; write yes or no (or true/false, 1/0)",
        "line 7: group 'a/b' has a '/'",
        "line 8: the name is empty",
    ]
    assert explain(problems)[-1].startswith("A user name has 1 to 64 characters")


def test_a_name_with_characters_a_user_name_cannot_have_says_which() -> None:
    assert problems_of("name\nzoë\n") == ["line 2: name 'zoë' has a character a user name cannot have: 'ë'"]
    assert problems_of("name\n" + "a" * 65 + "\n")[0].endswith("is longer than 64 characters")


def test_a_roster_without_a_header_is_refused() -> None:
    assert problems_of("alice,physics,no\n") == [
        "line 1: the first line must name the columns, as in: name,groups,admin (it has no column called name)"
    ]
    assert problems_of("\n\n") == ["the roster is empty; the first line names the columns, as in: name,groups,admin"]
    assert problems_of("name,Name\nalice,bob\n") == ["line 1: the column 'name' is there twice"]


def test_line_numbers_count_lines_of_quoted_cells_with_line_breaks() -> None:
    problems = problems_of('name,groups\nalice,"physics\nmaths"\nBob Smith,\n')
    assert problems == ["line 4: name 'Bob Smith' has a space"]


def test_spreadsheet_files_with_a_byte_order_mark_or_semicolons_are_read() -> None:
    roster = parse_roster(decode("\ufeffname;groups;admin\r\nalice;physics maths;yes\r\n".encode()))
    assert roster.rows[0].name == "alice" and roster.rows[0].groups == ("physics", "maths")
    with pytest.raises(RosterProblems) as caught:
        decode(b"name\nalice\n\xff\n")
    assert caught.value.problems[0].startswith("line 3: the file is not UTF-8 text")


def test_the_plan_names_new_changed_and_unchanged_users_and_new_groups() -> None:
    roster = parse_roster("name,groups,admin\nalice,physics;maths,no\nbob,physics,yes\ncarol,,no\ndave,,\n")
    users = {
        "alice": Member(False, frozenset({"physics", "art"})),
        "bob": Member(False, frozenset({"physics"})),
        "carol": Member(False, frozenset()),
    }
    plan = plan_import(roster, users, ["physics", "art"])
    assert [row.name for row in plan.new] == ["dave"]
    assert plan.changed == (Change("alice", None, ("maths",), ("art",)), Change("bob", True))
    assert plan.unchanged == ("carol",)
    assert plan.new_groups == ("maths",)
    assert plan.changed[0].describe() == "joins maths; leaves art"
    assert plan.summary() == "1 new user, 2 changed, 1 unchanged, 1 new group"
    assert "change: bob becomes an admin" in describe_plan(plan)


def test_without_a_groups_column_memberships_stay() -> None:
    roster = parse_roster("name,admin\nalice,yes\n")
    plan = plan_import(roster, {"alice": Member(False, frozenset({"art"}))}, ["art"])
    assert plan.changed == (Change("alice", True),)


def test_an_admin_cannot_take_away_their_own_admin_rights_with_an_import() -> None:
    roster = parse_roster("name,admin\nroot,no\n")
    with pytest.raises(RosterProblems) as caught:
        plan_import(roster, {"root": Member(True, frozenset())}, [], me="root")
    assert caught.value.problems == ["line 2: you cannot take away your own admin rights (you are root)"]
    assert plan_import(roster, {"root": Member(True, frozenset())}, [], me="other").changed == (Change("root", False),)


def test_an_export_imports_back_to_the_same_users() -> None:
    users = [("alice", False, ["art club"]), ("bob", True, ["physics", "=cmd", "maths"]), ("carol", False, [])]
    text = export_csv(users)
    assert text.splitlines()[0] == "name,groups,admin"
    assert "'=cmd" in text  # a spreadsheet does not run it as a formula
    roster = parse_roster(text)
    assert [(row.name, row.admin, sorted(row.groups or ())) for row in roster.rows] == [
        ("alice", False, ["art club"]),
        ("bob", True, ["=cmd", "maths", "physics"]),
        ("carol", False, []),
    ]
    state = {name: Member(admin, frozenset(groups)) for name, admin, groups in users}
    assert plan_import(roster, state, ["art club", "physics", "=cmd", "maths"]).unchanged == ("alice", "bob", "carol")


def test_the_passwords_file_has_a_header_and_a_row_per_user() -> None:
    assert passwords_csv([("alice", "pw1"), ("bob", "pw,2")]) == 'name,password\nalice,pw1\nbob,"pw,2"\n'


def test_an_import_adds_at_most_max_new_users_and_says_how_to_split_it() -> None:
    from hub.roster import MAX_NEW_USERS, RosterProblems, parse_roster, plan_import

    text = "name\n" + "".join(f"student{number}\n" for number in range(MAX_NEW_USERS + 1))
    with pytest.raises(RosterProblems) as refused:
        plan_import(parse_roster(text), {}, [])
    assert f"more than {MAX_NEW_USERS} at once" in str(refused.value.problems)
    assert (
        len(plan_import(parse_roster("name\n" + "".join(f"s{n}\n" for n in range(MAX_NEW_USERS))), {}, []).new)
        == MAX_NEW_USERS
    )
