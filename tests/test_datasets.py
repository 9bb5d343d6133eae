"""Clip preparation on the real sample videos and photos, resumability, and pair manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from thbench.core.media import read_image
from thbench.datasets.clip import Clip
from thbench.datasets.protocols import (
    CROSS_IDENTITY,
    SAME_IDENTITY,
    cross_identity_pairs,
    read_pairs,
    same_identity_pairs,
    write_pairs,
)
from thbench.datasets.source_clips import PrepareOptions, prepare_image, prepare_video
from thbench.facegeom.detect import FaceDetector

OPTIONS = PrepareOptions(size=128, frame_step=12, clip_length=5, crop="face")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_video_clip_has_square_frames_and_landmarks_on_the_face(mini_dataset) -> None:
    clip = mini_dataset.clip("man-000")
    assert len(clip) == 5 and clip.info.frame_indices == [0, 12, 24, 36, 48]
    frame = clip.frame(0)
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    records = clip.faces()
    assert all(r.face for r in records)
    landmarks = np.asarray(records[0].landmarks)
    assert landmarks.shape == (68, 2)
    # the face sits inside the crop, roughly centred, and takes a fair part of it
    assert (landmarks > 0).all() and (landmarks < 128).all()
    centre = landmarks.mean(0)
    assert np.abs(centre - 64).max() < 20
    assert 30 < np.ptp(landmarks[:, 0]) < 100
    # the recorded landmarks are where dlib finds them in the saved crop (within 3 px)
    found = FaceDetector().largest(frame)
    assert found is not None
    assert np.abs(np.asarray(found.landmarks) - landmarks).mean() < 3.0


def test_frames_without_a_face_are_kept_and_marked(mini_dataset) -> None:
    clip = mini_dataset.clip("man-leaves-001")
    assert [r.face for r in clip.faces()] == [True, True, True, True, False]
    assert len(list(clip.frames(range(len(clip))))) == 5
    assert clip.faces()[-1].landmarks is None


def test_video_without_any_face_gets_a_centre_crop_and_a_note(pyfeat_data: Path, tmp_path: Path,
                                                              detector) -> None:
    options = PrepareOptions(size=64, frame_step=20, clip_length=4, crop="face")
    clips = prepare_video(pyfeat_data / "no_face.mp4", tmp_path, "noface", "none", options,
                          detector)
    assert len(clips) == 1  # 95 frames, every 20th: 5 kept, one clip of 4
    assert not any(r.face for r in clips[0].faces())
    assert clips[0].info.notes == ["no face in any frame: centre crop"]
    assert clips[0].info.crop_box == [210.0, 0.0, 750.0, 540.0]  # 960x540 source
    (pair,) = same_identity_pairs(clips)  # kept and scored: it has a ground truth
    assert pair.skip == "" and not pair.source_face and pair.driving_faces == [False] * 4


def test_rgba_photo_becomes_an_rgb_clip(pyfeat_data: Path, tmp_path: Path, detector) -> None:
    assert read_image(pyfeat_data / "Image_with_alpha.png").shape[2] == 3
    clip = prepare_image(pyfeat_data / "Image_with_alpha.png", tmp_path, "alpha", "x", OPTIONS,
                         detector)
    assert clip.frame(0).shape == (128, 128, 3) and clip.info.kind == "image"


def test_preparation_resumes_without_redoing_finished_files(pyfeat_data: Path, tmp_path: Path,
                                                            detector) -> None:
    first = prepare_video(pyfeat_data / "single_face.mp4", tmp_path, "man", "man", OPTIONS,
                          detector)
    stamp = first[0].frame_path(0).stat().st_mtime_ns

    class NoDetection:
        def largest(self, frame):
            raise AssertionError("a finished file was processed again")

    again = prepare_video(pyfeat_data / "single_face.mp4", tmp_path, "man", "man", OPTIONS,
                          NoDetection())
    assert [c.clip_id for c in again] == [c.clip_id for c in first]
    assert again[0].frame_path(0).stat().st_mtime_ns == stamp

    # an interrupted file (clips written, no done-marker) is prepared again, the same
    (tmp_path / "clips" / "man.done.json").unlink()
    redone = prepare_video(pyfeat_data / "single_face.mp4", tmp_path, "man", "man", OPTIONS,
                           detector)
    assert np.array_equal(redone[0].frame(3), first[0].frame(3))


def test_same_identity_pairs(mini_dataset) -> None:
    pairs = {p.pair_id: p for p in mini_dataset.pairs(SAME_IDENTITY)}
    assert sorted(pairs) == ["man-000", "man-leaves-001", "woman-000"]
    man = pairs["man-000"]
    # FOMM's reconstruction: frame 0 is the source and the first driving frame
    assert (man.source_clip, man.source_frame, man.driving_frames) == (
        "man-000", 0, [0, 1, 2, 3, 4])
    assert man.ground_truth and man.skip == ""
    assert pairs["man-leaves-001"].driving_faces == [True, True, True, True, False]


def test_cross_identity_pairs_are_seeded_and_never_the_same_person(mini_dataset) -> None:
    root = mini_dataset.root
    photos = [Clip(root / "clips" / n) for n in ("photo-man", "photo-m7")]
    videos = [Clip(root / "clips" / n) for n in ("man-000", "woman-000", "man-leaves-001")]
    pairs = cross_identity_pairs(photos, videos, 2, seed=0)
    assert all(mini_dataset.clip(p.driving_clip).info.identity !=
               mini_dataset.clip(p.source_clip).info.identity for p in pairs)
    assert [p.pair_id for p in pairs] == [
        p.pair_id for p in cross_identity_pairs(photos, videos, 2, seed=0)]
    man_pairs = [p for p in pairs if p.source_clip == "photo-man"]
    assert [p.driving_clip for p in man_pairs] == ["woman-000"]  # the only other identity
    assert all(not p.ground_truth and p.driving_frames == list(range(5)) for p in pairs)
    drawn = {tuple(p.pair_id for p in cross_identity_pairs(photos, videos, 1, seed=s))
             for s in range(8)}
    assert len(drawn) > 1  # the seed matters


def test_pair_list_round_trip(mini_dataset,
                                                              tmp_path: Path) -> None:
    pairs = same_identity_pairs([mini_dataset.clip("man-000"), mini_dataset.clip("woman-000")])
    write_pairs(tmp_path / "pairs.jsonl", pairs[::-1])
    assert read_pairs(tmp_path / "pairs.jsonl") == sorted(pairs, key=lambda p: p.pair_id)
    with pytest.raises(FileNotFoundError, match="pair list not found"):
        read_pairs(tmp_path / "missing.jsonl")
    assert mini_dataset.pairs(CROSS_IDENTITY)
