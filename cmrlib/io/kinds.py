"""The one check of a command's input against the DICOM classifier's series kind.

A capability reads some kinds (``accepted``) and refuses others with what they are (``wrong``:
kind → "a cine series" …), naming what it reads instead; ``force`` turns the refusal into a note.
An unclassified input, or one of another kind, is read with a note.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping

from ..errors import InputError


def check_input_kind(kind: str | None, reason: str, description: str, *, accepted: Collection[str],
                     wrong: Mapping[str, str], reads: str, name: str, read_as: str,
                     verbs: tuple[str, str], forced_note: str = "", force: bool = False) -> list[str]:
    """Notes for an input of DICOM ``kind``; InputError for a ``wrong`` kind unless ``force``.

    ``reads``: what the capability reads ("the LGE certainty … read short-axis LGE only");
    ``name``: the accepted kind's name in "not recognised as …"; ``read_as``: what another input
    is treated as; ``verbs``: e.g. ("classifies", "classified") for the --force hint and the notes."""
    if kind in accepted:
        return []
    what = f"{description!r}" if description else "the input"
    verb, past = verbs
    if kind in wrong:
        msg = f"{what} is {wrong[kind]} ({reason or 'DICOM classification'}); {reads}"
        if not force:
            raise InputError(f"{msg}; --force {verb} it anyway")
        return [f"forced: {msg}{forced_note}"]
    if kind in (None, "", "unknown"):
        why = f" ({reason})" if reason else ""
        return [f"{what} is not recognised as {name}{why}: {past} as if it were {read_as}"]
    return [f"{what} is of kind {kind!r}: {past} as if it were {read_as}"]
