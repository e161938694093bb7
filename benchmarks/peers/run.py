"""genzoo side by side with the libraries users would pick instead: the same network, data, split,
batch size, optimizer and steps, one thread each, timed in alternating rounds (issue 27).

    pip install -e '.[peers]'
    python benchmarks/peers/run.py [--only diffusers pythae flows transformers sklearn] [--quick]

Each pair lives in its own script here (runnable alone, with the same flags), which returns rows of
one table: a task (training steps, sampling, generation), genzoo's rate, the peer's, their ratio
(> 1: genzoo faster) in wall-clock time and in CPU time (the steadier of the two when other jobs share
the machine), the parameter counts of both networks, and the quality both reach after the same
steps (FID, NLL, validation loss), each measured by one estimator for both; the NLLs and the
validation loss as mean ± standard deviation over three seeds (the timed run and two untimed reruns).
`--quick` is a smoke check (a few minutes in all); its figures are not the table's.
Results: benchmarks/results/peers.json (or peers_quick.json) and the markdown table printed at the end.
"""

from __future__ import annotations

import argparse
import importlib
import time

from sidebyside import one_thread, save, table

PAIRS = {
    "diffusers": "diffusers_ddpm",
    "pythae": "pythae_vae",
    "flows": "flows_maf_realnvp",
    "transformers": "transformers_gpt",
    "sklearn": "sklearn_rbm",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="+", choices=list(PAIRS), default=list(PAIRS))
    parser.add_argument("--quick", action="store_true", help="smoke check: a few minutes in all")
    args = parser.parse_args()
    one_thread()
    rows, seconds = [], {}
    for name in args.only:
        start = time.perf_counter()
        module = importlib.import_module(PAIRS[name])
        rows.extend(module.run(quick=args.quick))
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: done in {seconds[name]} s", flush=True)
    text = table(rows)
    save("peers_quick" if args.quick else "peers", {
        "protocol": __doc__.split("\n\n")[2].replace("\n", " "),
        "command": "python benchmarks/peers/run.py" + (" --quick" if args.quick else ""),
        "rows": rows, "seconds": seconds, "table": text,
    })  # fmt: skip
    print(text)


if __name__ == "__main__":
    main()
