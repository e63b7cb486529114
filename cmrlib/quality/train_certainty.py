"""`cmr train lge-certainty`: the LGE certainty classifier (EfficientNetV2 + feed-forward head, seed 000).

The loop and the data are :mod:`cmrlib.quality.train`; `cmr evaluate lge-certainty` is
:mod:`cmrlib.quality.evaluate`.
"""
from __future__ import annotations

import argparse

from . import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    train.add_arguments(parser, "certainty")


def run(args: argparse.Namespace) -> int:
    return train.run(args, "certainty")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    from .evaluate import add_eval_arguments as add
    add(parser)


def evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_cli
    return evaluate_cli(args, "certainty")
