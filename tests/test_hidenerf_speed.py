"""HiDe-NeRF's speed levers (issue 30) compute what the plain forms compute: empty-space
skipping, the plane table, one plane lookup for a batch of driving frames, compositing two
sample sets without merging their features."""

from __future__ import annotations

import pytest
import torch

from thbench.hidenerf.config import get_config
from thbench.hidenerf.deformation import differing_cells
from thbench.hidenerf.model import HiDeNeRF
from thbench.hidenerf.refine import Conv2d, RefineNet
from thbench.hidenerf.rendering import composite, composite_merged, where_active
from thbench.hidenerf.triplane import plane_table, sample_multiscale


def test_where_active_matches_the_full_function_on_active_entries() -> None:
    """where_active evaluates only the active entries (padded to the largest count of a batch
    item) and gives the function's values there and zeros elsewhere, for batch items with
    many, one and no other active entries."""
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(3, 35, 3, generator=generator)
    calls = []

    def fn(p):
        calls.append(p.shape)
        return p.norm(dim=-1), torch.cat([p, p.sin()], -1), None

    active = points[..., 0] > 0
    active[1] = False  # one batch item with a single active entry
    active[1, 4] = True
    active[2] = False  # and one with none
    density, feature, nothing = where_active(fn, active, points)
    full = fn(points)
    assert calls[0] == (3, int(active.sum(1).max()), 3) and nothing is None
    for got, want in ((density, full[0]), (feature, full[1])):
        assert torch.equal(got[active], want[active])
        assert torch.equal(got[~active], torch.zeros_like(got[~active]))


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (25.0, -10.0, 8.0)])
def test_skipping_empty_space_renders_the_same_images(angles) -> None:
    """Samples beyond the box grown by LED's largest offset have density exactly 0: skipping
    them changes no output beyond float rounding (the fine pass draws the same depths). A
    trained-like model: the LED's last layer is redrawn large so its offsets reach their bound."""
    model = HiDeNeRF(get_config("tiny")).eval()
    with torch.no_grad():
        model.led.out.weight.normal_(0, 30, generator=torch.Generator().manual_seed(2))
    c = model.config
    generator = torch.Generator().manual_seed(1)
    source = torch.rand(1, 3, c.image_size, c.image_size, generator=generator)
    posed = torch.rand(1, 3, c.encoder_size, c.encoder_size, generator=generator)
    secc = torch.rand(1, 3, c.secc_size, c.secc_size, generator=generator)
    driving = 1 - secc  # far from the source SECC: LED's offsets are large
    outs, decoded = {}, {False: 0, True: 0}
    with torch.no_grad():
        planes = model.encode_source(source, posed)
        features = model.encode_secc(secc)
        for skip in (False, True):
            model.skip_empty_space = skip
            hook = model.decoder.register_forward_hook(
                lambda m, i, o, skip=skip: decoded.__setitem__(skip, decoded[skip] + i[0].shape[1]))
            outs[skip] = model.render(planes, features, driving, source,
                                      model.camera(0.0, 0.0, 0.0), model.camera(*angles))
            hook.remove()
    for key in ("image", "opacity", "depth", "flow", "weights", "t"):
        torch.testing.assert_close(outs[True][key], outs[False][key], atol=1e-5, rtol=1e-5)
    assert outs[False]["offsets"].abs().max() > 0.05  # LED moves points by a real amount
    skipped = (outs[True]["offsets"] == 0).all(-1).float().mean()
    assert 0.02 < skipped < 0.9  # some samples were skipped, not all
    # the second stage: of the samples evaluated, those LED moves out of the box are not decoded
    evaluated = (1 - skipped) * outs[False]["t"].numel()
    assert decoded[False] == outs[False]["t"].numel() and decoded[True] < 0.95 * evaluated


