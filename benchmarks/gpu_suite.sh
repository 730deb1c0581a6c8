#!/usr/bin/env bash
# Every GPU check in one call of the lent device (it is short: 30 minutes a session, 10 minutes a command).
#
# Here (CPU machine):    ../shared/tools/gpu-stage.sh smplx==0.1.28 pytest pluggy iniconfig packaging
#                        (builds .gpu/: PyTorch3D for Python 3.12 and the small wheels the image lacks)
# Device (carry .gpu):   <the prefix gpu-stage.sh prints> bash benchmarks/gpu_suite.sh [quick|full]
#
# quick (about 6 minutes on an H100): render and training overhead at tutorial scale, SMPL, the volume fit
# at tutorial scale, and the examples' GPU-only full-size tests. full adds the NeRF fit at tutorial scale
# (3000 iterations a side: run it as its own call). Figures land in $OUT (or out/gpu) as JSON and logs.
set -uo pipefail
mode=${1:-quick}
out=${OUT:-out/gpu}
mkdir -p "$out"
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee "$out/device.txt"

step() {  # name, command...: run, keep the log, go on after a failure
  local name=$1; shift
  echo "== $name"
  local t0=$SECONDS
  "$@" >"$out/$name.log" 2>&1
  echo "   exit $? in $((SECONDS - t0)) s"; tail -n 6 "$out/$name.log"
}

if [ "$mode" != "nerf" ]; then
  step render_overhead python3 benchmarks/render_overhead.py --device cuda --tutorial
  step training_overhead python3 benchmarks/training_overhead.py --device cuda --tutorial
  step smpl_forward python3 benchmarks/smpl_forward.py --device cuda
  step fit_volume python3 benchmarks/fit_volume.py --device cuda --scale tutorial --json "$out/fit_volume.json"
  step examples_gpu python3 -m pytest -q -p no:cacheprovider -k gpu tests/test_examples_training.py
fi
if [ "$mode" = "full" ] || [ "$mode" = "nerf" ]; then
  step fit_nerf python3 benchmarks/fit_nerf.py --device cuda --scale tutorial --json "$out/fit_nerf.json"
fi
