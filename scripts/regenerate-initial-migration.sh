#!/usr/bin/env bash
# Until the first production deploy there is one migration: the initial schema, generated from
# the models. After that, schema changes get their own `flask db migrate -m "..."` revisions.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f migrations/versions/*.py
DATABASE_URL="sqlite:///$tmp/empty.db" TIDINGS_ENV=test .venv/bin/flask --app shopify_app:create_app \
  db migrate -m "initial schema" --rev-id 0001_initial >/dev/null
rm -rf "$tmp"
ls migrations/versions
