"""Model speed on this CPU: inference images/s at batch 1 and 32 for the Keras model, each
LiteRT export of a bundle and the app's own inference path (``inspector.engine`` on the LiteRT
format it picks, all outputs a verdict needs, in a child process without TensorFlow; with its
model-ready time; colour and grey images), next to MobileNetV1 (alpha 1, 224x224, random
weights: speed only) run in the same process, plus training images/s and the bundle's recorded training wall time.

    python benchmarks/bench_model.py [--bundle resources/ssdc-mininet] [--json out.json]
                                     [--seconds 3] [--no-train]

Training img/s is reported at 200x200 and at 128x128 (the native resolution the retraining
defaults pick for 128x128 images), as the app trains (``training.fused_bn``) and with Keras' own
batch normalisation (how it trained before), next to MobileNetV1's, in alternating rounds of
the same run.

Ratios are against MobileNetV1 measured in the same run, so they hold on other machines too.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


SECONDS = [3.0]   # per measurement (--seconds)


def rate(fn, batch: int, seconds: float | None = None, min_runs: int = 3) -> float:
    """Images per second of ``fn()`` processing ``batch`` images, after one warm-up call."""
    seconds = SECONDS[0] if seconds is None else seconds
    fn()
    runs, t0 = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - t0 < seconds:
        fn()
        runs += 1
    return runs * batch / (time.perf_counter() - t0)


def yardstick() -> float:
    """The machine's yardstick: MobileNetV1 (alpha 1, 224x224, random weights) in Keras at batch
    32, images/s (``python benchmarks/bench_model.py --yardstick [SECONDS]`` prints it alone)."""
    import keras

    mobilenet = keras.applications.MobileNet(input_shape=(224, 224, 3), alpha=1.0, weights=None,
                                             classes=6)
    return keras_rates(mobilenet, 224, batches=(32,))["batch32"]


def keras_rates(model, size: int, batches=(1, 32)) -> dict:
    import tensorflow as tf

    f = tf.function(lambda x: model(x, training=False))
    out = {}
    for b in batches:
        x = tf.constant(np.random.default_rng(0).integers(0, 255, (b, size, size, 3)).astype(np.float32))
        out[f"batch{b}"] = rate(lambda: f(x).numpy(), b)
    return out


def litert_rates(path: Path, size: int) -> dict:
    """Measured in a child process that never loads TensorFlow: LiteRT and TensorFlow's own
    TFLite runtime in one process crash."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--litert", str(path), str(size),
                          str(SECONDS[0])], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def engine_rates(bundle: Path, baseline: Path | None = None) -> dict:
    """The app's inference path, in a fresh child process (what a user's start costs)."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--engine", str(bundle), str(SECONDS[0])]
                         + ([str(baseline)] if baseline else []),
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _engine_rates_here(bundle: Path, baseline: Path | None = None) -> dict:
    t0 = time.perf_counter()
    from inspector.engine import load_classifier

    clf = load_classifier(bundle)
    ready = time.perf_counter() - t0
    s = clf.input_size
    out = {"model_ready_s": round(ready, 3), "device": clf.device,
           "tensorflow_loaded": "tensorflow" in sys.modules,
           "unknown_score_in_graph": bool(getattr(clf.backend, "graph_score", False))}
    # what the unknown verdict costs is measured against a forward pass that gives only the
    # probabilities: the same runner's (no pooled features copied out, no detector), or with
    # ``baseline``, the runner of that bundle's export in the same format, which lacks the
    # unknown score in its graph (``python -m training export --no-graph-score``): where the
    # score is in the graph, every invoke of the bundle's own export computes it
    base = clf.backend.runner
    if baseline is not None and clf.runtime_format is not None:
        from training.litert import open_runner, read_info

        base = open_runner(baseline, clf.runtime_format, read_info(baseline), clf.num_threads)
        out["baseline"] = str(baseline)
    for b in (1, 32):
        x = np.random.default_rng(0).integers(0, 255, (b, s, s, 3)).astype(np.uint8)
        out[f"batch{b}"] = rate(lambda: clf.judge(x), b)
        if clf.detector is not None and clf.runtime_format is not None:
            # the two calls alternated and compared by their median times (this machine's speed
            # drifts)
            def probs_only():
                return base.run(x.astype(np.float32), ["probs"])
            times: dict[str, list[float]] = {"judge": [], "probs": []}
            t_end = time.perf_counter() + SECONDS[0]
            while time.perf_counter() < t_end or len(times["judge"]) < 5:
                for key, fn in (("judge", lambda: clf.judge(x)), ("probs", probs_only)):
                    t = time.perf_counter()
                    fn()
                    times[key].append(time.perf_counter() - t)
            judge, probs = float(np.median(times["judge"])), float(np.median(times["probs"]))
            out[f"batch{b}_median_ms"] = round(judge * 1000, 3)
            out[f"batch{b}_probs_only_median_ms"] = round(probs * 1000, 3)
            out[f"batch{b}_unknown_verdict_cost"] = round(judge / probs - 1, 3)
            # the same in blocks: each call repeated (as a camera runs one model frame after
            # frame), blocks alternated, the median of the paired blocks' ratios. Alternating
            # call by call, each invoke of the other model evicts this one's constants from the
            # caches, which costs the model with the larger ones (the score's k-NN bank) more
            out[f"batch{b}_unknown_verdict_cost_steady"] = round(
                _block_ratio(lambda: clf.judge(x), probs_only, 10 if b == 1 else 2) - 1, 3)
    # grey images (a monochrome line camera, NEU): the export's grey twin runs them
    # (training.model.grey_model); their rate, and the colour images' time over theirs in
    # alternating blocks
    out["grey_twin"] = bool(getattr(getattr(clf.backend, "runner", None), "has_grey", False))
    for b in (1, 32):
        x = np.random.default_rng(0).integers(0, 255, (b, s, s, 3)).astype(np.uint8)
        g = np.repeat(x[..., :1], 3, axis=-1)
        out[f"batch{b}_grey"] = rate(lambda: clf.judge(g), b)
        out[f"batch{b}_colour_over_grey_time"] = round(
            _block_ratio(lambda: clf.judge(x), lambda: clf.judge(g), 10 if b == 1 else 2), 3)
    # batches as ``inspector classify`` runs them: a single-threaded interpreter per core (the
    # window's engine above keeps a core for decoding and the GUI: one less)
    if clf.runtime_format is not None:
        from inspector.batch import cli_threads

        cli = load_classifier(bundle, num_threads=cli_threads())
        out["cli_threads"] = cli_threads()
        for kind, imgs in (("colour", x), ("grey", g)):
            out[f"cli_batch32_{kind}"] = rate(lambda: cli.judge(imgs), 32)
    return out


def _block_ratio(a, b, calls: int, blocks: int = 40) -> float:
    """Median over ``blocks`` pairs of the time of ``calls`` calls of ``a`` over those of ``b``
    (after two warm-up calls each; the order within a pair alternates)."""
    ratios = []
    for i in range(blocks):
        took = {}
        for name, fn in ((("a", a), ("b", b)) if i % 2 == 0 else (("b", b), ("a", a))):
            fn()
            fn()
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            took[name] = time.perf_counter() - t
        ratios.append(took["a"] / took["b"])
    return float(np.median(ratios))


def _litert_rates_here(path: Path, size: int) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    out = {}
    for b in (1, 32):
        it = Interpreter(model_path=str(path), num_threads=os.cpu_count())
        inp = it.get_input_details()[0]
        if b != 1:
            it.resize_tensor_input(inp["index"], [b, size, size, 3])
        it.allocate_tensors()
        inp = it.get_input_details()[0]
        x = np.random.default_rng(0).integers(0, 255, (b, size, size, 3)).astype(inp["dtype"])
        it.set_tensor(inp["index"], x)
        out[f"batch{b}"] = rate(it.invoke, b)
    return out


def tflite_fp32_bytes(model) -> bytes:
    from training.export import convert

    return convert(model, "tflite-fp32")


def train_rates(models: dict, rounds: int = 6, steps: int = 2, batch: int = 32) -> dict:
    """Training images/s of each ``name: (model, size)``, measured in alternating rounds (each
    model ``steps`` batches per round) so that a machine whose speed drifts during the run
    affects every model alike and their ratios hold."""
    import keras

    data, took = {}, {}
    for name, (model, size) in models.items():
        model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
        x = np.random.default_rng(0).integers(0, 255, (batch, size, size, 3)).astype(np.float32)
        k = model.output_shape[-1]
        data[name] = (x, keras.utils.to_categorical(np.arange(batch) % k, k))
        model.train_on_batch(*data[name])
        took[name] = 0.0
    for _ in range(rounds):
        for name, (model, _size) in models.items():
            t = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(*data[name])
            took[name] += time.perf_counter() - t
    return {name: rounds * steps * batch / took[name] for name in models}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--litert"]:
        SECONDS[0] = float(argv[3])
        print(json.dumps(_litert_rates_here(Path(argv[1]), int(argv[2]))))
        return 0
    if argv[:1] == ["--engine"]:
        SECONDS[0] = float(argv[2])
        print(json.dumps(_engine_rates_here(Path(argv[1]),
                                            Path(argv[3]) if len(argv) > 3 else None)))
        return 0
    if argv[:1] == ["--yardstick"]:
        SECONDS[0] = float(argv[1]) if len(argv) > 1 else 5.0
        print(json.dumps({"mobilenetv1_keras_b32": round(yardstick(), 1)}))
        return 0
    import keras

    from training.bundle import TFLITE_FILES, load_bundle

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="as the first argument instead, alone:\n"
               "  --yardstick [SECONDS]        the machine's yardstick only (MobileNetV1 Keras "
               "batch-32 img/s)\n"
               "  --engine BUNDLE SECONDS [COPY]  the app's engine alone, in this process (COPY: "
               "a baseline export without the unknown score)\n"
               "  --litert FILE SIZE SECONDS   one LiteRT file's inference rates")
    ap.add_argument("--bundle", default=str(Path(__file__).resolve().parent.parent / "resources" / "ssdc-mininet"))
    ap.add_argument("--json")
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    ap.add_argument("--no-train", action="store_true", help="skip the training speeds")
    ap.add_argument("--baseline", help="a copy of the bundle exported without the unknown score "
                                       "in its graph (python -m training export --no-graph-score):"
                                       " the unknown verdict's cost is measured against it")
    args = ap.parse_args(argv)
    SECONDS[0] = args.seconds
    bundle = load_bundle(args.bundle)
    size = bundle.input_size
    res = {"bundle": str(args.bundle), "cpu_count": os.cpu_count(), "rows": {}}

    res["rows"]["ssdc_app_engine"] = engine = engine_rates(
        Path(args.bundle), Path(args.baseline) if args.baseline else None)
    res["rows"]["ssdc_keras"] = keras_rates(bundle.model, size)
    for fmt, name in TFLITE_FILES.items():
        if (Path(args.bundle) / name).exists():
            res["rows"][f"ssdc_{fmt}"] = litert_rates(Path(args.bundle) / name, size)
    mobilenet = keras.applications.MobileNet(input_shape=(224, 224, 3), alpha=1.0, weights=None,
                                             classes=6)
    res["rows"]["mobilenetv1_keras_224"] = keras_rates(mobilenet, 224)
    tmp = Path(args.bundle).parent / ".bench_mobilenet.tflite"
    try:
        tmp.write_bytes(tflite_fp32_bytes(mobilenet))
        res["rows"]["mobilenetv1_tflite-fp32_224"] = litert_rates(tmp, 224)
    finally:
        tmp.unlink(missing_ok=True)
    ref = res["rows"]["mobilenetv1_keras_224"]
    print(f"{'model':<30}{'batch 1 img/s':>15}{'batch 32 img/s':>16}{'x MobileNetV1 (b1/b32)':>26}")
    for name, r in res["rows"].items():
        print(f"{name:<30}{r['batch1']:>15.1f}{r['batch32']:>16.1f}"
              f"{r['batch1'] / ref['batch1']:>13.1f}x /{r['batch32'] / ref['batch32']:>6.1f}x")
    if "batch1_unknown_verdict_cost" in engine:
        print(f"the unknown verdict (detector and its outputs) costs the app engine "
              f"{engine['batch1_unknown_verdict_cost']:.1%} at batch 1, "
              f"{engine['batch32_unknown_verdict_cost']:.1%} at batch 32 (target <= 10%); each "
              f"repeated in blocks: {engine['batch1_unknown_verdict_cost_steady']:.1%} and "
              f"{engine['batch32_unknown_verdict_cost_steady']:.1%}"
              + ("" if "baseline" in engine or not engine.get("unknown_score_in_graph") else
                 "; against the same export, whose every invoke computes the score in its "
                 "graph: pass --baseline for what that costs"))
    if "batch1_grey" in engine:
        print(f"{'ssdc_app_engine, grey images':<30}{engine['batch1_grey']:>15.1f}"
              f"{engine['batch32_grey']:>16.1f}{engine['batch1_grey'] / ref['batch1']:>13.1f}x /"
              f"{engine['batch32_grey'] / ref['batch32']:>6.1f}x  (grey twin: "
              f"{engine['grey_twin']}; colour images take "
              f"{engine['batch1_colour_over_grey_time']:.2f}x"
              f" / {engine['batch32_colour_over_grey_time']:.2f}x their time)")
    if "cli_batch32_grey" in engine:
        print(f"{'app engine as classify runs it':<30}{'':>15}{engine['cli_batch32_colour']:>16.1f}"
              f"{'':>14} {engine['cli_batch32_colour'] / ref['batch32']:>6.1f}x  (colour; grey "
              f"images {engine['cli_batch32_grey']:.1f} img/s, "
              f"{engine['cli_batch32_grey'] / ref['batch32']:.1f}x; {engine['cli_threads']} "
              f"interpreters)")
    print(f"app engine: {engine['device']}; model ready {engine['model_ready_s']:.2f} s after "
          f"its process started importing; TensorFlow loaded: {engine['tensorflow_loaded']}")
    if args.no_train:
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        return 0
    from training.fused_bn import use_fused_batch_norm
    from training.model import build_ssdc_mininet, input_norm_of

    design = bundle.card.get("training", {}).get("config", {}).get("design", "B")
    norm = input_norm_of(bundle.model)
    k = len(bundle.class_names)

    def ssdc(side: int, fused: bool = True):
        model = build_ssdc_mininet(design, k, side, 0.0, norm)
        if fused:   # as training.train.fit trains it
            use_fused_batch_norm(model)
        return model, side

    res["train_images_per_second"] = train_rates({
        "ssdc_mininet_200": ssdc(200),
        "ssdc_mininet_128": ssdc(128),
        # Keras' own (unfused) batch normalisation: how the app trained before training.fused_bn
        "ssdc_mininet_200_keras_bn": ssdc(200, fused=False),
        "ssdc_mininet_128_keras_bn": ssdc(128, fused=False),
        "mobilenetv1_224": (mobilenet, 224),
    })
    t = bundle.card.get("training", {})
    res["recorded_training"] = {k: t.get(k) for k in ("fit_seconds", "total_seconds",
                                                      "train_images_per_second")}
    res["recorded_training"]["epochs"] = t.get("config", {}).get("epochs")

    tr = res["train_images_per_second"]
    ref = tr["ssdc_mininet_200_keras_bn"]
    print(f"training img/s (batch 32): SSDC-MiniNet {tr['ssdc_mininet_200']:.1f} at 200x200, "
          f"{tr['ssdc_mininet_128']:.1f} at 128x128; with Keras' own batch norm "
          f"{ref:.1f} / {tr['ssdc_mininet_128_keras_bn']:.1f}; MobileNetV1 "
          f"{tr['mobilenetv1_224']:.1f} at 224x224")
    print(f"  vs Keras' batch norm at 200x200 (the training path before): "
          f"{tr['ssdc_mininet_200'] / ref:.2f}x at 200x200, {tr['ssdc_mininet_128'] / ref:.2f}x "
          f"at 128x128; vs MobileNetV1: {tr['ssdc_mininet_200'] / tr['mobilenetv1_224']:.1f}x / "
          f"{tr['ssdc_mininet_128'] / tr['mobilenetv1_224']:.1f}x")
    rt = res["recorded_training"]
    if rt.get("total_seconds"):
        print(f"bundle's own training: {rt['epochs']} epochs, fit {rt['fit_seconds'] / 60:.1f} min, "
              f"whole command {rt['total_seconds'] / 60:.1f} min ({rt['train_images_per_second']} img/s)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
