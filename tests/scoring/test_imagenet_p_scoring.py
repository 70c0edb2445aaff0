"""Scoring ImageNet-P end to end on the CPU: MP4 trees (written by our writer, lossless for the
test), Zarr stores and CIFAR-P folders, with models whose predictions are known in advance.

Expected values are computed here from the definitions (the frame codes the fixture hid, the
known ranking of the ``ranked`` model) and, for a model with continuous scores, by the
original evaluation's procedure: frames read with OpenCV's ``cv2.VideoCapture`` plus BGR ->
RGB, rankings by ``scipy.stats.rankdata(-scores, 'ordinal')`` as uint16, and test.py's loops
of ``flip_prob`` and ``ranking_dist`` (re-typed in ``test_metrics``).
"""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from perturbations import TEST, family, sequence_names, split_kind
from pipeline import metrics
from pipeline.__main__ import main
from pipeline.formats import DataError, cifar_npy, mp4_tree, open_data, zarr_store
from pipeline.formats.mp4_tree import Encoding, decode, encode
from pipeline.scoring import ScoreError, compare, load_scoring_config, score
from pipeline.scoring.sequences import video_metrics

from .. import metrics_reference as reference
from .. import scoring_data as fx
from .test_metrics import literal_d, literal_over_pairs, literal_zipf

N = 6  # videos per kind
LOSSLESS = Encoding(preset="ultrafast", crf=0)


def cpu_config(**overrides):
    return load_scoring_config(None, {"device": "cpu", "batch_size": 64, "workers": 0, "optimize": False,
                                      **overrides})


def hand_pairs(frames: int, noise: bool, step: int):
    if noise:
        return [(0, t) for t in range(1, frames)]
    return [(t, t + step) for t in range(frames - step)]


def ranked_distance(code_a: int, code_b: int, classes: int) -> int:
    """d for the ``ranked`` model: class code_a + i - 1 is ranked i under x and
    ((code_a + i - 1 - code_b) mod C) + 1 under x'."""
    return sum(abs(i - min((code_a + i - 1 - code_b) % classes + 1, 6)) for i in range(1, 6))


def hand_computed(codes: dict, classes: int) -> dict:
    """{perturbation: {difficulty: (fp, ut5d)}} from the codes, per video then over videos."""
    out = {}
    for kind, video_codes in codes.items():
        perturbation, difficulty = split_kind(kind)
        noise = family(kind) == "noise"
        for step in ((1,) if noise else (1, 2, 3)):
            fps, dists = [], []
            for c in video_codes:
                pairs = hand_pairs(len(c), noise, step)
                fps.append(np.mean([c[a] != c[b] for a, b in pairs]))
                dists.append(np.mean([ranked_distance(c[a], c[b], classes) for a, b in pairs]))
            out.setdefault(perturbation, {})[str(difficulty if noise else step)] = (np.mean(fps), np.mean(dists))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet_p")
    model = fx.write_model(root)
    frames, codes, labels = fx.sequence_data(sequence_names("all"), N, 64, "imagenet64")
    fx.write_sequences(mp4_tree.Writer(str(root / "mp4"), LOSSLESS, LOSSLESS), frames, labels)
    fx.write_sequences(zarr_store.SequenceWriter(str(root / "p.zarr"), N), frames, labels)
    cifar_labels = [3, 7, 0, 9, 3, 1]
    cifar_frames, cifar_codes, _ = fx.sequence_data(sequence_names("all"), N, 32, "cifar", classes=10,
                                                    labels=cifar_labels)
    fx.write_sequences(cifar_npy.SequenceWriter(str(root / "cifar")), cifar_frames, cifar_labels,
                       wnids=[str(label) for label in cifar_labels])
    return {"root": root, "model": model, "codes": codes, "labels": labels, "cifar_codes": cifar_codes}


