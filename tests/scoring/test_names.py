"""One scorer vocabulary: names, their normalisations, the earlier name, and the CLI's check."""

import pytest

from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.validate import validate_config
from vmoer_ppl.scoring import ClozeNorm, ScorerKind, parse_scorer, scorer_name
from vmoer_ppl.scoring.names import SCORER_NAMES


@pytest.mark.parametrize(
    "name, kind, norm",
    [
        ("letter", ScorerKind.LETTER, None),
        ("next-token", ScorerKind.LETTER, None),  # adapters saved before one vocabulary
        ("cloze", ScorerKind.CLOZE, ClozeNorm.CHAR),
        ("cloze:sum", ScorerKind.CLOZE, ClozeNorm.SUM),
        ("cloze:token", ScorerKind.CLOZE, ClozeNorm.TOKEN),
        ("cloze:char", ScorerKind.CLOZE, ClozeNorm.CHAR),
    ],
)
def test_each_name_reads_as_its_kind_and_norm(name, kind, norm):
    assert parse_scorer(name) == (kind, norm)


@pytest.mark.parametrize("name", ["letters", "cloze:mean", "letter:char", "", "cloze:"])
def test_unknown_names_are_refused_listing_the_valid_ones(name):
    if name == "cloze:":  # an empty norm is the default one
        assert parse_scorer(name) == (ScorerKind.CLOZE, ClozeNorm.CHAR)
        return
    with pytest.raises(ValueError, match="'letter', 'cloze' or 'cloze:sum"):
        parse_scorer(name)


def test_canonical_spelling_names_the_norm_and_renames_next_token():
    assert scorer_name("next-token") == "letter"
    assert scorer_name("cloze") == "cloze:char"
    assert scorer_name("cloze:sum") == "cloze:sum"


def test_every_cli_choice_parses_and_the_fit_check_takes_it():
    for name in SCORER_NAMES:
        parse_scorer(name)
        validate_config(FitConfig().replace(scorer=name))
    with pytest.raises(ValueError, match="--scorer 'next-tokens'"):
        validate_config(FitConfig().replace(scorer="next-tokens"))
