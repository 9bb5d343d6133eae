"""The package's logging channel (core/logs.py): once the command line configures it, the
modules' loggers print INFO to stdout and warnings to stderr, rank-prefixed under torchrun."""

from __future__ import annotations

import logging

import pytest

from thbench.core import logs


@pytest.fixture
def console():
    yield logs.configure
    logger = logging.getLogger(logs.ROOT)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def test_a_module_logger_prints_once_configured(console, capsys: pytest.CaptureFixture[str]):
    from thbench.training.vgg import perceptual_network

    assert perceptual_network("l1", "cpu") is None
    assert "perceptual loss" not in capsys.readouterr().out  # INFO is silent by default
    console(rank=0)
    console(rank=0)  # configuring twice keeps one handler
    assert perceptual_network("l1", "cpu") is None
    logging.getLogger("thbench.somewhere").warning("careful: %d", 3)
    captured = capsys.readouterr()
    assert captured.out == "perceptual loss: multi-scale L1 pyramid (requested)\n"
    assert captured.err == "careful: 3\n"


def test_other_ranks_prefix_every_line(console, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RANK", "2")
    console()
    logging.getLogger("thbench.eval.runner").info("source-copy: 3 pairs")
    logging.getLogger("thbench.eval.runner").error("failed")
    captured = capsys.readouterr()
    assert captured.out == "[rank 2] source-copy: 3 pairs\n"
    assert captured.err == "[rank 2] failed\n"