def check_against_hand(results, codes, classes, normalised: bool):
    expected = hand_computed(codes, classes)
    assert set(results["perturbations"]) == set(expected)
    for perturbation, cells in expected.items():
        assert set(results["perturbations"][perturbation]) == set(cells), perturbation
        for difficulty, (fp, ut5d) in cells.items():
            got = results["perturbations"][perturbation][difficulty]
            assert got["fp"] == pytest.approx(fp, rel=1e-12, abs=1e-15), (perturbation, difficulty)
            assert got["ut5d"] == pytest.approx(ut5d, rel=1e-12, abs=1e-15), (perturbation, difficulty)
            assert got["videos"] == N
    if normalised:
        for p in metrics.ALEXNET_FP:
            assert results["fr"][p]["1"] == pytest.approx(100 * expected[p]["1"][0] / metrics.ALEXNET_FP[p])
            assert results["t5d"][p]["1"] == pytest.approx(100 * expected[p]["1"][1] / metrics.ALEXNET_UT5D[p])
            assert set(results["fr"][p]) == {"1"}  # AlexNet has difficulty 1 only: nothing else normalised
        assert results["mfr"] == pytest.approx(np.mean([100 * expected[p]["1"][0] / metrics.ALEXNET_FP[p]
                                                        for p in TEST]))
        assert results["mt5d"] == pytest.approx(np.mean([100 * expected[p]["1"][1] / metrics.ALEXNET_UT5D[p]
                                                         for p in TEST]))
    else:
        assert results["fr"] == {} and results["mfr"] is None and results["baseline"] is None


