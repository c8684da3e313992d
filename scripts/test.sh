#!/usr/bin/env bash
# Runs skiff's tests with node:test and tsx: unit tests (src/**/*.test.ts), then integration
# tests (test/integration/ and test/faults/, root only) with a host leak check around them.
#
#   scripts/test.sh [all|unit|integration] [-- extra node --test flags]
#
# Node 20's `node --test` does not expand globs, so the files are found here. The run fails if
# any test fails, if no test file is found, or if the integration tests leave behind a shim,
# mount, netns or runc container that was not there before them (scripts/leak-report.ts).
# SKIFF_TEST_TIMEOUT_MS bounds each test (default 10 min) so a hung test cannot hang CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

phase=${1:-all}
shift || true
[[ ${1:-} == -- ]] && shift
case $phase in all | unit | integration) ;; *)
  echo "usage: $0 [all|unit|integration] [-- node test flags]" >&2
  exit 2
  ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

find_tests() { [[ -d $1 ]] && find "$1" -type f -name '*.test.ts' | LC_ALL=C sort; return 0; }
mapfile -t unit_files < <(find_tests src)
mapfile -t integration_files < <(find_tests test/integration; find_tests test/faults)

failed=0
summary=()
total_tests=0 total_pass=0 total_fail=0

# run_suite NAME FILE... — runs the files in one node process, spec output on the terminal and a
# TAP copy for the summary.
run_suite() {
  local name=$1 rc=0
  shift
  echo "==> $name tests ($# files)"
  node --import tsx --test --test-concurrency=1 --test-timeout="${SKIFF_TEST_TIMEOUT_MS:-600000}" \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$work/$name.tap" \
    "${extra_flags[@]}" "$@" || rc=$?
  # The top-level "# tests N" … lines of the TAP stream (nested ones are indented).
  local tests pass fail
  tests=$(sed -n 's/^# tests \([0-9]*\)$/\1/p' "$work/$name.tap" | tail -1)
  pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$work/$name.tap" | tail -1)
  fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$work/$name.tap" | tail -1)
  total_tests=$((total_tests + ${tests:-0}))
  total_pass=$((total_pass + ${pass:-0}))
  total_fail=$((total_fail + ${fail:-0}))
  summary+=("$(printf '%-12s tests %s, pass %s, fail %s, node exit %s' "$name:" "${tests:-?}" "${pass:-?}" "${fail:-?}" "$rc")")
  [[ $rc -eq 0 ]] || failed=1
}

extra_flags=("$@")

if [[ $phase == all && ${#unit_files[@]} -eq 0 && ${#integration_files[@]} -eq 0 ]]; then
  echo "test: no test files found under src/ or test/integration/" >&2
  exit 1
fi

if [[ $phase == all || $phase == unit ]]; then
  if [[ ${#unit_files[@]} -gt 0 ]]; then
    run_suite unit "${unit_files[@]}"
  elif [[ $phase == unit ]]; then
    echo "test: no unit test files (src/**/*.test.ts)" >&2
    exit 1
  else
    summary+=("unit:        no test files")
  fi
fi

if [[ $phase == all || $phase == integration ]]; then
  if [[ ${#integration_files[@]} -gt 0 ]]; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "test: integration tests need root (runc, mounts, netns); run as root" >&2
      exit 1
    fi
    echo "==> leak report before integration tests"
    node --import tsx scripts/leak-report.ts --save "$work/leaks-before.json"
    run_suite integration "${integration_files[@]}"
    echo "==> leak report after integration tests"
    if node --import tsx scripts/leak-report.ts --since "$work/leaks-before.json"; then
      summary+=("leak check:  nothing left behind")
    else
      summary+=("leak check:  FAILED, the integration tests left the items above behind")
      failed=1
    fi
  elif [[ $phase == integration ]]; then
    echo "test: no integration test files (test/integration/**/*.test.ts)" >&2
    exit 1
  else
    summary+=("integration: no test files")
  fi
fi

echo
echo "==> summary"
printf '%s\n' "${summary[@]}"
echo "# tests $total_tests"
echo "# pass $total_pass"
echo "# fail $total_fail"
if [[ $failed -ne 0 ]]; then
  echo "FAIL"
  exit 1
fi
echo "PASS"
