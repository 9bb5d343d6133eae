"""The pre-flight check at the start of ``eval run``: before any work, one block naming each
missing asset or file, what it disables (metrics, methods, training) and how to fix it.

Looking an asset up downloads it when it has a URL and the network is allowed (first use), so
what the block lists is what is still missing after that. A missing dataset folder stops the run
here with a one-line error; everything else only disables what needs it, and the run goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from thbench.core import assets
from thbench.core.families import family
from thbench.eval.config import MethodConfig, RunConfig
from thbench.eval.metrics import Metric

logger = logging.getLogger(__name__)


@dataclass
class Gap:
    """One missing thing: what it is, why, the fix, and what it disables."""

    what: str
    why: str
    fix: str
    disables: list[str] = field(default_factory=list)


class Findings:
    """Gaps keyed by what is missing, so an asset needed by three metrics is listed once."""

    def __init__(self) -> None:
        self.gaps: dict[str, Gap] = {}

    def add(self, what: str, why: str, fix: str, disables: str) -> None:
        gap = self.gaps.setdefault(what, Gap(what, why, fix))
        if disables not in gap.disables:
            gap.disables.append(disables)

    def add_errors(self, errors: list[assets.AssetError], disables: str) -> None:
        for error in errors:
            if isinstance(error, assets.AssetMissing):
                asset = assets.get(error.name)
                self.add(f"asset {error.name} ({asset.filename})", error.reason, error.fix,
                         disables)
            else:
                self.add(f"asset {error.name}", str(error), "delete the file and run "
                         f"`python -m thbench eval assets download {error.name}`", disables)


def check_dataset(config: RunConfig) -> None:
    """A prepared dataset's folder must exist and hold clips and a pair list for each of the
    run's protocols: nothing can run without them."""
    root = config.dataset.root
    if config.dataset.name == "sample" or not root:
        return
    if not Path(root).is_dir():
        raise FileNotFoundError(
            f"{root}: dataset folder of {config.dataset.name!r} not found; fix: "
            "--set dataset.root=FOLDER (a prepared dataset), or prepare it with "
            f"`python -m thbench datasets prepare ... --out {root}`")
    if not (Path(root) / "clips").is_dir():
        raise FileNotFoundError(
            f"{root}: not a prepared dataset (no clips/ folder); fix: prepare it with "
            f"`python -m thbench datasets prepare ... --out {root}`")
    for protocol in config.protocols:
        if not (Path(root) / "pairs" / f"{protocol}.jsonl").is_file():
            raise FileNotFoundError(
                f"{root}: no {protocol} pair list (pairs/{protocol}.jsonl); fix: "
                f"`python -m thbench datasets pairs` for it, or leave {protocol} out of "
                "protocols")


def _check_metrics(metrics: list[Metric], findings: Findings) -> None:
    for metric in metrics:
        with assets.collect_missing() as errors:
            reason = metric.available()
        if errors:
            findings.add_errors(errors, f"metric {metric.name}")
        elif reason:
            why, _, fix = reason.partition("; fix: ")
            findings.add(f"metric {metric.name}", why, fix or "see why", f"metric {metric.name}")


def _check_method(spec: MethodConfig, findings: Findings, retrain: bool) -> None:
    checkpoint = spec.options.get("checkpoint")
    if checkpoint and not spec.train and not Path(checkpoint).is_file():
        findings.add(f"checkpoint {checkpoint}", "file not found",
                     f"--set methods.{spec.display}.checkpoint=/path/to/{Path(checkpoint).name} "
                     f"(a {spec.name} checkpoint), or put the file at {checkpoint}",
                     f"method {spec.display}")
    if spec.train and spec.shipped and not retrain:
        _check_shipped(spec, findings)
    elif spec.train:
        _check_training(spec, findings)


def _check_shipped(spec: MethodConfig, findings: Findings) -> None:
    from thbench.training.config import load_train_config
    from thbench.training.shipped import ShippedMismatch, verified_export

    try:
        verified_export(Path(spec.shipped), load_train_config(spec.train))
    except ShippedMismatch as error:
        what, _, fix = str(error).partition("; fix: ")
        findings.add(f"shipped checkpoint {spec.shipped}", what, fix, f"method {spec.display}")


def _check_training(spec: MethodConfig, findings: Findings) -> None:
    from thbench.training.config import load_train_config

    config = load_train_config(spec.train)
    if config.exported.is_file():
        return  # trained already: nothing more is needed
    backend = config.loss.get("perceptual_backend", "auto")
    if config.loss.get("perceptual", 1) and backend != "l1":
        with assets.collect_missing() as errors:
            try:
                assets.resolve("vgg19")
            except assets.AssetError:
                pass
        effect = (f"training of {spec.display} (its config requires VGG-19)" if backend == "vgg19"
                  else f"VGG-19 perceptual loss when training {spec.display} (an L1 image "
                       "pyramid is used instead)")
        findings.add_errors(errors, effect)
    if config.init_from and not Path(config.init_from).is_file():
        findings.add(f"checkpoint {config.init_from}", "file not found (the training config's "
                     "init_from)", "train the first stage, or point init_from at its export",
                     f"training of {spec.display}")
    if config.loss.get("pose_estimator") == "hopenet":
        with assets.collect_missing() as errors:
            try:
                assets.resolve("hopenet")
            except assets.AssetError:
                pass
        findings.add_errors(errors, f"training of {spec.display} (its head-pose loss needs "
                                    "Hopenet)")
    needed = family(config.family).training_assets
    with assets.collect_missing() as errors:
        for name in needed:
            try:
                assets.resolve(name)
            except assets.AssetError:
                pass
    findings.add_errors(errors, f"training of {spec.display} (it needs {', '.join(needed)})")


def preflight(config: RunConfig, metrics: list[Metric]) -> list[Gap]:
    """Every gap of ``config`` (dataset errors raise); looking assets up may download them."""
    check_dataset(config)
    findings = Findings()
    _check_metrics(metrics, findings)
    for spec in config.methods:
        try:
            family(spec.name).method_class()
        except (ValueError, TypeError) as error:
            findings.add(f"method {spec.display}", f"its code does not load: {error}",
                         "fix or reinstall its package (`python -m thbench methods` lists "
                         "every method and why one does not load)", f"method {spec.display}")
            continue
        _check_method(spec, findings, config.retrain)
    return list(findings.gaps.values())


def report(gaps: list[Gap]) -> None:
    """The pre-flight block: one entry per gap with what it disables, why, and the fix."""
    if not gaps:
        logger.info("pre-flight: every asset and file the run needs is here")
        return
    lines = [f"pre-flight: {len(gaps)} missing; the run goes on without what each disables"]
    for gap in gaps:
        lines += [f"  - {gap.what}: disables {', '.join(gap.disables)}",
                  f"      why: {gap.why}", f"      fix: {gap.fix}"]
    logger.info("\n".join(lines))
