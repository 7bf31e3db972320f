"""Inference speed: crops/s at batch 256 and milliseconds for a single crop, 2 threads.

Rows: Phase 2, Sifter's fold ensemble on onnxruntime (the default) and on eager torch;
the one distilled network (``predict_with="distilled"``; a refit one costs the same)
saved and loaded back torch-free by ``load_predictor``, as batch runs load it; a plain
CNN of the same FLOPs (no scale-space branch, its last block widened to match) on
onnxruntime; the specification's SignalClassifier (78 MFLOP) on eager torch — the
baseline — and on onnxruntime; Phase 1, the Siamese encoder plus the compare with a
gallery of 1,000 labelled crops, and the compare alone. Every row includes per-crop
normalisation. onnxruntime runs with every graph optimisation, no spinning and 2
intra-op threads (``onnx_session_options``). Columns: crops/s at batch 256, ms for one
crop, speed-up over the baseline, and the rate as a share of the plain CNN's.
Targets: Phase 2 >= 5,000 crops/s, >= 75% of the plain CNN's rate and <= 0.3 ms per crop
(the specification says about 8 ms); Phase 1 < 0.5 ms per crop with a 1,000-crop gallery
(the specification: ~15 ms).

Run: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/inference.py
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from blobsift import SiameseClassifier, Sifter, SignalClassifier
from blobsift.classify.cnn import DEFAULT_ARCHITECTURE
from blobsift.classify.graph_model import GraphModel, load_predictor
from blobsift.crops import centre_window
from blobsift.nn.data import network_input
from blobsift.nn.onnx import OnnxRunner, export_onnx
from blobsift.simulate import simulate_crops

THREADS = 2


def _rate(predict: Callable[[np.ndarray], np.ndarray], crops: np.ndarray, repeats: int) -> float:
    predict(crops)
    start = time.perf_counter()
    for _ in range(repeats):
        predict(crops)
    return repeats * len(crops) / (time.perf_counter() - start)


def _latency_ms(
    predict: Callable[[np.ndarray], np.ndarray], crop: np.ndarray, repeats: int
) -> float:
    for _ in range(5):
        predict(crop)
    start = time.perf_counter()
    for _ in range(repeats):
        predict(crop)
    return 1000 * (time.perf_counter() - start) / repeats


def _mflop(model: torch.nn.Module, crop_size: int) -> float:
    """Forward MFLOP per crop (torch's FLOP counter: 2 per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.eval()(torch.zeros(1, 1, crop_size, crop_size))
    return counter.get_total_flops() / 1e6


def _plain_cnn() -> tuple[SignalClassifier, float, float]:
    """A plain CNN (no scale-space branch) as costly as the default network.

    Returns the network, its MFLOP and the default network's.
    """
    size = DEFAULT_ARCHITECTURE["crop_size"]
    target = _mflop(SignalClassifier(**DEFAULT_ARCHITECTURE), size)
    plain = {**DEFAULT_ARCHITECTURE, "scale_features": False}
    first, second, _ = plain["channels"]

    def network(width: int) -> SignalClassifier:
        return SignalClassifier(**{**plain, "channels": [first, second, width]})

    width = min(range(8, 513, 8), key=lambda w: abs(_mflop(network(w), size) - target))
    return network(width), _mflop(network(width), size), target


def main() -> None:
    torch.set_num_threads(THREADS)
    data = simulate_crops(300, seed=0)
    batch = simulate_crops(256, seed=1).crops
    sifter = Sifter(phase="cnn", random_state=0, epochs=2).fit(data.crops, data.labels)
    gallery_data = simulate_crops(1000, seed=2)
    siamese = SiameseClassifier(random_state=0, finetune_steps=20)
    siamese.fit(gallery_data.crops, gallery_data.labels)
    embeddings = siamese.transform(batch)
    spec = SignalClassifier().eval()
    spec_onnx = OnnxRunner(export_onnx(spec, 64), threads=THREADS)
    single = Sifter(phase="cnn", random_state=0, epochs=2, predict_with="distilled")
    single.fit(data.crops, data.labels, unlabeled=simulate_crops(300, seed=3).crops)
    with tempfile.TemporaryDirectory() as folder:
        single.save(Path(folder) / "single")
        single_file = load_predictor(Path(folder) / "single", threads=THREADS)
    assert isinstance(single_file, GraphModel)
    plain, plain_mflop, default_mflop = _plain_cnn()
    plain_onnx = OnnxRunner(export_onnx(plain, plain.crop_size), threads=THREADS)

    def plain_ort(crops: np.ndarray) -> np.ndarray:
        window = np.ascontiguousarray(centre_window(crops, plain.crop_size))
        return plain_onnx.run(network_input(window).numpy())

    def spec_torch(crops: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return torch.sigmoid(spec(network_input(crops))).numpy()

    def spec_ort(crops: np.ndarray) -> np.ndarray:
        return spec_onnx.run(network_input(crops).numpy())

    def sifter_with(backend: str) -> Callable[[np.ndarray], np.ndarray]:
        def predict(crops: np.ndarray) -> np.ndarray:
            sifter.estimator_.backend = backend
            return sifter.predict_proba(crops)

        return predict

    rows = {
        "spec SignalClassifier, torch (baseline)": spec_torch,
        "spec SignalClassifier, onnxruntime": spec_ort,
        "Sifter ensemble, torch": sifter_with("torch"),
        "Sifter ensemble, onnxruntime (default)": sifter_with("onnx"),
        "1 distilled net, torch-free file": single_file.predict_proba,
        f"plain CNN ({plain_mflop:.1f} MFLOP), onnxruntime": plain_ort,
        "Phase 1: embed + compare, 1,000 gallery": siamese.predict_proba,
        "Phase 1: compare alone (embeddings given)": lambda crops: siamese._score(
            embeddings[: len(crops)], siamese.gallery_embeddings_, siamese.gallery_labels_
        ),
    }
    members = sifter.cv_metrics_["n_members"]
    print(
        f"inference on {THREADS} threads; Sifter: ensemble of {members} nets, "
        f"{default_mflop:.1f} MFLOP each"
    )
    plain_name = next(name for name in rows if name.startswith("plain CNN"))
    measured = {
        name: (_rate(predict, batch, repeats=20), _latency_ms(predict, batch[:1], repeats=300))
        for name, predict in rows.items()
    }
    baseline, plain_rate = next(iter(measured.values()))[0], measured[plain_name][0]
    print(f"{'':42} {'crops/s @256':>13} {'ms/crop @1':>11} {'speed-up':>9} {'/ plain':>8}")
    for name, (rate, latency) in measured.items():
        print(
            f"{name:42} {rate:>13,.0f} {latency:>11.2f} {rate / baseline:>8.1f}x "
            f"{rate / plain_rate:>7.0%}"
        )
    print("targets: Phase 2 >= 5,000 crops/s, >= 75% of the plain CNN's, <= 0.3 ms per crop")
    print("         (specification: ~8 ms); Phase 1 < 0.5 ms per crop with a 1,000-crop gallery")
    print("         (specification: ~15 ms)")


if __name__ == "__main__":
    main()