@pytest.mark.parametrize("layout, workers", [("mp4", 2), ("p.zarr", 0)])
def test_imagenet_p_scores_equal_hand_computed_values(data, tmp_path, layout, workers):
    results = score(f"{data['model']}:ranked", str(data["root"] / layout), out=str(tmp_path / "out"),
                    config=cpu_config(workers=workers))
    assert results["task"] == "imagenet-p" and results["data"]["left_out"] == []
    assert results["data"]["kind"] == {"mp4": "mp4_tree", "p.zarr": "zarr"}[layout]
    check_against_hand(results, data["codes"], 1000, normalised=True)
    assert results["clean_error"] == 0.0  # every video's frame 0 carries its label
    assert results["data"]["sequences"]["translate"]["frames"] == 31  # imagenet64's count
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written["mfr"] == pytest.approx(results["mfr"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| Network | Error | mFR | Gauss. | Shot | Motion | Zoom | Snow | Bright | Translate | Rotate | Tilt | Scale |" \
        in report
    assert f"| {results['mfr']:.1f} |" in report and (tmp_path / "out" / "fr.png").stat().st_size > 1000
    rows = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert rows[0].startswith("perturbation,difficulty,sequence,videos,fp,ut5d,zipf,fr,t5d")
    assert len(rows) == 1 + 3 * 14  # every perturbation at three difficulties


def test_cifar_p_is_unnormalised_unless_given_a_baseline(data, tmp_path):
    model = f"{data['model']}:ranked_cifar"
    results = score(model, str(data["root"] / "cifar"), out=str(tmp_path / "plain"), config=cpu_config())
    assert results["data"]["kind"] == "cifar_npy"
    check_against_hand(results, data["cifar_codes"], 10, normalised=False)
    assert results["data"]["sequences"]["motion_blur"]["frames"] == 21
    assert results["data"]["sequences"]["translate"]["frames"] == 16
    assert "no baseline to normalise by" in (tmp_path / "plain" / "report.md").read_text()
    # against a baseline's results.json: FR = FP / FP(baseline) at every difficulty both have
    normalised = score(model, str(data["root"] / "cifar"), config=cpu_config(
        baseline=str(tmp_path / "plain" / "results.json")))
    for p, cells in results["perturbations"].items():
        for d in cells:
            assert normalised["fr"][p][d] == pytest.approx(100.0)
    assert normalised["mfr"] == pytest.approx(100.0) and normalised["mt5d"] == pytest.approx(100.0)


def cv2_frames(path) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return np.stack(frames)


def test_same_numbers_as_the_original_evaluation(data, tmp_path):
    """A model with continuous scores; its outputs on frames as test.py read them (OpenCV),
    ranked as test.py ranked them, through test.py's loops: FP, uT5D and Zipf agree."""
    import torch
    from scipy.stats import rankdata
    root = data["root"]
    sys.path.insert(0, str(root))
    try:
        import code_reader
        model = code_reader.tiny_cnn().eval()
    finally:
        sys.path.remove(str(root))
    mean, std = torch.tensor(fx.MEAN).view(1, 3, 1, 1), torch.tensor(fx.STD).view(1, 3, 1, 1)
    kinds = ["gaussian_noise_2", "shot_noise", "rotate", "translate", "spatter"]
    results = score(f"{data['model']}:tiny_cnn", str(root / "mp4"), config=cpu_config(workers=2))
    reader = open_data(root / "mp4")
    seen = []
    for kind in kinds:
        predictions, ranks = [], []
        for path in reader.videos(kind).names:
            frames = cv2_frames(path)
            assert np.array_equal(frames, decode(path))  # our decoder gives OpenCV's pixels
            with torch.no_grad():
                x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
                out = model((x - mean) / std).numpy()
            predictions.append(out.argmax(1))
            ranks.append([np.uint16(rankdata(-frame, method="ordinal")) for frame in out])
        ranks = np.asarray(ranks)
        perturbation, difficulty = split_kind(kind)
        noise = "noise" in kind
        for step in ((1,) if noise else (1, 2, 3)):
            cell = results["perturbations"][perturbation][str(difficulty if noise else step)]
            assert cell["fp"] == pytest.approx(literal_over_pairs(predictions, noise, step, lambda a, b: int(a != b)),
                                               rel=1e-12, abs=1e-15)
            assert cell["ut5d"] == pytest.approx(literal_over_pairs(ranks, noise, step, literal_d), rel=1e-12)
            assert cell["zipf"] == pytest.approx(literal_over_pairs(ranks, noise, step, literal_zipf), rel=1e-12)
            seen.append(cell["fp"])
    assert 0 < max(seen) < 1 and min(seen) < max(seen)  # a real test: flips happen, and not always


def test_rankings_break_ties_as_ordinal_rankdata():
    """One-hot and rounded scores (many ties): the device reduction equals the numpy reference
    built on scipy's ordinal ranks and argmax."""
    import torch
    from scipy.stats import rankdata
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=(4, 9, 20)), 0).astype(np.float32)
    scores[0] = 0
    scores[0, :, 5] = 1
    for noise in (True, False):
        per_step, first = video_metrics(torch.from_numpy(scores), noise)
        ranks = np.asarray([[rankdata(-f, method="ordinal") for f in video] for video in scores])
        predictions = scores.argmax(-1)
        assert first.tolist() == predictions[:, 0].tolist()
        for step, (flips, top5, zipf) in per_step.items():
            assert flips.mean().item() == pytest.approx(reference.flip_probability(predictions, noise, step))
            assert top5.mean().item() == pytest.approx(reference.top5_distance(ranks, noise, step))
            assert zipf.mean().item() == pytest.approx(reference.top5_distance(ranks, noise, step, mode="zipf"))


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv420p"])
def test_decoded_pixels_equal_opencv_on_the_originals_encoding(tmp_path, pix_fmt):
    """MP4s from the originals' ffmpeg command (the imageio-ffmpeg binary) and from our writer
    at its default settings: PyAV's frames equal cv2.VideoCapture's plus BGR -> RGB."""
    import imageio_ffmpeg
    from PIL import Image
    rng = np.random.default_rng(11)
    y, x = np.mgrid[:48, :64]
    smooth = np.stack([3 * x + y, 4 * y + x, 200 - 2 * x], -1).clip(0, 255).astype(np.uint8)
    frames = np.repeat(smooth[None], 6, 0)
    frames[:, 10:30, 5:40] = rng.integers(0, 255, (6, 1, 1, 3), np.uint8)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"img{index}.png")
    out = tmp_path / "theirs.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-r", "1", "-framerate", "1", "-i",
                    str(tmp_path / "img%01d.png"), "-vcodec", "libx264", "-crf", "20", "-preset", "veryslow",
                    "-pix_fmt", pix_fmt, "-y", str(out)], check=True)
    ours = tmp_path / "ours.mp4"
    ours.write_bytes(encode(frames, Encoding(pix_fmt=pix_fmt)))
    for path in (out, ours):
        decoded = decode(path)
        assert decoded.shape == frames.shape
        assert np.array_equal(decoded, cv2_frames(path))
        assert 0 < np.abs(decoded.astype(int) - frames).mean() < 8  # lossy, so the comparison means something


def test_yuv444_formula_is_ffmpegs_conversion_of_every_colour():
    """The restated fixed-point formula against FFmpeg's own yuv444p -> rgb24 conversion of one
    frame holding all 2^24 (Y, U, V): every pixel equal, the B wrap at Y, U near 255 included."""
    import av
    k = np.arange(1 << 24, dtype=np.uint32).reshape(4096, 4096)
    y, u, v = (k >> 16).astype(np.uint8), ((k >> 8) & 255).astype(np.uint8), (k & 255).astype(np.uint8)
    ffmpeg = av.VideoFrame.from_ndarray(np.stack([y, u, v]), format="yuv444p").to_ndarray(format="rgb24")
    assert np.array_equal(mp4_tree.yuv444_to_rgb(y, u, v), ffmpeg)
    blue = ffmpeg[..., 2].reshape(-1)
    assert blue[(255 << 16) | (255 << 8)] == 0 and blue[(235 << 16) | (240 << 8)] == 255
    assert mp4_tree.yuv444_conversion()[0]  # so decode() takes the formula, not FFmpeg's slower path


