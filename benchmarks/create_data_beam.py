"""`create-data --runner beam` (DirectRunner) against the local runner: records/s per core, memory.

Each run is a fresh child process on the same corpus, model and settings; its CPU time is summed
over its whole process tree (local workers, the DirectRunner's SDK worker processes), sampled
from /proc.
Two corpus sizes, the second 4x the first, give the *marginal* throughput (extra records / extra
CPU-seconds: start-up costs such as importing TensorFlow and Beam, or spawning workers, cancel
out) and show how worker and driver memory grow with the corpus. Corpus and model as in
`benchmarks/create_data.py` (the embedded corpus repeated to size; a SentencePiece model trained
on it).

    python benchmarks/create_data_beam.py --sizes-mb 1 4 --beam-workers 2

Prints a table and writes `benchmarks/results/create_data_beam.json`.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from create_data import make_corpus  # noqa: E402  (the sibling benchmark's corpus and model)
from create_data import train_model  # noqa: E402

_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
kwargs = dict(max_seq_length={seq}, max_predictions_per_seq={pred}, dupe_factor={dupe}, overwrite=True)
start = time.monotonic()
if {beam!r}:
    from albert_keras.data.beam import create_pretraining_data_beam
    manifest = create_pretraining_data_beam([{corpus!r}], {model!r}, {output!r}, beam_options={beam!r},
                                            split_bytes={split}, **kwargs)
else:
    from albert_keras.data.create import create_pretraining_data
    manifest = create_pretraining_data([{corpus!r}], {model!r}, {output!r}, workers={workers}, **kwargs)
run = manifest["run"]
print(json.dumps(dict(instances=manifest["statistics"]["instances"], main_mb=run["peak_rss_mb_main"],
                      worker_mb=run["peak_rss_mb_worker"] or 0, inner_seconds=time.monotonic() - start)))
"""


def _process_tree(root):
    """{pid: (cpu seconds, peak RSS MB)} of `root` and its live descendants, from /proc."""
    parents, info = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{name}/status") as f:
                peak = next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")), 0.0)
        except OSError:
            continue
        parents[int(name)] = int(fields[1])
        info[int(name)] = ((int(fields[11]) + int(fields[12])) / tick, peak)
    tree, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        if pid in info:
            tree[pid] = info[pid]
        frontier += [child for child, parent in parents.items() if parent == pid]
    return tree


def run_child(args, corpus, model, output, workers=1, beam=""):
    """Run one create-data child; CPU and peak memory summed over its whole process tree.

    The tree is sampled from /proc every 0.2 s: the DirectRunner does not always reap its SDK
    worker processes before exiting, so RUSAGE_CHILDREN would miss them. What a process uses in
    its last 0.2 s is missed too (small against these runs).
    """
    code = _CHILD.format(root=ROOT, corpus=corpus, model=model, output=output, seq=args.max_seq_length,
                         pred=args.max_predictions, dupe=args.dupe_factor, workers=workers, beam=beam,
                         split=int(args.split_mb * 1e6))
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = {}
    reader = __import__("threading").Thread(target=lambda: seen.setdefault("out", process.communicate()))
    reader.start()
    while process.poll() is None:
        for pid, (cpu, peak) in _process_tree(process.pid).items():
            # A process that is exiting may show less (a zombie has no memory figures): keep maxima.
            last_cpu, last_peak = seen.get(pid, (0.0, 0.0))
            seen[pid] = (max(cpu, last_cpu), max(peak, last_peak))
        time.sleep(0.2)
    reader.join()
    wall = time.monotonic() - start
    stdout, stderr = seen.pop("out")
    if process.returncode != 0:
        raise RuntimeError(f"child failed:\n{stderr[-3000:]}")
    report = json.loads(stdout.strip().splitlines()[-1])
    cpu = sum(c for c, _ in seen.values())
    # Peaks from /proc (VmHWM) for the whole process: the manifest's worker figure is taken in the
    # record stage, before a Beam worker loads TensorFlow to write shards.
    workers = [peak for pid, (_, peak) in seen.items() if pid != process.pid]
    return {"seconds": wall, "cpu_seconds": cpu, "instances": report["instances"], "processes": len(seen),
            "driver_peak_rss_mb": seen.get(process.pid, (0, report["main_mb"]))[1],
            "worker_peak_rss_mb": max(workers, default=0.0), "manifest_worker_peak_rss_mb": report["worker_mb"]}


