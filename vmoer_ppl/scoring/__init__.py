"""Answer scorers: cloze (ranked continuations) beside the paper's letter format."""

from vmoer_ppl.scoring.batches import cloze_context, encode_cloze
from vmoer_ppl.scoring.cloze import ClozeHead, ClozeNorm, score_cloze
from vmoer_ppl.scoring.letter import encode_letter, letter_prompt, letter_token_ids
from vmoer_ppl.scoring.names import ScorerKind, parse_scorer, scorer_name

__all__ = [
    "ClozeHead",
    "ClozeNorm",
    "ScorerKind",
    "cloze_context",
    "encode_cloze",
    "encode_letter",
    "letter_prompt",
    "letter_token_ids",
    "parse_scorer",
    "score_cloze",
    "scorer_name",
]
