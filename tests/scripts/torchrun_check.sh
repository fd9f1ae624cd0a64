#!/usr/bin/env bash
# ctest distributed.torchrun: ProcessGroup.FromTheLaunchersEnvironment (tests/distributed/process_group_test.cpp)
# started by PyTorch's own launcher (python -m torch.distributed.run, i.e. torchrun) with 1 and with 2 ranks,
# Gloo on the CPU, each rank connecting to the store torchrun's agent serves where torchrun says so
# (TORCHELASTIC_USE_AGENT_STORE; torch 1.13 does for this static rendezvous). Exits 77 (ctest: skipped) when
# no Python on this machine imports torch (Debian: python3-torch; scripts/install-deps.sh installs it).
#   tests/scripts/torchrun_check.sh path/to/mdm_tests
set -uo pipefail
tests_bin="$1"
python=""
for p in "${MDM_PYTHON:-}" python3 /usr/bin/python3; do
  [[ -n "$p" ]] && "$p" -c "import torch.distributed.run" >/dev/null 2>&1 && { python="$p"; break; }
done
[[ -n "$python" ]] || { echo "no Python with torch: skipped"; exit 77; }
# Debian 13's torch 2.6 was built without libuv, yet its torchrun's TCPStore asks for it and cannot start.
if ! "$python" -c 'import torch.distributed as d; d.TCPStore("127.0.0.1", 0, 1, True)' >/dev/null 2>&1; then
  echo "this Python's torch cannot start a TCPStore (so neither can its torchrun): skipped"
  "$python" -c 'import torch.distributed as d; d.TCPStore("127.0.0.1", 0, 1, True)' 2>&1 | tail -n 1
  exit 77
fi
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rc=0
for ranks in 1 2; do
  log="$(mktemp)"
  # --redirects 1 --tee 1: the ranks' standard output in log files and here; Debian's torch 1.13 under Python 3.11
  # fails on the default "0" and on "3" (its Std.from_str finds only single-bit members).
  MDM_TORCHRUN_CHECK=1 timeout 120 "$python" -m torch.distributed.run --nnodes 1 --nproc_per_node "$ranks" --redirects 1 --tee 1 \
    --log_dir "$log.d" --master_addr 127.0.0.1 --master_port "$(free_port)" --no_python \
    "$tests_bin" --gtest_filter=ProcessGroup.FromTheLaunchersEnvironment >"$log" 2>&1
  status=$?
  checks=$(grep -c "torchrun check: .*: all-reduce $((ranks * (ranks + 1) / 2))$" "$log")
  agent=$(grep -c "torchrun check: .*(torchrun's agent)" "$log")
  echo "== $ranks rank(s): exit $status, $checks of $ranks rank(s) passed the check, $agent through the agent's store"
  if [[ $status != 0 || $checks != "$ranks" ]]; then tail -n 40 "$log"; rc=1; fi
  rm -rf "$log" "$log.d"
done
exit $rc
