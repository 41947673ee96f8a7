"""WebUI prompt syntax: attention weights, long prompts in 75-token chunks, negative padding, styles."""

import json

import numpy as np
import pytest

from editanything.errors import InvalidInputError
from editanything.generate import GenerationParams
from editanything.generate.prompts import (BREAK, CHUNK_TOKENS, Style, apply_styles, encode_prompts, load_styles,
                                           parse_prompt_attention, pick_styles, tokenize_weighted)

R = 1.1  # the WebUI's factor for one pair of round brackets


@pytest.mark.parametrize("text, expected", [
    ("a cat", [("a cat", 1.0)]),
    ("a (cat)", [("a ", 1.0), ("cat", R)]),
    ("a ((cat))", [("a ", 1.0), ("cat", R * R)]),
    ("a [cat]", [("a ", 1.0), ("cat", 1 / R)]),
    ("(cat:1.5) dog", [("cat", 1.5), (" dog", 1.0)]),
    ("(cat: 0.25 )", [("cat", 0.25)]),
    ("((cat:2) dog)", [("cat", 2 * R), (" dog", R)]),
    ("[a (b:2)]", [("a ", 1 / R), ("b", 2 / R)]),
    (r"\(cat\) \[x\]", [("(cat) [x]", 1.0)]),
    ("(open ended", [("open ended", R)]),
    ("a) b]", [("a) b]", 1.0)]),
    ("ratio 16:9", [("ratio 16:9", 1.0)]),
    ("a BREAK (b)", [("a", 1.0), BREAK, ("b", R)]),
    ("", [("", 1.0)]),
])
def test_attention_syntax(text, expected):
    got = parse_prompt_attention(text)
    assert [t for t, _ in got] == [t for t, _ in expected]
    np.testing.assert_allclose([w for _, w in got], [w for _, w in expected], rtol=1e-12)


def test_prompt_must_be_a_string():
    with pytest.raises(InvalidInputError):
        parse_prompt_attention(None)


# ---- tokens and embeddings with the tiny CLIP --------------------------------------------------

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def pipe(tmp_path_factory, torch):
    pytest.importorskip("diffusers")
    from tiny_sd import build_pipeline

    return build_pipeline(tmp_path_factory.mktemp("tiny-sd"))


def test_chunk_layout_is_bos_tokens_eos_padding(pipe):
    tok = pipe.tokenizer
    chunks = tokenize_weighted(tok, "ab (c)")
    assert len(chunks) == 1
    ids, weights = chunks[0].ids, chunks[0].weights
    body = tok("ab c", add_special_tokens=False).input_ids
    assert len(ids) == CHUNK_TOKENS + 2 == 77
    assert ids[: len(body) + 2] == [tok.bos_token_id, *body, tok.eos_token_id]
    assert set(ids[len(body) + 2:]) == {tok.pad_token_id}
    c_at = len(tok("ab", add_special_tokens=False).input_ids) + 1
    assert weights[c_at] == pytest.approx(R) and weights.count(1.0) == 76


