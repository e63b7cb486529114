"""`cmr train la-detector` / `cmr evaluate la-detector`: stage 1 of seed 001, the LA blood-pool
U-Net whose slices above the threshold t go on to the quality network (:mod:`.train`, :mod:`.evaluate`)."""
from __future__ import annotations

import argparse

from . import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    train.add_detector_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return train.run_detector(args)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    from .evaluate import add_eval_arguments as add
    add(parser)


def evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_cli
    return evaluate_cli(args, "la-detector")
