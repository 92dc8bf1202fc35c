"""SynthWorld: determinism and the co-occurrence rates the phenomena are built on."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from steerlang.zoo import world as W
from steerlang.zoo.world import SynthWorld, WorldConfig

N = 2000


@pytest.fixture(scope="module")
def samples() -> list[W.Sample]:
    return list(SynthWorld(0).samples(0, N))


def test_same_seed_same_samples() -> None:
    a, b = SynthWorld(3), SynthWorld(3)
    for i in (0, 7, 123):
        sa, sb = a.sample(i), b.sample(i)
        assert np.array_equal(sa.image, sb.image)
        assert sa.caption == sb.caption and sa.attrs == sb.attrs


def test_sample_does_not_depend_on_what_was_generated_before() -> None:
    w = SynthWorld(0)
    imgs, caps, _ = w.batch(40, 5)
    fresh = SynthWorld(0).sample(42)
    assert np.array_equal(imgs[2], fresh.image) and caps[2] == fresh.caption


def test_different_seed_different_world() -> None:
    a, b = SynthWorld(0).batch(0, 8), SynthWorld(1).batch(0, 8)
    assert not np.array_equal(a[0], b[0])


def test_images_are_64px_rgb(samples: list[W.Sample]) -> None:
    assert all(s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8 for s in samples[:50])


def test_scene_mix(samples: list[W.Sample]) -> None:
    counts = Counter(s.attrs["scene"] for s in samples)
    weights = dict(zip(W.SCENES, WorldConfig().scene_weights, strict=True))
    for scene, w in weights.items():
        assert abs(counts[scene] / N - w) < 0.04, (scene, counts[scene] / N)


def test_background_matches_bird_type_95_percent(samples: list[W.Sample]) -> None:
    birds = [s.attrs for s in samples if s.attrs["scene"] == "bird" and s.attrs["place"] >= 0]
    match = np.mean([a["place"] == a["y"] for a in birds])
    assert len(birds) > 300
    assert 0.92 <= match <= 0.98


def test_captions_name_bird_type_far_more_than_background(samples: list[W.Sample]) -> None:
    birds = [s for s in samples if s.attrs["scene"] == "bird" and "text" not in s.attrs]
    names_type = np.mean([W.BIRD_TYPES[s.attrs["y"]] in s.caption for s in birds])
    names_place = np.mean([" on land" in s.caption or " on water" in s.caption for s in birds])
    assert names_type > 0.8
    assert names_place < 0.15
    assert names_type > 5 * names_place


def test_written_words_are_named_in_captions(samples: list[W.Sample]) -> None:
    texted = [s for s in samples if "text" in s.attrs]
    assert 0.3 < len(texted) / N < 0.5  # text scenes + a word on some other scenes
    assert all(s.attrs["text"] in s.caption for s in texted)
    assert set(s.attrs["text"] for s in texted) <= set(W.TEXT_WORDS)
    # some captions name only the word, as if it were the object ("a photo of a star.")
    word_only = [
        s
        for s in texted
        if s.attrs["scene"] != "text"
        and " with " not in s.caption
        and "sign that says" not in s.caption.split(" and ")[0]
    ]
    assert len(word_only) > 20


def test_blond_is_rare_among_men(samples: list[W.Sample]) -> None:
    faces = [s.attrs for s in samples if s.attrs["scene"] == "face"]
    men = [a for a in faces if a["man"] == 1]
    women = [a for a in faces if a["man"] == 0]
    p_men = np.mean([a["blond"] for a in men])
    p_women = np.mean([a["blond"] for a in women])
    assert p_men < 0.08 and p_women > 0.2


def test_vocabulary_covers_class_names() -> None:
    v = W.vocabulary()
    for word in (*W.BIRD_TYPES, *W.SHAPES, *W.PLACES, "blond", "text"):
        assert word in v
    assert len(v) == len(set(v))


def test_world_captions_fit_the_text_context() -> None:
    from open_clip.tokenizer import SimpleTokenizer

    from steerlang.zoo.model import CONFIG_PATH

    ctx = json.loads(CONFIG_PATH.read_text())["text_cfg"]["context_length"]
    tok = SimpleTokenizer()
    caps = {s.caption for s in SynthWorld(0).samples(0, 600)}
    assert max(len(tok.encode(c)) for c in caps) + 2 <= ctx


def test_text_styles() -> None:
    from PIL import Image

    for style in W.TEXT_STYLES:
        img = Image.new("RGB", (64, 64), (128, 128, 128))
        W.write_word(img, "waterbird", np.random.default_rng(0), style)
        assert np.asarray(img).std() > 5  # something was written
    with pytest.raises(ValueError, match="unknown text style"):
        W.write_word(Image.new("RGB", (64, 64)), "x", np.random.default_rng(0), "comic")