def test_a_driving_frame_shared_by_sources_is_analysed_once(monkeypatch) -> None:
    """Cross-identity pairs give one driving clip to several sources: the method remembers
    each frame's 3DMM fit, so the second pair renders the same image without fitting again."""
    from thbench.facegeom.analysis import FaceAnalyzer
    from thbench.hidenerf.method import HiDeNeRFMethod
    from thbench.profiling.endtoend import face_frames

    calls = []
    analyze = FaceAnalyzer.analyze
    monkeypatch.setattr(FaceAnalyzer, "analyze",
                        lambda self, frame: calls.append(1) or analyze(self, frame))
    frames = face_frames(3, 128)
    method = HiDeNeRFMethod(config="tiny")
    images = []
    with torch.no_grad():
        for source in (frames[0], frames[1]):
            method.setup(source, frames[2])
            images.append(method.forward_batch(frames[2:]))
    assert len(calls) == 3  # two sources, one driving frame
    assert not torch.equal(images[0], images[1])  # two sources, two animations
    method._analyses.clear()
    with torch.no_grad():
        again = method.forward_batch(frames[2:])
    assert len(calls) == 4 and torch.equal(again, images[1])


def test_one_sources_planes_are_read_the_same_for_a_batch_of_driving_frames() -> None:
    """Planes of batch 1 with grids of batch 3 (the benchmark's case: one source, several
    driving frames) give exactly the per-item lookups of the planes repeated 3 times."""
    generator = torch.Generator().manual_seed(0)
    planes = [torch.randn(1, 3, 4, r, r, generator=generator) for r in (8, 16)]
    grid = torch.rand(3, 50, 3, generator=generator) * 2.2 - 1.1  # some points outside
    repeated = [p.expand(3, -1, -1, -1, -1).contiguous() for p in planes]
    want = sample_multiscale(repeated, grid)
    assert want.shape == (3, 50, 8)
    assert torch.equal(sample_multiscale(planes, grid), want)


@pytest.mark.parametrize("plane_batch", [1, 2])
def test_the_plane_table_reads_what_grid_sample_reads(plane_batch) -> None:
    """The inference plane table (one embedding_bag of texel rows) against grid_sample on the
    planes: bilinear values inside, zeros padding at and beyond the edges (points far outside,
    on the border texels' outer edges, exactly at texel centres), one source for two grids
    and one source per grid, three scales."""
    generator = torch.Generator().manual_seed(0)
    planes = [torch.randn(plane_batch, 3, 5, r, r, generator=generator) for r in (4, 8, 16)]
    grid = torch.rand(2, 400, 3, generator=generator) * 3 - 1.5  # a third of them outside
    grid[:, :8] = torch.tensor([-1.0, 1.0, 0.0])  # the planes' outer edges
    grid[:, 8:16] = torch.tensor([-1.0, 1.0, 1.0]) * (1 - 1 / 16)  # texel centres at R = 16
    grid[:, 16:40] = (1.3 + torch.rand(2, 24, 3, generator=generator)) * torch.tensor(
        [1.0, -1.0, 1.0])  # half a texel and more beyond every plane's edge
    want = sample_multiscale(planes, grid)
    table = plane_table(planes)
    got = sample_multiscale(table, grid)
    assert got.shape == want.shape == (2, 400, 15) and got.is_contiguous()
    torch.testing.assert_close(got, want, atol=2e-6, rtol=0)
    assert torch.equal(got[:, 16:40], torch.zeros(2, 24, 15))
    assert torch.equal(want[:, 16:40], torch.zeros(2, 24, 15))


