#!/usr/bin/env bash
# Run a command as if on the AVX2-only kind, on a machine with AVX-512: a stand-in, NOT that kind.
#
#   bench/emulate_avx2.sh COMMAND [ARG...]        (needs root: a private mount namespace)
#
# Two things change, for COMMAND and every process it starts:
# * oneDNN dispatches its AVX2 kernels (ONEDNN_MAX_CPU_ISA=AVX2; ONEDNN_VERBOSE=1 shows
#   "isa:Intel AVX2"), which is where TensorFlow's convolutions and matmuls run on CPU;
# * /proc/cpuinfo loses every avx512* flag (a bind mount in a private mount namespace), so
#   tfpilot's precision `auto` picks float32, as on the AVX2 kind, and bench/_machine.py
#   reports the kind as emulated (TFPILOT_BENCH_EMULATED says on what).
# What does not change: the clock, caches and core of this CPU (the real AVX2 kind measured
# seed 004's MNIST epoch at ~26 s; this stand-in on an AMD EPYC with avx512_bf16 gave 15.6-20.4 s,
# docs/benchmarks.md), and TensorFlow's own CPUID checks: a model forced to mixed_bfloat16 is
# still handed to oneDNN's bf16 kernels, which AVX2 lacks ("could not create a primitive
# descriptor"), where the real AVX2 kind runs it through Eigen.
set -euo pipefail
if [ $# -eq 0 ]; then
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
real="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
flags="$(grep -m1 '^flags' /proc/cpuinfo | grep -o 'avx512_bf16\|amx_bf16' | sort -u | paste -sd' ')"
masked="$(mktemp /tmp/cpuinfo-avx2.XXXXXX)"
trap 'rm -f "$masked"' EXIT
sed -E 's/ (avx512[a-z0-9_]*|amx[a-z0-9_]*)//g' /proc/cpuinfo > "$masked"
export ONEDNN_MAX_CPU_ISA=AVX2
export TFPILOT_BENCH_EMULATED="AVX2-only emulated on ${real} (${flags:-no bf16 flags}): oneDNN held to AVX2, avx512* hidden"
unshare --mount --propagation private bash -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$masked" "$@"
