#!/bin/sh
# The container's entry point: on a new volume the bundled notes are ingested (and indexed) first, so the
# bot, `kb stats` or a question answer from the first start. Demo workers need no knowledge base, and
# `kb backup` / `kb restore` must work on a database the ingest cannot open; a failed first-start ingest
# is reported and the command runs anyway (its own error, if any, says what to do).
case "${1:-} ${2:-}" in
    "worker "* | "--help "* | "-h "* | "kb backup" | "kb restore") ;;
    *) tutor kb ingest --first-start --quiet \
        || echo "tutor-entrypoint: the first-start ingest failed (above); running \`tutor $*\` anyway" >&2 ;;
esac
exec tutor "$@"
