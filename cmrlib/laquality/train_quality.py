"""`cmr train la-quality` / `cmr evaluate la-quality`: stage 2 of seed 001, the ResNet-34 encoder
with attribute and quality heads in its baseline, multi-task or contrastive variant
(:mod:`.train`, :mod:`.evaluate`)."""
from __future__ import annotations

import argparse

from . import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    train.add_quality_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return train.run_quality(args)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    from .evaluate import add_eval_arguments as add
    add(parser)


def evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_cli
    return evaluate_cli(args, "la-quality")
