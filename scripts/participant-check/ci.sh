#!/usr/bin/env bash
# The participant contract against the reference services (see ci.ts); one line in .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec npx tsx scripts/participant-check/ci.ts
