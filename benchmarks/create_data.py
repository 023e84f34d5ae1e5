"""Throughput and peak memory of `create-data`, optionally against the official script.

Measures MB of input text per second and peak resident memory at two corpus sizes, each in a fresh
child process, and reports the *marginal* throughput (extra MB / extra seconds), so fixed start-up
costs (importing TensorFlow, spawning workers) cancel out. It is given both per wall-clock second
and per CPU-second of all the run's processes; the latter is the per-core figure, and it is not
distorted when other work shares the machine. With `--official-checkout PATH` (a
checkout of google-research/ALBERT; never vendored) it runs the official
`create_pretraining_data.py` on the same corpus, model and settings and prints the ratio.

Corpus: the embedded corpus (`albert_keras.corpus`, CPython's pydoc topics, ~0.34 MB) written
as one sentence per line and concatenated with itself until each size is reached (documents stay
separated by blank lines). Model: a unigram SentencePiece model with the official flags trained
on that corpus; `--vocab-size 8000` asks for 8k pieces, but this small corpus supports only
~3.2k, which is what you get (`hard_vocab_limit=false`); pass `--spm-model` to use your own.
A smaller vocabulary means more, shorter pieces per MB, so it is the harder case for us.

    python benchmarks/create_data.py --sizes-mb 1.5 6 --max-seq-length 512 --max-predictions 20
    python benchmarks/create_data.py --sizes-mb 6 60 --official-sizes-mb 1.5 6 \
        --official-checkout /tmp/ALBERT --workers 1 2 --memory-check-mb 120

Prints a table and writes `benchmarks/results/create_data.json`.
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_OURS = """
import json, sys, time
sys.path.insert(0, {root!r})
from albert_keras.data.create import create_pretraining_data
start = time.monotonic()
manifest = create_pretraining_data([{corpus!r}], {model!r}, {output!r}, max_seq_length={seq},
    max_predictions_per_seq={pred}, dupe_factor={dupe}, workers={workers}, overwrite=True)
run = manifest["run"]
print(json.dumps(dict(instances=manifest["statistics"]["instances"], main_mb=run["peak_rss_mb_main"],
                      worker_mb=run["peak_rss_mb_worker"] or 0, inner_seconds=time.monotonic() - start)))
