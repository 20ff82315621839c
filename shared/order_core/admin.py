"""Operator commands (docs/runbook.md).

``python -m order_core.admin keys create|list|revoke``: the gateway's API keys. Runs wherever boto3 reaches
the ApiKeysTable: in AWS with ``API_KEYS_TABLE`` set to the stack's table, locally through
``python -m gateway_local keys ...`` (which points it at the local stack). A new key is printed once; only its
SHA-256 is stored. ``keys`` may be left out (``python -m order_core.admin create ...``).

``python -m order_core.admin events replay ORDER_ID``: publish a finalized order's completion event again,
marked with the message attribute ``replay=true``. Needs ``ORDERS_TABLE``, ``COMPLETION_TOPIC_ARN`` and
``RESULTS_BUCKET`` (the stack's outputs), sns:Publish on the topic and kms:GenerateDataKey*/kms:Decrypt on
its key; locally ``python -m gateway_local events replay ORDER_ID``.
"""

from __future__ import annotations

import argparse
import sys

from order_core import wiring


def main(argv: list[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["events"]:
        return events(arguments[1:])
    if arguments[:1] == ["keys"]:
        arguments = arguments[1:]
    return keys(arguments)


def events(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="events", description="completion events")
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser(
        "replay", help="publish a finalized order's completion event again, marked replay=true"
    )
    replay.add_argument("order_id")
    args = parser.parse_args(argv)

    from order_core.errors import OrderNotFound

    try:
        event = wiring.finalize_service().replay(args.order_id)
    except OrderNotFound:
        print(f"error: no order {args.order_id}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"replayed the {event.state.value} event {event.event_id} of order {event.order_id}", file=sys.stderr
    )
    return 0


def keys(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="keys", description="the gateway's API keys")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key for a tenant and print it (shown only once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--label", default="")
    commands.add_parser("list", help="list keys: id, tenant, label, created, revoked")
    revoke = commands.add_parser("revoke", help="revoke a key by its id (the first characters, as listed)")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)

    service = wiring.api_key_service()
    if args.command == "create":
        try:
            key, record = service.create(args.tenant, args.label)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(key)
        print(
            f"created key {record.key_id}… for tenant {record.tenant}; store it now, it is not kept",
            file=sys.stderr,
        )
        return 0
    if args.command == "list":
        for record in service.all_keys():
            state = "revoked" if record.revoked else "active"
            print(f"{record.key_id}…\t{record.tenant}\t{state}\t{record.created_on}\t{record.label}")
        return 0
    revoked = service.revoke(args.key_id)
    if not revoked:
        print(f"error: no active key with id {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked {len(revoked)} key(s) of tenant {revoked[0].tenant}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
