"""Exact semantic search speed: `SearchIndex.nearest` over a memory-mapped float32 index.

Writes an index directory of N random unit vectors (the layout `build_index` writes; the texts are
placeholders, no model is run), then times `nearest` for 1 query and for a batch of 32 queries,
after one warm-up search (the file in the page cache), as wall seconds and process CPU seconds.
This is the number that decides whether an approximate-nearest-neighbour library would earn its
place: exact search is one matrix product per block of rows, so its cost grows linearly with N.

    python benchmarks/search_speed.py --sizes 100000 1000000 --dimension 768

Prints a table and writes `benchmarks/results/search_speed.json`.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def write_index(directory, count, dimension, seed=0, block=100000):
    from albert_keras.representations import search

    rng = np.random.default_rng(seed)
    embeddings = np.lib.format.open_memmap(os.path.join(directory, search.EMBEDDINGS_FILE), "w+", np.float32,
                                           (count, dimension))
    for start in range(0, count, block):
        rows = rng.standard_normal((min(block, count - start), dimension), dtype=np.float32)
        embeddings[start : start + len(rows)] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    embeddings.flush()
    del embeddings
    line = (json.dumps("text") + "\n").encode()
    with open(os.path.join(directory, search.TEXTS_FILE), "wb") as f:
        f.write(line * count)
    np.save(os.path.join(directory, search.OFFSETS_FILE), np.arange(count + 1, dtype=np.int64) * len(line))
    with open(os.path.join(directory, search.INDEX_FILE), "w") as f:
        json.dump({"format": search.FORMAT_VERSION, "count": count, "dimension": dimension, "metric": "cosine",
                   "model": {"fingerprint": "benchmark", "path": None}}, f)


def timed(function, repeats):
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return float(np.median(wall)), float(np.median(cpu))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100000, 1000000])
    parser.add_argument("--dimension", type=int, default=768, help="embedding width (ALBERT-base: 768)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "search_speed.json"))
    args = parser.parse_args(argv)

    from albert_keras.representations.search import SearchIndex

    rng = np.random.default_rng(1)
    rows = []
    for count in args.sizes:
        with tempfile.TemporaryDirectory(prefix="albert_search_") as directory:
            started = time.perf_counter()
            write_index(directory, count, args.dimension)
            written = time.perf_counter() - started
            index = SearchIndex(directory)
            for queries in (1, 32):
                vectors = rng.standard_normal((queries, args.dimension), dtype=np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                index.nearest(vectors, k=args.k)  # warm-up: the file in the page cache
                wall, cpu = timed(lambda: index.nearest(vectors, k=args.k), args.repeats)
                rows.append({"vectors": count, "dimension": args.dimension, "queries": queries, "k": args.k,
                             "index_mb": round(count * args.dimension * 4 / 1e6, 1), "wall_s": round(wall, 4),
                             "cpu_s": round(cpu, 4), "ms_per_query": round(1000 * wall / queries, 2),
                             "write_s": round(written, 1)})
    print(f"{'vectors':>10} {'dim':>5} {'queries':>7} {'index MB':>9} {'wall s':>8} {'CPU s':>8} {'ms/query':>9}")
    for r in rows:
        print(f"{r['vectors']:>10,} {r['dimension']:>5} {r['queries']:>7} {r['index_mb']:>9,.1f} {r['wall_s']:>8.3f} "
              f"{r['cpu_s']:>8.3f} {r['ms_per_query']:>9.2f}")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"rows": rows, "cpu": _cpu_name(), "numpy": np.__version__}, f, indent=2)


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


if __name__ == "__main__":
    main()
