#!/usr/bin/env bash
# Type-check the checkout UI extension when npm can install its tooling; skip (with a line) if not.
set -u
dir="extensions/checkout-sms-consent"
[ -f "$dir/package.json" ] || exit 0
if ! command -v npm >/dev/null 2>&1; then echo "npm not found: checkout extension not checked"; exit 0; fi
cd "$dir"
if [ ! -d node_modules ]; then
  if ! npm install --no-audit --no-fund --loglevel=error >/tmp/tidings-npm.log 2>&1; then
    echo "npm install failed (see /tmp/tidings-npm.log): checkout extension not checked"; exit 0
  fi
fi
npm run --silent check