def test_two_sample_sets_composite_like_their_merged_sorted_samples() -> None:
    generator = torch.Generator().manual_seed(0)
    near, far = torch.full((2, 5, 1), 1.0), torch.full((2, 5, 1), 3.0)
    t_a = torch.sort(1 + 2 * torch.rand(2, 5, 6, generator=generator), -1).values
    t_b = torch.sort(1 + 2 * torch.rand(2, 5, 4, generator=generator), -1).values
    density = (3 * torch.rand(2, 5, 6, generator=generator),
               3 * torch.rand(2, 5, 4, generator=generator))
    feature = (torch.rand(2, 5, 6, 7, generator=generator),
               torch.rand(2, 5, 4, 7, generator=generator))
    background = torch.rand(7, generator=generator)
    t, order = torch.sort(torch.cat([t_a, t_b], -1), -1)
    want = composite(torch.cat(density, -1).gather(-1, order),
                     torch.cat(feature, 2).gather(2, order[..., None].expand(-1, -1, -1, 7)),
                     t, near, far, background)
    got = composite_merged(t_a, t_b, density, feature, near, far, background)
    assert torch.equal(got["order"], order) and torch.equal(got["t"], t)
    for key in ("feature", "opacity", "depth", "weights", "edges"):
        torch.testing.assert_close(got[key], want[key], atol=1e-6, rtol=1e-6)
    assert want["opacity"].min() > 0.2  # the samples carry real weight


def test_led_in_eval_evaluates_only_points_whose_secc_features_differ() -> None:
    """With the differing cells (inference), LED samples and evaluates only points near where
    the source and driving SECC features differ; offsets and feature change equal the dense
    evaluation's: exactly zero elsewhere, the same values where they differ, every point
    whose features differ evaluated (points on texel centres and cell edges included)."""
    model = HiDeNeRF(get_config("tiny"))
    led = model.led
    generator = torch.Generator().manual_seed(0)
    channels = model.config.led_secc_channels
    source = torch.rand(2, channels, 16, 16, generator=generator)
    driving = source.clone()
    driving[0, :, 5:8, 9:11] += 0.5  # a changed mouth in item 0, one texel in item 1
    driving[1, 3, 12, 2] -= 0.25
    pair = torch.cat([source, driving], 1)
    points = torch.rand(2, 600, 3, generator=generator) * 2 - 1
    centres = (torch.arange(16) + 0.5) / 8 - 1  # texel centres, then cell edges, as x and -y
    points[:, :16, 0], points[:, :16, 1] = centres * led.secc_span, -centres * led.secc_span
    points[:, 16:32, 0] = (torch.arange(16) / 8 - 1) * led.secc_span
    calls = []
    hook = led.context.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[:-1]))
    with torch.no_grad():
        dense = led.deform(points, pair)
        sparse = led.deform(points, pair, differing_cells(pair))
    hook.remove()
    changed = (dense[1] != 0).any(-1)
    assert 10 < int(changed[0].sum()) and int(changed[1].sum()) >= 1
    assert calls[0] == (2, 600) and calls[1][1] < 0.5 * 600  # eval: a few points per item
    assert (dense[0][~changed] == 0).all()
    for got, want in zip(sparse, dense, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
        assert torch.equal(got[~changed], want[~changed])  # exactly zero


def test_refine_network_in_inference_equals_its_training_layout() -> None:
    """Channels-last convolutions (and 1x1 kernels as matrix products) in inference: the same
    output as the default layout the training runs, with the same state dict."""
    generator = torch.Generator().manual_seed(0)
    refine = RefineNet(8, (16, 8), 4)
    for conv in (refine.to_rgb, refine.expression[-1]):  # away from their near-zero init
        torch.nn.init.normal_(conv.weight, std=0.3, generator=generator)
    inputs = (torch.rand(2, 8, 16, 16, generator=generator),
              torch.rand(2, 1, 16, 16, generator=generator),
              torch.rand(2, 3, 64, 64, generator=generator),
              torch.randn(2, 4, 16, 16, generator=generator))
    with torch.no_grad():
        trained_layout = refine.train()(*inputs)
        inference = refine.eval()(*inputs)
    assert inference.is_contiguous() and inference.shape == (2, 3, 64, 64)
    assert (inference - trained_layout).abs().max() < 1e-5
    assert (inference - inputs[2]).abs().max() > 0.05  # the network does change the image
    assert set(refine.state_dict()) == set(RefineNet(8, (16, 8), 4).state_dict())
    assert [type(m) for m in refine.modules() if isinstance(m, torch.nn.Conv2d)] == \
        [Conv2d] * 10
