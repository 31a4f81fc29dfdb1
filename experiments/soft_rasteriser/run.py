"""Runs `jaxpose.bench.render` for each setting in a fresh process; prints a markdown table.

PYTHONPATH=. python experiments/soft_rasteriser/run.py [--out results.jsonl]
"""

import argparse
import json
import subprocess
import sys

SETTINGS = [
  ['--batch', '1'],
  ['--batch', '4'],
  ['--batch', '1', '--tile-size', '16', '--tiles-per-step', '1'],
  ['--batch', '1', '--max-faces-per-tile', 'none'],
]


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument('--out', default=None, help='append the JSON lines here')
  parser.add_argument('--repeats', default='3')
  parser.add_argument('--table-from', default=None, help='only print the table of a JSONL file')
  args = parser.parse_args()
  rows = []
  if args.table_from:
    with open(args.table_from) as f:
      rows = [json.loads(line) for line in f if line.strip()]
  for setting in [] if args.table_from else SETTINGS:
    cmd = [sys.executable, '-m', 'jaxpose.bench.render', *setting, '--repeats', args.repeats]
    line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    result = json.loads(line.splitlines()[-1])
    rows.append(result)
    if args.out:
      with open(args.out, 'a') as f:
        f.write(json.dumps(result) + '\n')
  for size in [] if args.table_from else (256, 512):
    cmd = [sys.executable, '-m', 'jaxpose.bench.render', '--zbuffer', '--image-size', str(size)]
    line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    z = json.loads(line)
    print(
      f'z-buffer {size}x{size}: {z["median_s"] * 1e3:.1f} ms median ({z["min_s"] * 1e3:.1f} min)'
    )
  mb = 1e6
  print(
    '| B | tile | K (max count) | fwd s/img median (min; CPU) | fwd+bwd s/img median (min; CPU) |'
    ' fwd temp MB | fwd+bwd temp MB |'
    ' RSS MB before compile / peak | compile fwd, grad s |'
  )
  print('|---|---|---|---|---|---|---|---|---|')
  for r in rows:
    print(
      f'| {r["batch"]} | {r["tile_size"]}x{r["tile_size"]}, {r["tiles_per_step"]}/step |'
      f' {r["max_faces_per_tile"]} ({r["tile_faces_max"]}) |'
      f' {r["fwd_per_image_s"]:.3f} ({r["fwd_min_s"] / r["batch"]:.3f};'
      f' {r["fwd_cpu_s_of_min"] / r["batch"]:.3f}) |'
      f' {r["fwd_bwd_per_image_s"]:.3f} ({r["fwd_bwd_min_s"] / r["batch"]:.3f};'
      f' {r["fwd_bwd_cpu_s_of_min"] / r["batch"]:.3f}) |'
      f' {r["fwd_temp_bytes"] / mb:.1f} | {r["fwd_bwd_temp_bytes"] / mb:.1f} |'
      f' {r["peak_rss_before_compile_bytes"] / mb:.0f} / {r["peak_rss_bytes"] / mb:.0f} |'
      f' {r["fwd_compile_s"]:.1f}, {r["fwd_bwd_compile_s"]:.1f} |'
    )


if __name__ == '__main__':
  main()