"""


def make_corpus(path, size_bytes):
    from albert_keras.corpus import write_embedded_corpus

    with tempfile.TemporaryDirectory() as tmp:
        base = open(write_embedded_corpus(os.path.join(tmp, "c.txt")), "rb").read().rstrip(b"\n") + b"\n\n"
    with open(path, "wb") as f:
        written = 0
        while written < size_bytes:
            f.write(base)
            written += len(base)
    return os.path.getsize(path)


def train_model(corpus, prefix, vocab_size):
    import sentencepiece

    sentencepiece.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, vocab_size=vocab_size, hard_vocab_limit=False,
        pad_id=0, unk_id=1, eos_id=-1, bos_id=-1, control_symbols="[CLS],[SEP],[MASK]",
        user_defined_symbols='(,),",-,.,–,£,€', character_coverage=0.99995, model_type="unigram",
        minloglevel=2,
    )
    return prefix + ".model"


def _run_child(command, env=None):
    """Run `command`; return (wall seconds, peak RSS in MB of the largest child so far, stdout)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    _run_child.cpu_seconds = usage.ru_utime + usage.ru_stime - cpu_before
    if result.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed:\n{result.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is a running maximum over all children (and Linux carries a parent's
    # peak across fork+exec), so each child reports its own peak instead; this is a fallback.
    return wall, max(peak, before) / 1024, result.stdout


def run_ours(corpus, model, output, args, workers):
    code = _OURS.format(root=ROOT, corpus=corpus, model=model, output=output, seq=args.max_seq_length,
                        pred=args.max_predictions, dupe=args.dupe_factor, workers=workers)
    wall, _, stdout = _run_child([sys.executable, "-c", code])
    report = json.loads(stdout.strip().splitlines()[-1])
    return {"seconds": wall, "cpu_seconds": _run_child.cpu_seconds, "peak_rss_mb": report["main_mb"], "worker_peak_rss_mb": report["worker_mb"],
            "instances": report["instances"]}


def prepare_official(checkout, directory):
    """Copy the official script into `directory/albert/` with the local edits of reference §8.3:
    drop the unused `tensorflow_hub` import and seed NumPy (so runs are comparable)."""
    package = os.path.join(directory, "albert")
    os.makedirs(package, exist_ok=True)
    for name in ("create_pretraining_data.py", "tokenization.py", "__init__.py"):
        shutil.copy(os.path.join(checkout, name), package)
    path = os.path.join(package, "tokenization.py")
    text = open(path).read().replace("import tensorflow_hub as hub", "hub = None")
    open(path, "w").write(text)
    path = os.path.join(package, "create_pretraining_data.py")
    text = open(path).read()
    text = re.sub(r"(\n(\s*)rng = random\.Random\(FLAGS\.random_seed\)\n)", r"\1\2np.random.seed(FLAGS.random_seed)\n", text)
    open(path, "w").write(text)
    return directory


def run_official(parent, corpus, model, output, args):
    command = [
        sys.executable, "-m", "albert.create_pretraining_data", f"--input_file={corpus}",
        f"--output_file={output}", "--vocab_file=unused", f"--spm_model_file={model}",
        f"--max_seq_length={args.max_seq_length}", f"--max_predictions_per_seq={args.max_predictions}",
        f"--dupe_factor={args.dupe_factor}", "--do_lower_case=true",
    ]
    env = dict(os.environ, PYTHONPATH=parent)
    code = (
        "import resource, runpy, sys\n"
        f"sys.argv = {command[2:]!r}\n"
        "sys.argv[0] = 'create_pretraining_data'\n"
        "try:\n"
        "    runpy.run_module('albert.create_pretraining_data', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as e:\n"
        "    if e.code not in (0, None): raise\n"
        "print('RSS', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    )
    wall, _, stdout = _run_child([sys.executable, "-c", code], env=env)
    rss = int(re.findall(r"RSS (\d+)", stdout)[-1]) / 1024
    return {"seconds": wall, "cpu_seconds": _run_child.cpu_seconds, "peak_rss_mb": rss}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs=2, default=[1.5, 6.0])
    parser.add_argument("--official-sizes-mb", type=float, nargs=2,
                        help="corpus sizes for the official script (default: --sizes-mb); it is ~50x slower")
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--max-predictions", type=int, default=20)
    parser.add_argument("--dupe-factor", type=int, default=1)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--spm-model", help="use this model instead of training one")
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--official-checkout", help="a checkout of google-research/ALBERT")
    parser.add_argument("--memory-check-mb", type=float, default=0,
                        help="also run ours (first --workers value) on a corpus this big, to show flat memory")
    parser.add_argument("--work-dir", help="where corpora and outputs go (default: a temp dir)")
    args = parser.parse_args(argv)

    sys.path.insert(0, ROOT)
    work = args.work_dir or tempfile.mkdtemp(prefix="albert_create_bench_")
    os.makedirs(work, exist_ok=True)
    def corpora_of(sizes):
        result = []
        for size in sizes:
            path = os.path.join(work, f"corpus_{size:g}mb.txt")
            result.append((path, make_corpus(path, int(size * 1e6)) / 1e6))
        return result

    corpora = corpora_of(args.sizes_mb)
    official_corpora = corpora_of(args.official_sizes_mb) if args.official_sizes_mb else corpora
    model = args.spm_model or train_model(corpora[0][0], os.path.join(work, "spm"), args.vocab_size)
    import sentencepiece

    vocab = sentencepiece.SentencePieceProcessor(model_file=model).get_piece_size()

    rows = []
    systems = [(f"albert-keras, {w} worker{'s' if w > 1 else ''}", w) for w in args.workers]
    if args.official_checkout:
        official_parent = prepare_official(args.official_checkout, os.path.join(work, "official"))
        systems.append(("official create_pretraining_data.py", None))
    for name, workers in systems:
        runs = []
        for corpus, mb in (official_corpora if workers is None else corpora):
            output = os.path.join(work, f"out_{len(rows)}_{len(runs)}")
            if workers is None:
                result = run_official(official_parent, corpus, model, output + ".tfrecord", args)
            else:
                result = run_ours(corpus, model, output, args, workers)
            result["mb"] = mb
            runs.append(result)
            print(f"  {name}: {mb:.2f} MB in {result['seconds']:.1f} s, peak {result['peak_rss_mb']:.0f} MB",
                  file=sys.stderr)
        (small, large) = runs
        marginal = (large["mb"] - small["mb"]) / max(large["seconds"] - small["seconds"], 1e-9)
        # MB per CPU-second of all the run's processes: per-core throughput that other load on
        # the machine does not distort (wall time does).
        per_cpu = (large["mb"] - small["mb"]) / max(large["cpu_seconds"] - small["cpu_seconds"], 1e-9)
        rows.append({"system": name, "workers": workers or 1, "runs": runs, "marginal_mb_per_s": marginal,
                     "marginal_mb_per_cpu_second": per_cpu})

    memory_check = None
    if args.memory_check_mb:
        path = os.path.join(work, f"corpus_{args.memory_check_mb:g}mb.txt")
        mb = make_corpus(path, int(args.memory_check_mb * 1e6)) / 1e6
        memory_check = run_ours(path, model, os.path.join(work, "out_memory"), args, args.workers[0])
        memory_check["mb"] = mb
        os.remove(path)

    print()
    print(f"vocab {vocab}, max_seq_length {args.max_seq_length}, max_predictions {args.max_predictions}, "
          f"dupe_factor {args.dupe_factor}; corpora {corpora[0][1]:.2f} MB and {corpora[1][1]:.2f} MB"
          + (f" (official: {official_corpora[0][1]:.2f} and {official_corpora[1][1]:.2f} MB)"
             if official_corpora is not corpora else ""))
    header = ("system", "text MB (small, large)", "wall s", "CPU s", "peak memory MB (all processes)",
              "marginal MB/s (wall)", "marginal MB per CPU-second")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        small, large = row["runs"]
        peak = lambda r: r["peak_rss_mb"] + r.get("worker_peak_rss_mb", 0) * (row["workers"] if row["workers"] > 1 else 0)
        print(f"| {row['system']} | {small['mb']:.2f}, {large['mb']:.2f} | {small['seconds']:.1f}, "
              f"{large['seconds']:.1f} | {small['cpu_seconds']:.1f}, {large['cpu_seconds']:.1f} | "
              f"{peak(small):.0f}, {peak(large):.0f} | {row['marginal_mb_per_s']:.2f} | "
              f"{row['marginal_mb_per_cpu_second']:.2f} |")
    if memory_check:
        m = memory_check
        print(f"memory check, {args.workers[0]} worker(s): {m['mb']:.1f} MB of text in {m['seconds']:.1f} s "
              f"({m['mb'] / m['seconds']:.2f} MB/s overall), peak {m['peak_rss_mb']:.0f} MB main"
              + (f" + {m['worker_peak_rss_mb']:.0f} MB per worker" if args.workers[0] > 1 else ""))
    official = [r for r in rows if r["workers"] and r["system"].startswith("official")]
    if official:
        base = official[0]
        for row in rows:
            if row is not base:
                print(f"{row['system']}: {row['marginal_mb_per_cpu_second'] / base['marginal_mb_per_cpu_second']:.1f}x "
                      f"the official marginal throughput per CPU-second (per core); "
                      f"{row['marginal_mb_per_s'] / base['marginal_mb_per_s']:.1f}x in wall-clock MB/s")
    results_dir = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "create_data.json"), "w") as f:
        json.dump({"settings": vars(args), "vocab_size": vocab, "corpora_mb": [c[1] for c in corpora],
                   "official_corpora_mb": [c[1] for c in official_corpora], "rows": rows,
                   "memory_check": memory_check}, f, indent=2)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
