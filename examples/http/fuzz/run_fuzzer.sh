#!/usr/bin/env bash
# run_fuzzer.sh: builds the HTTP request parser's libFuzzer target (request_parser_fuzzer.cc) with Debian's
# clang-14 (-fsanitize=fuzzer,address,undefined; not through Bazel, whose toolchain is gcc) and runs it for a
# bounded time over a copy of the seed corpus. Nothing is written into the source tree: the binary, the
# corpus copy and anything found go to a temporary directory.
#
#   examples/http/fuzz/run_fuzzer.sh                  # 30 s, a random seed
#   examples/http/fuzz/run_fuzzer.sh --time=300 --seed=42
#   FUZZ_TIME=60 examples/http/fuzz/run_fuzzer.sh -- -max_len=20000   # after --: libFuzzer flags
#   examples/http/fuzz/run_fuzzer.sh --reproduce=crash-1234           # run one input, print what it does
#
# Prints the seed and the number of executions; exits non-zero if the target crashed (or leaked, or timed
# out), printing where the reproducer is. //examples/http:request_parser_fuzz_test runs it for 20 s.
set -euo pipefail

time_limit="${FUZZ_TIME:-30}"
seed="${FUZZ_SEED:-}"
reproduce=""
keep=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --time=*) time_limit="${1#--time=}" ;;
    --seed=*) seed="${1#--seed=}" ;;
    --reproduce=*) reproduce="${1#--reproduce=}" ;;
    --keep) keep=1 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run_fuzzer.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ! [[ "$time_limit" =~ ^[0-9]+$ ]] || [[ "$time_limit" -eq 0 ]]; then
  echo "run_fuzzer.sh: --time (FUZZ_TIME) must be a positive number of seconds, not '$time_limit'" >&2
  exit 2
fi
if [[ -z "$seed" ]]; then seed=$(( ($(date +%s) ^ $$ ^ RANDOM) % 2147483647 + 1 )); fi
if ! [[ "$seed" =~ ^[0-9]+$ ]]; then
  echo "run_fuzzer.sh: --seed (FUZZ_SEED) must be a number, not '$seed'" >&2
  exit 2
fi

# The sources: in a Bazel test's runfiles, or in the source tree around this script.
if [[ -n "${TEST_SRCDIR:-}" && -n "${TEST_WORKSPACE:-}" ]]; then
  root="$TEST_SRCDIR/$TEST_WORKSPACE"
else
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
fi
fuzz_dir="$root/examples/http/fuzz"
sources=(
  "$fuzz_dir/request_parser_fuzzer.cc"
  "$root/examples/http/request_parser.cc"
  "$root/examples/http/static_path.cc"
)
for f in "${sources[@]}" "$root/examples/http/request_parser.h" "$root/examples/http/static_path.h"; do
  [[ -f "$f" ]] || { echo "run_fuzzer.sh: missing source $f" >&2; exit 2; }
done

# clang-14 and its libFuzzer and sanitizer runtimes (Debian: clang-14, libfuzzer-14-dev, libclang-rt-14-dev).
setup_hint="run tools/setup.sh (it installs clang-14, libfuzzer-14-dev and libclang-rt-14-dev)"
cxx="${FUZZ_CXX:-clang++-14}"
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "run_fuzzer.sh: $cxx not found: $setup_hint" >&2
  exit 1
fi
runtime_dir="$("$cxx" -print-runtime-dir 2>/dev/null || true)"
for lib in libclang_rt.fuzzer-x86_64.a libclang_rt.asan-x86_64.a libclang_rt.ubsan_standalone-x86_64.a; do
  if [[ ! -f "$runtime_dir/$lib" ]]; then
    echo "run_fuzzer.sh: $lib not found in '$runtime_dir' (libFuzzer or a sanitizer runtime is missing): $setup_hint" >&2
    exit 1
  fi
done

work="$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/request_parser_fuzz.XXXXXX")"
cleanup() { if [[ "$keep" -eq 0 ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT

flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Wall -I"$root")
if [[ -n "$reproduce" ]]; then flags+=(-DREQUEST_PARSER_FUZZER_PRINT); fi
echo "run_fuzzer.sh: building with $cxx $(${cxx} --version | head -1 | sed 's/.*version //')"
if ! "$cxx" "${flags[@]}" "${sources[@]}" -o "$work/request_parser_fuzzer" 2>"$work/build.log"; then
  cat "$work/build.log" >&2
  if grep -qi "fuzzer\|sanitizer\|clang_rt" "$work/build.log"; then
    echo "run_fuzzer.sh: linking with libFuzzer failed: $setup_hint" >&2
  fi
  exit 1
fi

if [[ -n "$reproduce" ]]; then
  echo "run_fuzzer.sh: running $reproduce"
  exec "$work/request_parser_fuzzer" "$reproduce"
fi

mkdir -p "$work/corpus" "$work/artifacts"
cp "$fuzz_dir"/corpus/* "$work/corpus/"
dict=()
if [[ -f "$fuzz_dir/http.dict" ]]; then dict=(-dict="$fuzz_dir/http.dict"); fi

echo "run_fuzzer.sh: seed $seed, $time_limit s, corpus of $(ls "$work/corpus" | wc -l) files copied to $work/corpus"
status=0
# Leak checking needs ptrace-like stopping of threads, which some sandboxes refuse; ASan and UBSan do not.
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
  "$work/request_parser_fuzzer" -seed="$seed" -max_total_time="$time_limit" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "${dict[@]}" "${extra[@]}" "$work/corpus" \
  >"$work/fuzz.log" 2>&1 || status=$?

executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)"
grep -E "^(#[0-9]+ +DONE|Done [0-9]+ runs)" "$work/fuzz.log" || true
echo "run_fuzzer.sh: seed $seed: ${executions:-?} executions in $time_limit s, corpus now $(ls "$work/corpus" | wc -l) files"

found=("$work"/artifacts/*)
if [[ "$status" -ne 0 || -e "${found[0]}" ]]; then
  tail -n 60 "$work/fuzz.log" >&2
  keep=1
  saved="$work/artifacts"
  if [[ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]]; then
    cp "$work"/artifacts/* "$TEST_UNDECLARED_OUTPUTS_DIR/" 2>/dev/null || true
    saved="$TEST_UNDECLARED_OUTPUTS_DIR (Bazel zips it into the test's outputs.zip) and $work/artifacts"
  fi
  echo "run_fuzzer.sh: FAILED (exit $status, seed $seed); reproducers in $saved:" >&2
  for f in "$work"/artifacts/*; do [[ -e "$f" ]] && echo "  $f" >&2; done
  echo "run_fuzzer.sh: rerun one with: $0 --reproduce=<file>" >&2
  exit 1
fi
echo "run_fuzzer.sh: PASSED"
