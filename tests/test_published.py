"""Published figures beside measured ones: the data file's entries are complete and cited, a
figure fills one of our columns only where definition, backend, test set and resolution match,
every other one is a note saying what differs, and none of them reaches a leaderboard."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from thbench.eval.aggregate import Summary
from thbench.reports.published import DEFAULT_FILE, MARK, place, read_published
from thbench.reports.tables import latex_tables, markdown_tables

REPO = Path(__file__).resolve().parents[1]

FILE = """
[[row]]
method = "fomm"
label = "FOMM (published, Test'19 Tab. 9)"
dataset = "d"
protocol = "same-identity"
size = 128
citation = "A. Author: A Paper, Venue 2019, Table 9"
checked = "read in the paper"
differs = ""

[[row.figure]]
metric = "L1"
value = 0.043
direction = "lower"
ours = "l1"
backend = "exact"
match = "exact"
definition = "mean absolute pixel difference"

[[row.figure]]
metric = "CSIM"
value = 0.8
direction = "higher"
ours = "csim"
backend = "ArcFace"
match = "arcface"
definition = "cosine similarity of identity embeddings"

[[row.figure]]
metric = "AKD"
value = 1.294
direction = "lower"
ours = ""
backend = "FAN"
match = ""
definition = "a keypoint distance of another definition"

[[row]]
method = "tpsmm"
label = "TPSMM (published, Other'22 Tab. 1)"
dataset = "d"
protocol = "same-identity"
size = 128
citation = "B. Author: Another Paper, Venue 2022, Table 1"
checked = "read in the paper"
differs = "test set: another one"

[[row.figure]]
metric = "L1"
value = 0.039
direction = "lower"
ours = "l1"
backend = "exact"
match = "exact"
definition = "mean absolute pixel difference"