@pytest.mark.parametrize("shape", [(70, 18, 34), (3, 33, 17)])
def test_decode_equals_ffmpeg_and_opencv_at_odd_sizes_and_lengths(tmp_path, shape):
    """Widths whose planes carry row padding, and more frames than decode() first allocates:
    every frame equals FFmpeg's rgb24 conversion and cv2.VideoCapture's plus BGR -> RGB."""
    import av
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, shape + (3,), np.uint8)
    path = tmp_path / "odd.mp4"
    path.write_bytes(encode(frames, Encoding(preset="ultrafast", crf=10)))
    decoded = decode(path)
    with av.open(str(path)) as container:
        ffmpeg = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    assert decoded.shape == frames.shape and decoded.flags.c_contiguous
    assert np.array_equal(decoded, ffmpeg) and np.array_equal(decoded, cv2_frames(path))


def test_bad_videos_are_named_and_left_out(data, tmp_path, capsys):
    import shutil
    tree = tmp_path / "tree"
    for kind in ("rotate", "gaussian_noise", "tilt"):
        shutil.copytree(data["root"] / "mp4" / kind, tree / kind)
    rotate = sorted((tree / "rotate").glob("*/*.mp4"))
    damaged, short = rotate[0], rotate[1]
    damaged.write_bytes(damaged.read_bytes()[:200])
    frames = decode(short)
    short.write_bytes(encode(frames[:20], LOSSLESS))
    noise = sorted((tree / "gaussian_noise").glob("*/*.mp4"))
    noise[0].write_bytes(mixed_sizes())
    shutil.rmtree(tree / "tilt")
    (tree / "tilt" / "n01440764").mkdir(parents=True)  # an empty sequence folder
    (tree / "not_a_kind" / "n01440764").mkdir(parents=True)
    out = tmp_path / "out"
    status = main(["score", "--model", f"{data['model']}:ranked", "--data", str(tree), "--out", str(out),
                   "--device", "cpu", "--workers", "2", "--batch-size", "64"])
    assert status == 1
    results = json.loads((out / "results.json").read_text())
    left = results["data"]["left_out"]
    assert any(str(damaged) in line and "left out" in line for line in left)
    assert any(str(short) in line and "20 frames" in line and "31" in line for line in left)
    assert any(str(noise[0]) in line and "different sizes" in line for line in left)
    assert any("tilt" in line and "no .mp4 videos" in line for line in left)
    assert any("not_a_kind" in line for line in left)
    assert "tilt" not in results["perturbations"]
    assert results["perturbations"]["rotate"]["1"]["videos"] == N - 2
    assert results["perturbations"]["gaussian_noise"]["1"]["videos"] == N - 1
    # the rest is scored exactly: the hand-computed values over the videos left
    codes = data["codes"]
    kept = [v for v in range(N) if v not in (int(damaged.stem[-8:]), int(short.stem[-8:]))]
    expected = hand_computed({"rotate": codes["rotate"][kept]}, 1000)
    for step in ("1", "2", "3"):
        assert results["perturbations"]["rotate"][step]["fp"] == pytest.approx(expected["rotate"][step][0])
        assert results["perturbations"]["rotate"][step]["ut5d"] == pytest.approx(expected["rotate"][step][1])
    assert "left out" in (out / "report.md").read_text()
    assert results["mfr"] is None and "tilt" in results["missing"]
    err = capsys.readouterr().err
    assert "left out" in err and "Traceback" not in err


def mixed_sizes() -> bytes:
    """An MP4 whose frames change size mid-stream (two H.264 streams back to back, remuxed)."""
    import tempfile
    from pathlib import Path

    import imageio_ffmpeg

    def raw(frames):
        return encode(frames, LOSSLESS, container_format="h264")

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        stream = Path(folder) / "mixed.h264"
        stream.write_bytes(raw(rng.integers(0, 255, (16, 64, 64, 3), np.uint8))
                           + raw(rng.integers(0, 255, (15, 48, 48, 3), np.uint8)))
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-r", "1", "-i", str(stream),
                        "-c", "copy", str(Path(folder) / "mixed.mp4")], check=True)
        return (Path(folder) / "mixed.mp4").read_bytes()


