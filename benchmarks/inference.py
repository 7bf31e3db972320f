"""Inference speed: crops/s at batch 256 and milliseconds for a single crop, 2 threads.

Rows: Phase 2, Sifter's fold ensemble on onnxruntime (the default) and on eager torch,
and the specification's SignalClassifier (78 MFLOP) on eager torch — the baseline — and
on onnxruntime; Phase 1, the Siamese encoder plus the compare with a gallery of 1,000
labelled crops, and the compare alone. Every row includes per-crop normalisation.
Targets: Phase 2 >= 4,000 crops/s and <= 0.5 ms per crop (the specification says about
8 ms); Phase 1 < 0.5 ms per crop with a 1,000-crop gallery (the specification: ~15 ms).

Run: .venv/bin/python benchmarks/inference.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from blobsift import SiameseClassifier, Sifter, SignalClassifier
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
        "Phase 1: embed + compare, 1,000 gallery": siamese.predict_proba,
        "Phase 1: compare alone (embeddings given)": lambda crops: siamese._score(
            embeddings[: len(crops)], siamese.gallery_embeddings_, siamese.gallery_labels_
        ),
    }
    members = sifter.cv_metrics_["n_members"]
    print(f"inference on {THREADS} threads; Sifter: ensemble of {members} nets, 8 MFLOP each")
    print(f"{'':42} {'crops/s @256':>13} {'ms/crop @1':>11} {'speed-up':>9}")
    baseline = None
    for name, predict in rows.items():
        rate = _rate(predict, batch, repeats=5)
        latency = _latency_ms(predict, batch[:1], repeats=100)
        baseline = baseline or rate
        print(f"{name:42} {rate:>13,.0f} {latency:>11.2f} {rate / baseline:>8.1f}x")
    print("targets: Phase 2 >= 4,000 crops/s and <= 0.5 ms per crop (specification: ~8 ms);")
    print("         Phase 1 < 0.5 ms per crop with a 1,000-crop gallery (specification: ~15 ms)")


if __name__ == "__main__":
    main()