def _ratio(records, seconds):
    return records / seconds if seconds >= 1.0 else None


def _relative(value, base):
    return "n/a" if value is None or base is None else f"{value / base:.2f}x"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs=2, default=[1.0, 4.0])
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--max-predictions", type=int, default=20)
    parser.add_argument("--dupe-factor", type=int, default=1)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--spm-model", help="use this model instead of training one")
    parser.add_argument("--local-workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--beam-workers", type=int, default=2, help="DirectRunner --direct_num_workers")
    parser.add_argument("--split-mb", type=float, default=1.0, help="Beam work unit (MB of text)")
    parser.add_argument("--work-dir", help="where corpora and outputs go (default: a temp dir)")
    args = parser.parse_args(argv)

    sys.path.insert(0, ROOT)
    work = args.work_dir or tempfile.mkdtemp(prefix="albert_beam_bench_")
    os.makedirs(work, exist_ok=True)
    corpora = []
    for size in args.sizes_mb:
        path = os.path.join(work, f"corpus_{size:g}mb.txt")
        corpora.append((path, make_corpus(path, int(size * 1e6)) / 1e6))
    model = args.spm_model or train_model(corpora[0][0], os.path.join(work, "spm"), args.vocab_size)
    beam_options = (f"--runner=DirectRunner --direct_num_workers={args.beam_workers} "
                    "--direct_running_mode=multi_processing")
    systems = [(f"local, {w} worker{'s' if w > 1 else ''}", w, "") for w in args.local_workers]
    systems.append((f"Beam DirectRunner, {args.beam_workers} workers (multi_processing)", args.beam_workers, beam_options))
    rows = []
    for name, workers, beam in systems:
        runs = []
        for corpus, mb in corpora:
            result = run_child(args, corpus, model, os.path.join(work, f"out_{len(rows)}_{len(runs)}"), workers, beam)
            result["mb"] = mb
            runs.append(result)
            print(f"  {name}: {mb:.2f} MB, {result['instances']} records in {result['seconds']:.1f} s "
                  f"({result['cpu_seconds']:.1f} CPU-s)", file=sys.stderr)
        small, large = runs
        extra = large["instances"] - small["instances"]
        # Below a second of difference the marginal figure is noise: make the corpora larger.
        rows.append({
            "system": name, "runs": runs,
            "marginal_records_per_cpu_second": _ratio(extra, large["cpu_seconds"] - small["cpu_seconds"]),
            "marginal_records_per_second": _ratio(extra, large["seconds"] - small["seconds"]),
        })
    base = rows[0]["marginal_records_per_cpu_second"]
    show = lambda value: "n/a" if value is None else f"{value:.0f}"
    print()
    print(f"max_seq_length {args.max_seq_length}, max_predictions {args.max_predictions}, dupe_factor "
          f"{args.dupe_factor}; corpora {corpora[0][1]:.2f} and {corpora[1][1]:.2f} MB; Beam split {args.split_mb:g} MB")
    header = ("system", "records (small, large)", "wall s", "CPU s", "marginal records/s (wall)",
              "marginal records per CPU-s", "vs local 1 worker, per core", "driver peak MB", "worker peak MB")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        small, large = row["runs"]
        print(f"| {row['system']} | {small['instances']}, {large['instances']} | {small['seconds']:.1f}, "
              f"{large['seconds']:.1f} | {small['cpu_seconds']:.1f}, {large['cpu_seconds']:.1f} | "
              f"{show(row['marginal_records_per_second'])} | {show(row['marginal_records_per_cpu_second'])} | "
              f"{_relative(row['marginal_records_per_cpu_second'], base)} | {small['driver_peak_rss_mb']:.0f}, "
              f"{large['driver_peak_rss_mb']:.0f} | {small['worker_peak_rss_mb']:.0f}, {large['worker_peak_rss_mb']:.0f} |")
    results_dir = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "create_data_beam.json"), "w") as f:
        json.dump({"settings": vars(args), "corpora_mb": [c[1] for c in corpora], "rows": rows}, f, indent=2)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