def test_bad_cifar_p_arrays_are_named_and_left_out(data, tmp_path):
    import shutil
    folder = tmp_path / "cifar"
    shutil.copytree(data["root"] / "cifar", folder)
    np.save(folder / "rotate.npy", np.zeros((N, 31, 32, 32), np.uint8))  # no channel axis
    np.save(folder / "tilt.npy", np.zeros((N + 1, 31, 32, 32, 3), np.uint8))  # more videos than labels
    (folder / "scale.npy").write_bytes(b"not an array")
    results = score(f"{data['model']}:ranked_cifar", str(folder), config=cpu_config())
    left = results["data"]["left_out"]
    assert any("rotate.npy" in line and "shape" in line for line in left)
    assert any("tilt.npy" in line and "labels.npy holds 6" in line for line in left)
    assert any("scale.npy" in line and "not a readable" in line for line in left)
    assert not {"rotate", "tilt", "scale"} & set(results["perturbations"])
    expected = hand_computed({"translate": data["cifar_codes"]["translate"]}, 10)
    assert results["perturbations"]["translate"]["1"]["fp"] == pytest.approx(expected["translate"]["1"][0])


def test_a_tree_that_is_neither_benchmark_is_refused(tmp_path, capsys):
    (tmp_path / "videos" / "holiday" / "n01440764").mkdir(parents=True)
    (tmp_path / "videos" / "holiday" / "n01440764" / "a.mp4").write_bytes(b"x")
    with pytest.raises(DataError, match="neither ImageNet-C .* nor ImageNet-P .*<sequence>/<class>/<video>.mp4"):
        open_data(tmp_path / "videos")
    model = fx.write_model(tmp_path)
    assert main(["score", "--model", f"{model}:ranked", "--data", str(tmp_path / "videos"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_one_kind_folder_is_read_as_test_py_reads_it(data):
    reader = open_data(data["root"] / "mp4" / "scale")
    assert reader.kinds() == ["scale"] and reader.count("scale") == N


def test_refusals_before_work(data, tmp_path):
    with pytest.raises(ScoreError, match="--clean is for ImageNet-C"):
        score(f"{data['model']}:ranked", str(data["root"] / "mp4"), clean_path=str(tmp_path), config=cpu_config())
    with pytest.raises(ScoreError, match="ImageNet wnids .* not N x 1000"):
        score(f"{data['model']}:three_classes", str(data["root"] / "mp4"), config=cpu_config())
    with pytest.raises(ScoreError, match="N x num_classes"):
        score(f"{data['model']}:bad_shape", str(data["root"] / "p.zarr"), config=cpu_config())


def test_report_combines_imagenet_c_and_p_of_several_models(data, tmp_path):
    p_results = score(f"{data['model']}:ranked", str(data["root"] / "p.zarr"), out=str(tmp_path / "p"),
                      config=cpu_config(), name="model-a")
    assert p_results["mfr"] is not None
    c_paths = []
    for name, scale in (("model-a", 0.9), ("model-b", 0.5)):
        errors = {c: {s: min(1.0, scale * e) for s, e in zip(range(1, 6), metrics.ALEXNET_ERRORS[c])}
                  for c in metrics.ALEXNET_ERRORS}
        summary = metrics.summarize_c(errors, 0.2 * scale, "alexnet")
        results = {"task": "imagenet-c", "model": {"name": name}, "data": {}, "clean_error": 0.2 * scale,
                   "errors": {c: {str(s): e for s, e in v.items()} for c, v in errors.items()}, **summary}
        path = tmp_path / f"{name}-c.json"
        path.write_text(json.dumps(results))
        c_paths.append(str(path))
    table = compare(c_paths + [str(tmp_path / "p" / "results.json")], str(tmp_path / "cmp"))
    board = table.split("\n\n")[1].splitlines()
    assert board[0].startswith("| Network | Error | mCE | Rel. mCE | mFR | mT5D |")
    assert board[2].startswith("| model-b |") and board[3].startswith("| model-a |")  # sorted by mCE
    assert f"{p_results['mfr']:.1f}" in board[3] and f"{p_results['mfr']:.1f}" not in board[2]
    assert "## ImageNet-C" in table and "## ImageNet-P" in table
    for picture in ("scatter.png", "comparison.png", "comparison-p.png"):
        assert (tmp_path / "cmp" / picture).stat().st_size > 1000
