"""A word-level tokenizer over a tiny vocabulary, in the real fast-tokenizer format."""

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

WORDS = [
    "<pad>",
    "<s>",
    "</s>",
    "<unk>",
    "Question:",
    "Answer:",
    "Choices:",
    "A.",
    "B.",
    "C.",
    "D.",
    "A",
    "B",
    "C",
    "D",
    "what",
    "colour",
    "is",
    "the",
    "sky",
    "grass",
    "blue",
    "green",
    "red",
    "very",
    "dark",
    "light",
    "sun",
    "hot",
    "cold",
    "?",
    "a",
    "it",
]


def tiny_tokenizer():
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
