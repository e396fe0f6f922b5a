#!/usr/bin/env bash
# Validate migrations with pgparity and assemble what a pull request shows: one Markdown comment
# (OUTDIR/comment.md, with a marker so a later run updates the same comment) and one JUnit file
# per migration (OUTDIR/junit/). Used by pgparity.yml; runs the same anywhere.
#
# Usage: validate-migrations.sh OUTDIR MIGRATION...
# Where the dry-run happens:
#   PGPARITY_DSN (+ PGPARITY_REPLICA_DSN)  a staging clone (pgparity reads them from the environment,
#                                          so they never appear in a command line or a log)
#   otherwise PGPARITY_SEED_SQL=FILE       a throwaway local primary + replica loaded from FILE
# PGPARITY_ARGS: more `pgparity validate` options (e.g. "--lock-timeout 2s --strict").
# PGPARITY_COMMENT_LIMIT: bytes of comment.md at most (60000; the reports stay whole in OUTDIR).
#
# Exit status: 0 when every migration is VALIDATED (or none was given); when one did not reach a
# verdict, the first such pgparity exit code (2 bad input, 4 database unreachable, 130
# interrupted); else 3 when one met schema drift, else 1 when one is REJECTED. The comment and
# the JUnit files are written either way.
set -uo pipefail

MARKER="<!-- pgparity-report -->"
MAX_COMMENT=${PGPARITY_COMMENT_LIMIT:-60000}   # GitHub refuses comments over 65536 characters
PGPARITY=${PGPARITY:-pgparity}

die() { printf 'validate-migrations: %s\n' "$*" >&2; exit 2; }

# The exit status that wins: no verdict (2, 4, 70, 130) over drift (3) over REJECTED (1) over 0.
rank() { case $1 in 0) echo 0 ;; 1) echo 1 ;; 3) echo 2 ;; *) echo 3 ;; esac; }
worst() {  # status-so-far code
  if [[ $(rank "$2") -gt $(rank "$1") ]]; then echo "$2"; else echo "$1"; fi
}

[[ $# -ge 1 ]] || die "usage: validate-migrations.sh OUTDIR MIGRATION..."
out=$1
shift
mkdir -p "$out/json" "$out/junit" "$out/markdown" || die "cannot create $out"

target=()
if [[ -n ${PGPARITY_DSN:-} ]]; then
  where="the staging clone"
elif [[ -n ${PGPARITY_SEED_SQL:-} ]]; then
  target=(--local --seed-sql "$PGPARITY_SEED_SQL")
  where="a local primary + replica seeded from \`${PGPARITY_SEED_SQL}\`"
else
  die "set PGPARITY_DSN (a staging clone) or PGPARITY_SEED_SQL (a local run)"
fi
read -r -a extra <<<"${PGPARITY_ARGS:-}"

# One line per migration for the summary table; the details below it.
rows=()
status=0
n=0
for migration in "$@"; do
  n=$((n + 1))
  name=$(printf '%03d-%s' "$n" "$(basename "$migration" .sql)")
  report="$out/json/$name.json"
  rm -f "$report"
  # One dry-run per migration; its JSON report is rendered as JUnit and Markdown afterwards.
  "$PGPARITY" validate --migration "$migration" "${target[@]}" "${extra[@]}" \
    --format json --output "$report" --quiet >/dev/null 2>"$out/$name.stderr"
  code=$?
  case $code in
    0 | 1 | 3)  # a verdict (3: REJECTED for schema drift)
      "$PGPARITY" report --input "$report" --format junit --output "$out/junit/$name.xml" >/dev/null
      "$PGPARITY" report --input "$report" --format markdown --output "$out/markdown/$name.md" >/dev/null
      case $code in
        0) verdict="✅ VALIDATED" ;;
        1) verdict="❌ REJECTED" ;;
        3) verdict="❌ REJECTED (schema drift)" ;;
      esac
      ;;
    *)
      verdict="⚠️ not validated (exit $code)"
      {
        echo "\`pgparity validate\` did not reach a verdict (exit $code):"
        echo
        echo '```'
        cat "$out/$name.stderr"
        echo '```'
      } >"$out/markdown/$name.md"
      ;;
  esac
  rows+=("| \`$migration\` | $verdict |")
  status=$(worst "$status" "$code")
done

{
  echo "$MARKER"
  echo "## pgparity: $n migration(s) dry-run on $where"
  echo
  if [[ $n -eq 0 ]]; then
    echo "No migration changed."
  else
    echo "| migration | verdict |"
    echo "|---|---|"
    printf '%s\n' "${rows[@]}"
    for details in "$out"/markdown/*.md; do
      echo
      echo "<details><summary>$(basename "$details" .md)</summary>"
      echo
      cat "$details"
      echo
      echo "</details>"
    done
  fi
} >"$out/comment.full.md"

if [[ $(wc -c <"$out/comment.full.md") -gt $MAX_COMMENT ]]; then
  # Whole lines only (a cut inside a multi-byte character would not be UTF-8).
  { head -c "$MAX_COMMENT" "$out/comment.full.md" | sed '$d'
    printf '\n\n… cut here: the full reports are in the job'"'"'s artifacts (pgparity-reports).\n'
  } >"$out/comment.md"
else
  cp "$out/comment.full.md" "$out/comment.md"
fi
exit "$status"
