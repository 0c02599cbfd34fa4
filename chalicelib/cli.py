"""`python -m chalicelib.cli keys create|revoke`: provision API keys for `SPINDLE_AUTH=keys`.

Talks to the DynamoDB the settings name: AWS with the usual credentials, or a local server via
SPINDLE_DYNAMODB_ENDPOINT. The key is printed once; only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import json
import sys

from chalicelib.domain.auth import create_key, revoke_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="group", required=True)
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="mint a key for a project (a new project unless --project)")
    create.add_argument("--project", help="existing project id to add the key to")
    create.add_argument("--name", help="a label for the key")
    create.add_argument("--create-tables", action="store_true", help="create missing tables first (local only)")
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("api_key")
    args = parser.parse_args(argv)

    if args.action == "create":
        if args.create_tables:
            from chalicelib.storage.models import create_tables

            create_tables()
        try:
            api_key, project_id = create_key(project_id=args.project, name=args.name)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        print(json.dumps({"api_key": api_key, "project_id": project_id}))
        return 0
    if not revoke_key(args.api_key):
        print("no such key", file=sys.stderr)
        return 1
    print(json.dumps({"revoked": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