[[row]]
method = "fomm"
label = "FOMM (published, Elsewhere)"
dataset = "another-dataset"
protocol = "same-identity"
size = 128
citation = "C. Author, Table 2"
checked = "read in the paper"
differs = ""
"""


def summary(method: str, metric: str, value: float, backend: str = "exact") -> Summary:
    return Summary(method, "d", "same-identity", metric, metric in ("csim", "psnr"), backend, value,
                   value, value, 3, 30, 0, 0, "ok", "", n_pairs_total=3, n_frames_total=30,
                   p_value=1.0)  # the best of its column


@pytest.fixture
def published(tmp_path: Path):
    path = tmp_path / "published.toml"
    path.write_text(FILE)
    return read_published(path)


SUMMARIES = [summary("fomm", "l1", 0.05), summary("fomm", "csim", 0.9, "dlib resnet"),
             summary("fomm", "psnr", 20.0)]


def test_a_figure_fills_our_column_only_where_definition_backend_and_size_match(published):
    (fomm, tpsmm) = place(published, "d", "same-identity", ["l1", "csim", "psnr"],
                          {"l1": "exact", "csim": "dlib resnet", "psnr": "exact"}, size=128)
    assert fomm.values == {"l1": "0.0430"}
    assert fomm.notes == [
        "CSIM = 0.8000 not comparable: backend: paper ArcFace, ours dlib resnet",
        "AKD = 1.29 not comparable: a keypoint distance of another definition"]
    assert tpsmm.values == {} and tpsmm.notes == [
        "L1 0.0390 not comparable: test set: another one"]
    (fomm_512, _) = place(published, "d", "same-identity", ["l1"], {"l1": "exact"}, size=512)
    assert fomm_512.values == {} and "resolution: paper 128 px, this run 512 px" in \
        fomm_512.notes[0]
    (fomm_arcface, _) = place(published, "d", "same-identity", ["l1", "csim"],
                              {"l1": "exact", "csim": "insightface arcface w600k_r50"}, 128)
    assert fomm_arcface.values == {"l1": "0.0430", "csim": "0.8000"}


def test_published_rows_are_marked_and_never_ranked_in_the_tables(published):
    text = markdown_tables(SUMMARIES, published=published, size=128)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| method"))
    assert header == "| method | l1 ↓ | csim ↑ | psnr ↑ |"
    measured = next(line for line in lines if line.startswith("| fomm |"))
    assert measured == "| fomm | **0.0500 ± 0.0000** | **0.9000 ± 0.0000** | **20.00 ± 0.00** |"
    # the published L1 (0.043) is lower than the measured one but takes no bold from it
    band = lines.index("| *published: not measured here, never ranked* | | | |")
    assert lines[band + 1] == "| *FOMM (published, Test'19 Tab. 9)* | *0.0430* |  |  |"
    assert "| *TPSMM (published, Other'22 Tab. 1)* |  |  |  |" in lines
    assert "Elsewhere" not in text  # another dataset's row stays out of this table
    notes = text[text.index("Rows in italics"):]
    assert "A. Author: A Paper, Venue 2019, Table 9" in notes
    assert "CSIM = 0.8000 not comparable: backend: paper ArcFace, ours dlib resnet" in notes
    assert "L1 0.0390 not comparable: test set: another one" in notes
    latex = latex_tables(SUMMARIES, published=published, size=128)
    assert r"\midrule" + "\n" + r"\multicolumn{4}{l}{\textit{published: not measured here, " \
        r"never ranked}} \\" + "\n" + r"\textit{FOMM (published, Test'19 Tab. 9)} & " \
        r"\textit{0.0430}" in latex
    assert "Table 9" in latex


def test_without_published_rows_the_tables_are_unchanged(published):
    assert markdown_tables(SUMMARIES) == markdown_tables(SUMMARIES, published=[], size=128)
    assert "published" not in markdown_tables(SUMMARIES)


@pytest.mark.parametrize("change, message", [
    ('label = "FOMM (Test\'19 Tab. 9)"', "the label must say 'published'"),
    ('citation = ""', "needs a citation"),
    ('value = "0.043"', "value must be a number"),
    ('direction = "down"', "direction must be 'higher' or 'lower'"),
    ('venue = "x"', "unknown keys ['venue']"),
    ('ours = "l2"', "ours = 'l2' is none of our metrics"),
    ('direction = "higher"', "direction 'higher' contradicts l1, which is better lower"),
])
def test_a_malformed_entry_is_one_line_naming_the_file_and_entry(tmp_path, change, message):
    key = change.split(" = ")[0]
    lines = FILE.splitlines()
    index = next((i for i, line in enumerate(lines) if line.startswith(f"{key} = ")), None)
    if index is None:
        lines.insert(lines.index("[[row.figure]]") - 1, change)
    else:
        lines[index] = change
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError) as error:
        read_published(path)
    text = str(error.value)
    assert text.startswith(f"{path}: row 1 (") and message in text and "\n" not in text


def test_the_repository_file_cites_every_figure_and_names_our_metrics():
    rows = read_published(DEFAULT_FILE)
    assert rows, "reports/published.toml holds no row"
    datasets = {"voxceleb1-test", "voxceleb2-test", "talkinghead1kh-val"}
    for row in rows:  # read_published checked each figure's metric name and direction
        assert MARK in row.label and row.dataset in datasets
        assert row.protocol in ("same-identity", "cross-identity")
        assert row.figures and row.citation and row.checked
        assert all(math.isfinite(figure.value) for figure in row.figures)
    # the HiDe-NeRF figures of issue #19, as Splat-Portrait's Tables 1 and 2 report them
    hidenerf = {(r.protocol, f.metric): f.value for r in rows if r.method == "hidenerf"
                for f in r.figures}
    assert hidenerf[("same-identity", "PSNR")] == 21.44
    assert hidenerf[("same-identity", "LPIPS")] == 0.221
    assert hidenerf[("same-identity", "CSIM")] == 0.716
    assert hidenerf[("same-identity", "FID")] == 28.63
    assert hidenerf[("cross-identity", "CSIM")] == 0.628
    assert hidenerf[("cross-identity", "FID")] == 31.23


def test_every_figure_that_can_fill_a_column_does():
    """Each repository figure with our metric and a backend to match fills that column in a table
    of its own dataset, protocol and resolution measured with a matching backend; with another
    backend it becomes a note naming both; a row on another test set fills nothing."""
    for row in read_published(DEFAULT_FILE):
        for figure in row.figures:
            if not (figure.ours and figure.match):
                continue
            metrics = [figure.ours]
            (matching,) = [p for p in place([row], row.dataset, row.protocol, metrics,
                                            {figure.ours: f"net-{figure.match}-v1"}, row.size)
                           if p.label == row.label]
            (other,) = place([row], row.dataset, row.protocol, metrics,
                             {figure.ours: "some-other-network"}, row.size)
            if row.differs:  # another test set: never in our columns, one note saying so
                assert matching.values == {} and row.differs in matching.notes[0]
                continue
            assert matching.values == {figure.ours: f"{figure.value:.4f}"
                                       if figure.value < 1 else f"{figure.value:.2f}"}
            assert other.values == {} and other.notes == [
                f"{figure.metric} = {figure.value:.4f} not comparable: backend: paper "
                f"{figure.backend}, ours some-other-network"]


def test_splat_portrait_rows_name_their_own_test_set():
    for row in read_published(DEFAULT_FILE):
        if "Splat-Portrait" in row.label:
            assert "HDTF + TH-1KH" in row.label and "HDTF + TalkingHead-1KH" in row.differs
            (placed,) = place([row], row.dataset, row.protocol, ["psnr", "ssim", "csim"],
                              {"psnr": "exact", "ssim": "exact", "csim": "exact"}, row.size)
            assert placed.values == {}

