"""Prompt expansion: the rules (properties over random keyword lists, counted with CLIP's tokenizer), a tiny
local LM through the real transformers loading path, OpenAI's Responses API against a local fake, `auto`,
and `editanything prompt`."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from editanything.cli import main
from editanything.errors import BadOutput, InvalidInputError, ModelNotFound
from editanything.generate.remote.http import ContentRefused, RemoteServiceError
from editanything.generate.prompts import tokenize_weighted
from editanything.models import find_model
from editanything.prompting import MAX_WORDS_CHARS, expand, get_expander
from editanything.prompting.clip_tokens import clip_tokenizer, estimate_tokens
from editanything.prompting.rules import LEXICON, RulesExpander, plain, slot_of, split_keywords

CLIP = clip_tokenizer() if find_model("clip-tokenizer") is not None else None
needs_clip = pytest.mark.skipif(CLIP is None, reason="CLIP tokenizer not downloaded: run "
                                                     "`editanything models download clip-tokenizer` (`make weights`)")


def clip_count(text: str) -> int:
    """CLIP tokens as the diffusion pipelines read a prompt (generate/prompts.py: weight brackets are syntax)."""
    eos = CLIP[0].eos_token_id
    return sum(c.ids.index(eos, 1) - 1 for c in tokenize_weighted(CLIP[0], text))


def fits_first_chunk(text: str) -> bool:
    return len(tokenize_weighted(CLIP[0], text)) == 1


# Keywords as users write them: lexicon words (every slot), plain nouns, adjectives, weights, plurals, case.
POOL = sorted({w for words in LEXICON.values() for w in words}) + [
    "tiger", "red car", "old man", "astronaut", "cat", "ballerina", "teapot", "dragon", "lighthouse", "bicycle"]
WORD = st.one_of(st.sampled_from(POOL), st.from_regex(r"[a-z]{2,12}", fullmatch=True))


@st.composite
def keyword(draw) -> str:
    text = " ".join(draw(st.lists(WORD, min_size=1, max_size=3)))
    if draw(st.booleans()) and draw(st.booleans()):
        text = text.capitalize()
    if draw(st.integers(0, 5)) == 0:
        text = f"({text}:{draw(st.sampled_from(['0.8', '1.2', '1.5']))})"
    return text


KEYWORDS = st.lists(keyword(), min_size=1, max_size=8, unique_by=str.lower)
SEEDS = st.integers(0, 2**32 - 1)


@needs_clip
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keywords=KEYWORDS, seed=SEEDS, target=st.sampled_from(["sd15", "sdxl"]))
def test_rules_tags_keep_every_keyword_within_75_clip_tokens_and_repeat(keywords, seed, target):
    words = ", ".join(keywords)
    assume(clip_count(", ".join(split_keywords(words))) <= 75)
    first = RulesExpander().expand(words, target, seed)
    for k in split_keywords(words):
        assert k in first.prompt
    assert fits_first_chunk(first.prompt) and clip_count(first.prompt) <= 75
    assert fits_first_chunk(first.negative_prompt)
    again = RulesExpander().expand(words, target, seed)
    assert again == first


@settings(max_examples=60, deadline=None)
@given(keywords=KEYWORDS, seed=SEEDS, target=st.sampled_from(["flux2-klein", "openai", "stability"]))
def test_rules_sentences_keep_every_keyword_and_repeat(keywords, seed, target):
    words = ", ".join(keywords)
    first = expand(words, target=target, seed=seed, expander="rules")
    for k in split_keywords(words):
        assert plain(k) in first.prompt
    assert "(" not in first.prompt and first.prompt.endswith(".")
    assert first == expand(words, target=target, seed=seed, expander="rules")
    assert (first.negative_prompt == "") == (target != "stability")


@needs_clip
def test_our_clip_vocabulary_gives_clips_token_ids():
    tokenizer, source = CLIP
    # Stable Diffusion's tokenizer: "a photo of" → <|startoftext|> a</w> photo</w> of</w> <|endoftext|>
    assert tokenizer("a photo of").input_ids == [49406, 320, 1125, 539, 49407]
    assert source == "clip-tokenizer"


@needs_clip
def test_the_estimate_over_counts_common_prompts():
    for text in ("tiger, river, mountain, trees, sunset, photograph, highly detailed, sharp focus",
                 "a photograph of an astronaut riding a horse on mars, hyperrealistic, 8k, (masterpiece:1.2)"):
        assert estimate_tokens(text) >= clip_count(text)


def test_rules_slots_and_defaults():
    assert [slot_of(k) for k in ("snowy mountains", "sunset", "(tiger:1.2)", "oil painting", "cyberpunk", "8k",
                                 "skies")] == ["setting", "lighting", "subject", "medium", "style", "quality", "setting"]
    e = expand("(red car:1.3), oil painting, snowy mountains", target="sd15", seed=1, expander="rules")
    assert e.prompt.startswith("(red car:1.3), snowy mountains,")  # subject first, weights kept
    assert "painting" not in e.negative_prompt and "photograph" not in e.prompt  # the medium asked for wins
    photo = expand("tiger", target="sd15", seed=1, expander="rules")
    assert "photograph" in photo.prompt and "cartoon" in photo.negative_prompt
    variants = {expand("tiger, river", target="sd15", seed=s, expander="rules").prompt for s in range(8)}
    assert len(variants) > 1  # the seed picks among the defaults: --n gives variations


def test_rules_refuse_bad_input_in_one_line():
    rules = RulesExpander()
    for words, says in (("", "nothing to expand"), ("   ", "nothing to expand"), (", ,", "no keywords"),
                        ("x" * (MAX_WORDS_CHARS + 1), "at most 2000"), (", ".join(f"supercalifragilistic {c}" for c in "abcdefghijklmnopqrst"),
                                                                         "CLIP tokens")):
        with pytest.raises(InvalidInputError, match=says) as info:
            rules.expand(words, "sd15", 0)
        assert "\n" not in str(info.value)
    with pytest.raises(InvalidInputError, match="unknown prompt target"):
        rules.expand("tiger", "sd3", 0)


# --- a local instruct model (tiny, random weights, official transformers format) ----------------------------------

@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from tiny_causal_lm import build_tiny_causal_lm

    root = tmp_path_factory.mktemp("lm")
    return build_tiny_causal_lm(root / "lm"), build_tiny_causal_lm(root / "silent", silent=True)


def test_a_local_lm_is_seeded_bounded_and_keeps_the_keywords(tiny_lm):
    import torch

    from editanything.prompting.local import LocalExpander

    lm = LocalExpander.from_pretrained(tiny_lm[0], max_new_tokens=24)
    state = torch.random.get_rng_state()
    a = lm.expand("river, tiger", "sd15", 7)
    assert torch.equal(state, torch.random.get_rng_state())  # sampling used its own RNG state
    assert a == lm.expand("river, tiger", "sd15", 7)
    assert a.prompt != lm.expand("river, tiger", "sd15", 8).prompt
    assert "river" in a.prompt and "tiger" in a.prompt
    assert a.expander == "lm" and len(a.model_sha256) == 64 and a.seed == 7
    for limit in (1, 5, 24):
        _, n = LocalExpander.from_pretrained(tiny_lm[0], max_new_tokens=limit).generate("tiger", "sd15", 3)
        assert 1 <= n <= limit
    sentences = lm.expand("river, tiger", "flux2-klein", 7)
    assert "river" in sentences.prompt and sentences.negative_prompt == ""
    assert all(c.isprintable() for c in a.prompt + sentences.prompt)


def test_generation_stops_where_more_tokens_cannot_change_the_prompt(tiny_lm):
    from editanything.prompting.local import LocalExpander
    from editanything.prompting.stopping import answer_complete

    words = lambda text: len(text.split())  # noqa: E731  (a counter that needs no CLIP vocabulary)
    assert answer_complete("a tiger\n\nSure! Here", None, words)  # only the first paragraph is read
    assert not answer_complete("\n\na tiger", None, words) and not answer_complete("a tiger, " * 40, None, words)
    assert not answer_complete("a tiger, " * 37, 75, words) and answer_complete("a tiger, " * 38, 75, words)
    assert not answer_complete("(a tiger:1.2), " * 37, 75, words)  # counted as the prompt will be: cleaned

    class Unstopped(LocalExpander):
        def stopping_criteria(self, prompt_length, target):
            return []

    stopped = LocalExpander.from_pretrained(tiny_lm[0], max_new_tokens=400)
    unstopped = Unstopped.from_pretrained(tiny_lm[0], max_new_tokens=400)
    for seed in range(3):
        for target in ("sd15", "flux2-klein"):
            short, n = stopped.generate("river, tiger", target, seed)
            full, n_full = unstopped.generate("river, tiger", target, seed)
            assert full.startswith(short) and n <= n_full  # the same draws, up to the stop
            if target == "sd15":  # random bytes fill 75 CLIP tokens long before 400 new tokens
                assert n < 400 and stopped.expand("river, tiger", target, seed).prompt == \
                    unstopped.expand("river, tiger", target, seed).prompt


def test_int8_is_the_cpu_default_seeded_and_recorded(tiny_lm):
    import torch

    from editanything.prompting import Expansion
    from editanything.prompting.local import LocalExpander

    int8 = LocalExpander.from_pretrained(tiny_lm[0], max_new_tokens=24)
    linears = [m for m in int8.model.modules() if type(m).__name__ == "Linear"]
    assert int8.precision == "int8" and linears and all("quantized" in type(m).__module__ for m in linears)
    state = torch.random.get_rng_state()
    a = int8.expand("river, tiger", "sd15", 7)
    assert torch.equal(state, torch.random.get_rng_state()) and a == int8.expand("river, tiger", "sd15", 7)
    assert a.options == {"precision": "int8", "max_new_tokens": 24, "stop": "first paragraph, 75 CLIP tokens"}
    assert Expansion.from_dict(json.loads(json.dumps(a.to_dict()))) == a  # as a recipe stores and reads it
    fp32 = LocalExpander.from_pretrained(tiny_lm[0], precision="float32")
    assert not any("quantized" in type(m).__module__ for m in fp32.model.modules())
    sentences = fp32.expand("river, tiger", "flux2-klein", 7)
    assert sentences.options == {"precision": "float32", "max_new_tokens": 160, "stop": "first paragraph"}
    assert "options" not in RulesExpander().expand("tiger", "sd15", 1).to_dict()  # recorded as before
    for precision, says in (("float16", "float16 is for CUDA"), ("int4", "unknown precision")):
        with pytest.raises(InvalidInputError, match=says):
            LocalExpander.from_pretrained(tiny_lm[0], precision=precision)
    with pytest.raises(InvalidInputError, match="'options' must map"):
        Expansion.from_dict({**a.to_dict(), "options": {"precision": ["int8"]}})


def test_an_lm_that_answers_only_stop_tokens_is_one_line(tiny_lm):
    from editanything.prompting.local import LocalExpander

    silent = LocalExpander.from_pretrained(tiny_lm[1])
    assert silent.generate("tiger", "sd15", 0) == ("", 1)
    with pytest.raises(BadOutput, match="returned nothing") as info:
        silent.expand("tiger", "sd15", 0)
    assert "\n" not in str(info.value)


def test_auto_takes_the_local_model_only_when_on_disk(tiny_lm, isolated_models, monkeypatch):
    import hashlib

    from model_pins import pin_to_files

    from editanything.models import MODELS

    assert get_expander("auto").name == "rules"
    with pytest.raises(ModelNotFound, match="models download smollm2-360m-instruct"):
        get_expander("smollm2-360m-instruct")
    assert {f.path.split("/")[-1]: f.sha256[:8] for f in MODELS["smollm2-360m-instruct"].files
            if f.path.endswith(".safetensors")} == {"model.safetensors": "e6bffe74"}
    shutil.copytree(tiny_lm[0], isolated_models / "smollm2-360m-instruct")
    pin_to_files(monkeypatch, isolated_models, "smollm2-360m-instruct")  # the tiny files stand in for the real ones
    lm = get_expander("auto")
    assert lm.name == "smollm2-360m-instruct"
    weights = (isolated_models / "smollm2-360m-instruct" / "model.safetensors").read_bytes()
    assert lm.sha256 == hashlib.sha256(weights).hexdigest()
    assert lm.expand("tiger", "sd15", 1).model_sha256 == lm.sha256


def test_magicprompt_continues_the_words_into_tags_only(isolated_models, monkeypatch, tmp_path):
    from model_pins import pin_to_files
    from tiny_causal_lm import build_tiny_gpt2

    build_tiny_gpt2(isolated_models / "magicprompt-sd")
    pin_to_files(monkeypatch, isolated_models, "magicprompt-sd")
    assert get_expander("auto").name == "rules"  # it writes tags only: auto, which serves every target, skips it
    gpt2 = get_expander("magicprompt-sd", max_new_tokens=12)
    a = gpt2.expand("river, tiger", "sdxl", 3)
    assert a == gpt2.expand("river, tiger", "sdxl", 3) and a.prompt.startswith("river, tiger")
    assert a.expander == "magicprompt-sd" and len(a.model_sha256) == 64
    with pytest.raises(InvalidInputError, match="writes tags") as info:
        gpt2.expand("river, tiger", "flux2-klein", 3)
    assert "\n" not in str(info.value)


# --- OpenAI's Responses API, against a local fake -----------------------------------------------------------------

KEY = "sk-test-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture
def responses(monkeypatch):
    from fake_responses_api import start

    server = start(KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    yield server
    server.shutdown()


def test_openai_sends_the_responses_fields_and_keeps_the_keywords(responses):
    e = expand("river, tiger", target="sd15", seed=4, expander="openai")
    sent = responses.log[-1]
    assert sent["path"] == "/v1/responses" and sent["headers"]["Authorization"] == f"Bearer {KEY}"
    assert sent["headers"]["Content-Type"] == "application/json"
    body = sent["json"]
    assert body["model"] == "gpt-5.4-mini" and body["input"] == "river, tiger" and body["store"] is False
    assert "comma-separated tags" in body["instructions"] and body["max_output_tokens"] >= 256
    assert e.prompt.startswith("river, tiger, golden light") and not e.prompt.lower().startswith("prompt")
    assert e.expander == "openai" and e.model == "gpt-5.4-mini" and e.seed == 4 and "no seed" in e.notes
    prose = expand("river, tiger", target="openai", seed=4, expander="openai", model="gpt-5.4-nano")
    assert responses.log[-1]["json"]["model"] == "gpt-5.4-nano" and "At most 32000" in responses.log[-1]["json"][
        "instructions"]
    assert "river" in prose.prompt and prose.negative_prompt == ""
    assert KEY not in repr(get_expander("openai")) and KEY not in json.dumps(e.to_dict())


def test_openai_retries_then_answers(responses):
    responses.script = [(500, {}, {"error": {"message": "boom", "type": "server_error", "code": None}}),
                        (429, {"retry-after-ms": "5"}, {"error": {"message": "slow down", "type": "requests",
                                                                  "code": "rate_limit_exceeded"}})]
    e = expand("tiger", target="sd15", seed=0, expander="openai")
    assert len(responses.log) == 3 and "tiger" in e.prompt


def test_openai_refusals_and_errors_are_one_line_without_the_key(responses, monkeypatch):
    for words, error, says in (("forbidden tiger", ContentRefused, "refused"),
                               ("filtered tiger", ContentRefused, "content filter"),
                               ("silent tiger", BadOutput, "returned nothing")):
        with pytest.raises(error, match=says) as info:
            expand(words, target="sd15", seed=0, expander="openai")
        assert "\n" not in str(info.value)
    responses.script = [(400, {}, {"error": {"message": "Your request was rejected by the safety system.",
                                             "type": "invalid_request_error", "code": "content_policy_violation"}})]
    with pytest.raises(ContentRefused, match="safety system"):
        expand("tiger", target="sd15", seed=0, expander="openai")
    wrong = "sk-wrong-0123456789abcdefghijklmnopqrstuv"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    with pytest.raises(RemoteServiceError, match="OPENAI_API_KEY") as info:
        expand("tiger", target="sd15", seed=0, expander="openai")
    assert wrong not in str(info.value)
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(InvalidInputError, match="OPENAI_API_KEY"):
        get_expander("openai")
    assert len([r for r in responses.log if r["path"] == "/v1/responses"]) == 5  # the missing key sent nothing


def test_auto_never_calls_a_paid_service(responses, isolated_models):
    assert expand("tiger", target="sd15", seed=0).expander == "rules"
    assert responses.log == []


# --- the command ------------------------------------------------------------------------------------------------

def test_prompt_command(capsys, isolated_models, tmp_path):
    assert main(["prompt", "river, tiger, mountain, trees, sunset", "--seed", "5", "--n", "2"]) == 0
    out = capsys.readouterr()
    blocks = out.out.strip().split("\n\n")
    assert len(blocks) == 2 and all(b.splitlines()[1].startswith("Negative prompt: ") for b in blocks)
    assert "rule-based" in out.err and "seed 5" in out.err and "seed 6" in out.err
    assert main(["prompt", "river, tiger, mountain, trees, sunset", "--seed", "5", "--n", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["prompt"] for d in data] == [b.splitlines()[0] for b in blocks] and [d["seed"] for d in data] == [5, 6]
    styles = tmp_path / "styles.csv"
    styles.write_text("name,prompt,negative_prompt\nnoir,\"{prompt}, film noir\",colour\n", encoding="utf-8")
    assert main(["prompt", "tiger", "--target", "flux2-klein", "--seed", "1", "--style", "noir", "--styles-file",
                 str(styles), "--json"]) == 0
    styled = json.loads(capsys.readouterr().out)[0]
    assert styled["prompt"].endswith(", film noir") and styled["negative_prompt"] == "colour"


@pytest.fixture(scope="module")
def tiny_blip2(tmp_path_factory):
    from tiny_detect_models import build_tiny_blip2

    return build_tiny_blip2(tmp_path_factory.mktemp("captioner") / "blip2-opt-2.7b")


def test_prompt_from_a_photo_captions_it_then_expands(capsys, tiny_blip2, tiny_lm, isolated_models, monkeypatch,
                                                      demo_photo):
    from model_pins import pin_to_files

    shutil.copytree(tiny_blip2, isolated_models / "blip2-opt-2.7b")
    shutil.copytree(tiny_lm[0], isolated_models / "smollm2-360m-instruct")
    pin_to_files(monkeypatch, isolated_models, "smollm2-360m-instruct")

    def prompt(photo, *argv):
        assert main(["prompt", "--image", str(photo), "--json", *argv]) == 0
        out = capsys.readouterr()
        (expansion,) = json.loads(out.out)
        captions = [line.removeprefix("caption: ") for line in out.err.splitlines() if line.startswith("caption: ")]
        assert len(captions) == 1
        return expansion, captions[0]

    first, caption = prompt(demo_photo, "--seed", "3")
    assert caption.strip() and first["words"] == caption.strip()
    assert first["expander"] == "smollm2-360m-instruct" and len(first["model_sha256"]) == 64
    assert first["options"]["precision"] == "int8"  # the CPU default, recorded
    assert caption.strip() in first["prompt"] and first["prompt"] != first["words"] and first["negative_prompt"]
    assert prompt(demo_photo, "--seed", "3") == (first, caption)  # the caption is greedy, the expansion seeded
    other, same = prompt(demo_photo, "--seed", "4")
    assert same == caption and other["prompt"] != first["prompt"]
    coffee, its_caption = prompt(demo_photo.parent / "coffee.jpg", "--seed", "3")
    assert its_caption != caption and its_caption.strip() in coffee["prompt"]  # the captioner reads the photo
    added, _ = prompt(demo_photo, "tiger", "--seed", "3", "--target", "flux2-klein")
    assert added["words"] == f"{caption.strip()}, tiger" and "tiger" in added["prompt"]
    unquantized, _ = prompt(demo_photo, "--seed", "3", "--llm-precision", "float32")
    assert unquantized["options"]["precision"] == "float32"
    assert main(["prompt", "--image", str(demo_photo), "--seed", "3"]) == 0  # as people read it
    out = capsys.readouterr()
    assert out.out.splitlines() == [first["prompt"], f"Negative prompt: {first['negative_prompt']}"]


def test_prompt_command_errors_are_one_line(capsys, isolated_models, demo_photo):
    for argv, says in ((["prompt", ""], "nothing to expand"), (["prompt", "x" * 2001], "at most 2000"),
                       (["prompt", "tiger", "--n", "0"], "--n"),
                       (["prompt", "--image", str(demo_photo)], "models download florence-2-base"),
                       (["prompt", "--image", str(demo_photo.parent / "missing.jpg")], "missing.jpg"),
                       (["prompt", "tiger", "--llm-model", "gpt-5.4-nano"], "--expander openai"),
                       (["prompt", "tiger", "--expander", "rules", "--llm-precision", "int8"], "local language model")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], (argv, err)


def test_prompt_help_says_rules_are_not_a_language_model(capsys):
    with pytest.raises(SystemExit):
        main(["prompt", "--help"])
    assert "not a language model" in " ".join(capsys.readouterr().out.split())


def test_models_list_shows_each_expander_with_size_and_licence(capsys, isolated_models):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr()
    rows = {line.split()[0]: line for line in out.out.splitlines()[1:]}
    assert "724 MB" in rows["smollm2-360m-instruct"] and "Apache-2.0" in rows["smollm2-360m-instruct"]
    assert "269 MB" in rows["smollm2-135m-instruct"] and "Apache-2.0" in rows["smollm2-135m-instruct"]
    assert "1.4 MB" in rows["clip-tokenizer"] and "MIT" in rows["clip-tokenizer"]
    notes = out.err.replace("\n  ", " ").splitlines()  # notes wrap at 100 columns onto indented lines
    note = next(line for line in notes if "prompt expanders" in line)
    assert "rules (rule-based, no weights" in note and "openai (hosted" in note