def test_long_prompts_are_cut_into_75_token_chunks(pipe, torch):
    # The tiny vocabulary has one token per character (plus end-of-word), so 120 one-letter words = 120 tokens.
    text = " ".join("abcdefghij"[i % 10] for i in range(120))
    n_tokens = len(pipe.tokenizer(text, add_special_tokens=False).input_ids)
    chunks = tokenize_weighted(pipe.tokenizer, text)
    assert n_tokens > CHUNK_TOKENS and len(chunks) == -(-n_tokens // CHUNK_TOKENS)
    flat = [t for c in chunks for t in c.ids[1: 1 + CHUNK_TOKENS]]
    assert flat[:n_tokens] == pipe.tokenizer(text, add_special_tokens=False).input_ids

    pos, neg = encode_prompts(pipe, text, "blurry", device="cpu")
    assert pos.shape == neg.shape == (1, 77 * len(chunks), 32)
    # each chunk is encoded on its own, exactly as CLIP encodes those 77 ids
    for i, chunk in enumerate(chunks):
        with torch.no_grad():
            alone = pipe.text_encoder(torch.tensor([chunk.ids]))[0]
        torch.testing.assert_close(pos[:, 77 * i: 77 * (i + 1)], alone, rtol=0, atol=0)
    # the negative prompt is padded with encodings of the empty prompt
    empty, _ = encode_prompts(pipe, "", "", device="cpu")
    torch.testing.assert_close(neg[:, 77:], empty.repeat(1, len(chunks) - 1, 1), rtol=0, atol=0)


def test_unweighted_prompt_matches_diffusers_encode_prompt(pipe, torch):
    pos, neg = encode_prompts(pipe, "a red apple on a table", "blurry, low quality", device="cpu")
    ref_pos, ref_neg = pipe.encode_prompt("a red apple on a table", "cpu", 1, True, "blurry, low quality")
    torch.testing.assert_close(pos, ref_pos, rtol=0, atol=0)
    torch.testing.assert_close(neg, ref_neg, rtol=0, atol=0)


def _expected_weighted(pipe, plain_text, weights_by_position):
    """The WebUI rule written out: hidden states × weight per token, then rescaled to the original mean."""
    import torch

    chunk = tokenize_weighted(pipe.tokenizer, plain_text)[0]
    with torch.no_grad():
        z = pipe.text_encoder(torch.tensor([chunk.ids]))[0]
    w = torch.ones(77)
    for pos, value in weights_by_position.items():
        w[pos] = value
    weighted = z * w[None, :, None]
    return z, weighted * (z.mean() / weighted.mean())


@pytest.mark.parametrize("text, factor", [("x (ab:1.5) y", 1.5), ("x [ab] y", 1 / R), ("x ((ab)) y", R * R)])
def test_weights_scale_the_hidden_states_of_their_tokens(pipe, text, factor, torch):
    tok = pipe.tokenizer
    start = 1 + len(tok("x ", add_special_tokens=False).input_ids)
    n_ab = len(tok("ab", add_special_tokens=False).input_ids)
    positions = {start + i: factor for i in range(n_ab)}
    plain, expected = _expected_weighted(pipe, "x ab y", positions)
    got, _ = encode_prompts(pipe, text, "", device="cpu")
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # weighted tokens moved by their factor relative to the others (the mean rescale is common to all)
    ratio = got[0].norm(dim=-1) / plain[0].norm(dim=-1)
    inside = ratio[start: start + n_ab].mean()
    outside = torch.cat([ratio[:start], ratio[start + n_ab:]]).mean()
    assert (inside / outside).item() == pytest.approx(factor, rel=1e-3)


def test_textual_inversion_multi_vector_token_expands(tmp_path, pipe):
    from tiny_sd import build_pipeline, save_embedding

    p = build_pipeline(tmp_path)
    p.load_textual_inversion(str(save_embedding(tmp_path / "e.safetensors", vectors=3)), token="<sty>")
    chunk = tokenize_weighted(p.tokenizer, "a (<sty>:1.2)", lambda s: p.maybe_convert_prompt(s, p.tokenizer))[0]
    wanted = p.tokenizer.convert_tokens_to_ids(["<sty>", "<sty>_1", "<sty>_2"])
    at = [chunk.ids.index(i) for i in wanted]
    assert at == [at[0], at[0] + 1, at[0] + 2]
    assert [chunk.weights[i] for i in at] == [1.2] * 3


# ---- styles -------------------------------------------------------------------------------------

def test_styles_from_webui_csv_and_json(tmp_path):
    csv_file = tmp_path / "styles.csv"
    csv_file.write_text('name,prompt,negative_prompt\n'
                        'photo,"{prompt}, 35mm photo, sharp","cartoon, drawing"\n'
                        'moody,"dark, moody",\n', encoding="utf-8")
    json_file = tmp_path / "styles.json"
    json_file.write_text(json.dumps({"photo": {"prompt": "{prompt}, 35mm photo, sharp", "negative_prompt": "cartoon, drawing"},
                                     "moody": {"prompt": "dark, moody"}}))
    for path in (csv_file, json_file):
        styles = load_styles(path)
        assert set(styles) == {"photo", "moody"}
        prompt, negative = apply_styles("a red car", "blurry", pick_styles(styles, ["photo", "moody"]))
        assert prompt == "a red car, 35mm photo, sharp, dark, moody"
        assert negative == "blurry, cartoon, drawing"


def test_style_placeholder_and_empty_parts():
    style = Style("wrap", "masterpiece, {prompt}, detailed", "{prompt}, ugly")
    assert apply_styles("a cat", "", [style]) == ("masterpiece, a cat, detailed", ", ugly")
    assert apply_styles("", "", [Style("s", "only style")]) == ("only style", "")


def test_bad_styles_are_reported(tmp_path):
    with pytest.raises(InvalidInputError, match="photo"):
        pick_styles({"photo": Style("photo")}, ["nope"])
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InvalidInputError, match="not a styles file"):
        load_styles(bad)
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_styles(tmp_path / "missing.csv")


def test_params_validate_webui_ranges():
    p = GenerationParams(prompt="x", seed=-1)
    seed = p.resolve_seed()
    assert 0 <= seed < 2**32
    fixed = GenerationParams(seed=7, batch_size=2, batch_count=3).image_seeds()
    assert fixed == [7, 8, 9, 10, 11, 12]
    for bad in (dict(steps=0), dict(cfg_scale=-1), dict(strength=0), dict(strength=1.5), dict(seed=-2),
                dict(batch_size=0), dict(resolution=500), dict(width=512), dict(width=100, height=64)):
        with pytest.raises(InvalidInputError):
            GenerationParams(**bad)
