"""`comanda staff …`: staff accounts, their stores and personal API tokens, from the command line.

Passwords and tokens are shown once, when they are made, and never stored as given. Every change is an
audit event whose actor is ``cli:<operating-system user>``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any, Dict, List, Optional

from comanda.enums import StaffRole
from comanda.errors import ComandaError

ROLES = list(StaffRole.values())


def _actor() -> Any:
    from comanda.services.audit import Actor

    return Actor(f"cli:{getpass.getuser()}")


def _stores(value: Optional[str]) -> List[str]:
    return [s.strip() for s in (value or "").split(",") if s.strip()]


def _password_from_stdin(args: argparse.Namespace) -> Optional[str]:
    if not args.password_stdin:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ComandaError("--password-stdin: no password on standard input")
    return password


def _login_url() -> str:
    from comanda.settings import setting

    return f"{setting('COMANDA_BACKOFFICE_URL')}/console/login"


def cmd_add(args: argparse.Namespace) -> int:
    from comanda.db import transaction
    from comanda.services import staff

    with transaction() as session:
        user, generated = staff.add_staff(
            session,
            _actor(),
            args.email,
            args.name,
            args.role,
            _stores(args.stores),
            password=_password_from_stdin(args),
            language=args.language,
        )
        email = user.email
    print(f"added {args.role} {email}; log in at {_login_url()}")
    if generated:
        print(f"password: {generated}")
        print("(shown once: pass it on safely; `comanda staff password EMAIL` sets a new one)")
    return 0


def account_row(user: Any) -> Dict[str, Any]:
    return {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "stores": [s.id for s in user.stores] if user.role != StaffRole.OWNER else ["*"],
        "language": user.language,
        "active": user.active,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def cmd_list(args: argparse.Namespace) -> int:
    from comanda.db import new_session
    from comanda.services import staff

    with new_session() as session:
        rows = [account_row(user) for user in staff.list_staff(session)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no staff accounts yet: `comanda staff add EMAIL --name NAME --role owner`")
    for row in rows:
        state = "active" if row["active"] else "disabled"
        print(
            f"{row['email']:<36} {row['name']:<24} {row['role']:<8} {','.join(row['stores']):<16} "
            f"{row['language']}  {state:<8} last login {row['last_login_at'] or 'never'}"
        )
    return 0


def _change(args: argparse.Namespace, what: str) -> int:
    from comanda.db import transaction
    from comanda.services import staff

    with transaction() as session:
        user = staff.find_staff(session, args.email)
        if what == "disable":
            staff.disable_staff(session, _actor(), user)
            print(f"{user.email} is disabled: its sessions ended and its tokens no longer work")
        elif what == "enable":
            staff.enable_staff(session, _actor(), user)
            print(f"{user.email} can log in again")
        elif what == "whatsapp":
            if not args.clear and not args.phone:
                raise ComandaError("give the WhatsApp number (e.g. +525512345678), or --clear")
            number = staff.set_whatsapp_phone(session, _actor(), user, None if args.clear else args.phone)
            print(
                f"{user.email} reviews from WhatsApp at {number}" if number else f"{user.email} has no WhatsApp number"
            )
        elif what == "access":
            staff.change_access(session, _actor(), user, args.role, _stores(args.stores))
            print(f"{user.email} is {user.role}" + (f" at {args.stores}" if args.stores else " (every store)"))
        else:
            generated = staff.set_password(session, _actor(), user, _password_from_stdin(args))
            print(f"new password set for {user.email}; its sessions ended")
            if generated:
                print(f"password: {generated}\n(shown once)")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from comanda.db import transaction
    from comanda.services import staff

    with transaction() as session:
        user = staff.find_staff(session, args.email)
        row, token = staff.create_token(session, _actor(), user, args.label)
        token_id = row.id
    print(f"token {token_id} for {user.email} (shown once; it acts as {user.email}, with the same stores):")
    print(token)
    print(f"revoke it with: comanda staff revoke-token {user.email} {token_id}")
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    from comanda.db import new_session
    from comanda.services import staff

    with new_session() as session:
        rows = [
            {
                "id": t.id,
                "label": t.label,
                "prefix": t.prefix,
                "created_at": t.created_at.isoformat(),
                "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
            }
            for t in staff.list_tokens(session, staff.find_staff(session, args.email))
        ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        print(
            f"{row['id']:>5}  {row['prefix']}…  {row['label'] or '-':<20} created {row['created_at']}  "
            f"last used {row['last_used_at'] or 'never'}  {state}"
        )
    if not rows:
        print("no tokens")
    return 0


def cmd_revoke_token(args: argparse.Namespace) -> int:
    from comanda.db import transaction
    from comanda.services import staff

    with transaction() as session:
        user = staff.find_staff(session, args.email)
        ids = [t.id for t in staff.list_tokens(session, user)] if args.all else args.token_ids
        if not ids:
            raise ComandaError("say which tokens: their ids (`comanda staff tokens EMAIL`), or --all")
        revoked = staff.revoke_tokens(session, _actor(), user, ids)
    print(f"revoked {len(revoked)} token(s) of {user.email}" + (f": {', '.join(map(str, revoked))}" if revoked else ""))
    return 0


def ensure_demo_owner() -> None:
    """`comanda seed --demo` (so `make run` on an empty database): a demo owner, its login printed once."""
    from comanda.db import transaction
    from comanda.services import staff

    with transaction() as session:
        created = staff.create_demo_owner(session, _actor())
    if created:
        email, password = created
        print(f"demo owner created: log in at {_login_url()}")
        print(f"  e-mail:   {email}")
        print(f"  password: {password}")
        print(f"  (shown once: keep it, or set another with `comanda staff password {email}`)")


def add_staff_parser(sub: Any) -> None:
    parser = sub.add_parser("staff", help="staff accounts, their stores and personal API tokens")
    staff_sub = parser.add_subparsers(dest="staff_command", required=True, metavar="COMMAND")

    p = staff_sub.add_parser("add", help="add an account (a strong password is generated unless given)")
    p.add_argument("email")
    p.add_argument("--name", required=True)
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--stores", help="stores they work at, e.g. centro,roma (owners see every store)")
    p.add_argument("--language", choices=["es", "en"], help="the console's language (default: the business's)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_add)

    p = staff_sub.add_parser("list", help="every account, with role, stores and last login")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = staff_sub.add_parser("disable", help="no more logins or tokens; open sessions end now")
    p.add_argument("email")
    p.set_defaults(func=lambda args: _change(args, "disable"))

    p = staff_sub.add_parser("enable", help="let a disabled account log in again")
    p.add_argument("email")
    p.set_defaults(func=lambda args: _change(args, "enable"))

    p = staff_sub.add_parser("password", help="set a new password (generated unless given); sessions end")
    p.add_argument("email")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=lambda args: _change(args, "password"))

    p = staff_sub.add_parser("access", help="change an account's role and stores")
    p.add_argument("email")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--stores", help="e.g. centro,roma (owners: none)")
    p.set_defaults(func=lambda args: _change(args, "access"))

    p = staff_sub.add_parser("whatsapp", help="the WhatsApp number an owner or manager reviews from (`revisar`)")
    p.add_argument("email")
    p.add_argument("phone", nargs="?", help="e.g. +525512345678")
    p.add_argument("--clear", action="store_true", help="remove the number")
    p.set_defaults(func=lambda args: _change(args, "whatsapp"))

    p = staff_sub.add_parser("token", help="a new personal API token (Authorization: Bearer …), shown once")
    p.add_argument("email")
    p.add_argument("--label", help="what it is for, e.g. 'delivery app'")
    p.set_defaults(func=cmd_token)

    p = staff_sub.add_parser("tokens", help="an account's tokens (never the tokens themselves)")
    p.add_argument("email")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tokens)

    p = staff_sub.add_parser("revoke-token", help="revoke tokens of an account: their ids, or --all")
    p.add_argument("email")
    p.add_argument("token_ids", nargs="*", type=int)
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=cmd_revoke_token)
